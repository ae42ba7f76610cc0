"""Console entry points.

- ``sslse-enhance IN [IN ...] -o OUT [--model DIR | --peer NAME]`` enhances files and
  folders (recursively, following symbolic links to folders once). Outputs mirror the
  input tree under OUT as 16 kHz mono WAV: a file ``x.flac`` gives ``OUT/x.wav``, a
  folder ``DIR`` gives ``OUT/<DIR's name>/...``. Inputs that would get the same output
  (``x.flac`` and ``x.ogg``, ``A/x.wav`` and ``B/x.wav``, two folders of the same name)
  keep their source extension (``x.flac.wav``), then their parent folders, so that no
  result replaces another; each such name is printed.

  Nothing is written before every input and the output folder are resolved and checked:
  an output that is an input, or an output folder inside an input folder (or one that
  would put outputs over or among the inputs) is refused with one line and exit status
  2 before the model loads, as is an output folder that cannot be written. Existing
  outputs are skipped unless ``--overwrite``. A bad input, or an output that fails to
  be written (disk full, ...), prints one line naming it and the reason; the others are
  still processed and the exit status is 1 at the end. Ctrl-C stops after the current
  file with the summary so far (exit status 130). Partial files left by a killed run
  are removed.

  Inference takes the fast path (:mod:`speechbrain_sslse.fast`) unless ``--eager``
  (alias ``--no-fast``); ``--precision auto|fp32|bf16|fp16``, ``--device`` and
  ``--threads N`` tune it. ``--peer NAME`` runs a comparison enhancer of
  :data:`speechbrain_sslse.peers.PEERS` instead of the model (same inputs and outputs).
  ``--trust-model-code`` lets a model folder run what the restricted loader refuses
  (see :mod:`speechbrain_sslse.trust`).
- ``sslse-package RUN_FOLDER -o MODEL_DIR`` turns a training run of the DNS recipe
  into a model folder for ``sslse-enhance --model`` and ``SpectrumAwareEnhancer``.

Which files go in and out, and the checks before anything is written, live in
:mod:`speechbrain_sslse.enhance_files` (its names stay importable from here).
"""

import argparse
import sys
import warnings

import torch
from tqdm import tqdm

from .audio import AudioError, AudioWarning, AudioWriteError, read_audio, write_audio
from .enhance_files import (
    AUDIO_EXTS,
    UNREADABLE_AUDIO_EXTS,
    InputError,
    Plan,
    check_output_folder,
    check_outputs,
    collect_inputs,
    glob_escape,
    remove_stale_parts,
)

__all__ = [
    "AUDIO_EXTS",
    "EXIT_INTERRUPTED",
    "UNREADABLE_AUDIO_EXTS",
    "InputError",
    "PeerEnhancer",
    "Plan",
    "build_enhance_parser",
    "check_output_folder",
    "check_outputs",
    "collect_inputs",
    "enhance_main",
    "glob_escape",
    "load_enhancer",
    "main",
    "package_cli",
    "package_main",
    "remove_stale_parts",
]

EXIT_INTERRUPTED = 130


def load_enhancer(
    model_dir=None, device="cpu", fast=True, precision="auto", num_threads=None, trust_model_code=False
):
    """Loads a packaged model folder (the shipped default model when ``model_dir`` is None).

    ``fast``, ``precision`` and ``num_threads`` choose the inference path (see
    :class:`speechbrain_sslse.inference.SpectrumAwareEnhancer`); ``trust_model_code``
    lifts the restrictions of the model-folder loader (:mod:`speechbrain_sslse.trust`).
    """
    from .inference import SpectrumAwareEnhancer

    if model_dir is None:
        from .inference import default_model_dir

        model_dir = default_model_dir()
    return SpectrumAwareEnhancer.from_hparams(
        source=str(model_dir),
        run_opts={"device": device},
        fast=fast,
        precision=precision,
        num_threads=num_threads,
        trust_model_code=trust_model_code,
    )


class PeerEnhancer:
    """A comparison enhancer of :data:`speechbrain_sslse.peers.PEERS` with the enhancer's file interface.

    Arguments
    ---------
    name : str
        A key of ``PEERS`` (``[T]`` 16 kHz float in, same length out).
    num_threads : int, optional
        CPU threads of the peers that run on ONNX Runtime (default 1).
    """

    def __init__(self, name, num_threads=None):
        from .peers import PEERS

        self.name, self.peer = name, PEERS[name]
        self.num_threads = 1 if num_threads is None else int(num_threads)
        probe = 0.01 * torch.randn(1600, generator=torch.Generator().manual_seed(0))
        self.enhance(probe)  # a missing package shows here, before any file

    def enhance(self, wav):
        """``[T]`` 16 kHz -> ``[T]``."""
        out = torch.as_tensor(self.peer(wav, num_threads=self.num_threads), dtype=torch.float32).reshape(-1)
        if out.shape[0] != wav.shape[0]:
            raise RuntimeError(f"peer {self.name} returned {out.shape[0]} samples for {wav.shape[0]}")
        return out

    def enhance_file(self, filename):
        """Enhances an audio file of any rate and channel count; returns ``[T]`` at 16 kHz."""
        return self.enhance(read_audio(filename, min_duration=0.1))


def _peer_names():
    try:
        from .peers import PEERS
    except ImportError:  # pragma: no cover - the peers package needs only numpy and torch
        return []
    return sorted(PEERS)


def build_enhance_parser():
    """The parser of ``sslse-enhance``.

    Example
    -------
    >>> build_enhance_parser().parse_args(["a.wav", "-o", "out"]).overwrite
    False
    """
    parser = argparse.ArgumentParser(
        prog="sslse-enhance",
        description="Enhance noisy/reverberant speech with a spectrum-aware denoising vocoder.",
    )
    parser.add_argument("inputs", nargs="+", help="audio files and/or folders (searched recursively)")
    parser.add_argument("-o", "--output", required=True, help="output folder (16 kHz mono WAV)")
    system = parser.add_mutually_exclusive_group()
    system.add_argument("--model", default=None, help="packaged model folder (default: the shipped model)")
    system.add_argument(
        "--peer",
        default=None,
        choices=_peer_names(),
        help="enhance with this comparison enhancer instead of the model (speechbrain_sslse.peers)",
    )
    parser.add_argument(
        "--device", default=None, help="torch device of the model (default: cuda when available, else cpu)"
    )
    parser.add_argument("--overwrite", action="store_true", help="re-enhance files whose output exists")
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="auto",
        help="fast-path precision (default auto: bf16 on CPUs with native bf16 and on CUDA, else fp32)",
    )
    parser.add_argument(
        "--eager",
        "--no-fast",
        dest="fast",
        action="store_false",
        help="run the plain eager fp32 vocoder instead of the fast inference path",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    parser.add_argument(
        "--trust-model-code",
        action="store_true",
        help="let the model folder run what the restricted loader refuses (imports outside speechbrain, "
        "speechbrain_sslse and torch; a pickled ssl.ckpt): only for folders from a source you trust",
    )
    return parser


def _check_options(parser, args):
    """Option errors end the command with one line and exit status 2 (argparse's convention)."""
    from .fast import check_inference_options

    if args.peer is not None:
        if args.device not in (None, "cpu"):
            parser.error(f"--device {args.device}: --peer runs on the CPU (drop --device)")
        if not args.fast or args.precision != "auto" or args.trust_model_code:
            parser.error("--eager, --precision and --trust-model-code apply to the model, not to --peer")
        if args.threads is not None and args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        return
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        check_inference_options(args.fast, args.precision, args.device, args.threads)
    except ValueError as err:
        parser.error(str(err))


def enhance_main(argv=None):
    """``sslse-enhance``: enhance audio files and folders with a packaged model (or a peer)."""
    parser = build_enhance_parser()
    args = parser.parse_args(argv)
    _check_options(parser, args)

    plan = collect_inputs(args.inputs, args.output)
    try:
        check_outputs(plan, args.inputs, args.output)
        if plan.pairs:
            check_output_folder(args.output)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    failures = list(plan.problems)
    for item, reason in plan.problems:
        print(f"error: {item}: {reason}", file=sys.stderr)
    for note in plan.notes:
        print(note, file=sys.stderr)
    stale = remove_stale_parts(plan.pairs)
    if stale:
        print(f"note: removed {stale} partial file(s) left by an interrupted run", file=sys.stderr)
    todo = [(i, o) for i, o in plan.pairs if args.overwrite or not o.exists()]
    skipped = len(plan.pairs) - len(todo)
    done = warned = 0
    interrupted = False
    if todo:
        try:
            if args.peer is not None:
                if args.threads is not None:
                    torch.set_num_threads(args.threads)
                enhancer = PeerEnhancer(args.peer, args.threads)
            else:
                enhancer = load_enhancer(
                    args.model, args.device, args.fast, args.precision, args.threads, args.trust_model_code
                )
        except (FileNotFoundError, RuntimeError, ValueError, ImportError) as err:
            what = f"the peer {args.peer}" if args.peer else "the model"
            print(f"error: cannot load {what}: {err}", file=sys.stderr)
            return 2
        try:
            for src, dst in tqdm(todo, desc="enhancing", unit="file", disable=None):
                try:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always", AudioWarning)
                        enhanced = enhancer.enhance_file(str(src))
                    for warning in caught:
                        if issubclass(warning.category, AudioWarning):
                            warned += 1
                            tqdm.write(f"warning: {warning.message}", file=sys.stderr)
                        else:
                            warnings.warn_explicit(
                                warning.message, warning.category, warning.filename, warning.lineno
                            )
                except AudioError as err:
                    failures.append((str(src), str(err)))
                    tqdm.write(f"error: {err}", file=sys.stderr)
                    continue
                except (RuntimeError, ValueError) as err:  # the model refused this input
                    failures.append((str(src), str(err)))
                    tqdm.write(f"error: {src}: cannot enhance ({type(err).__name__}: {err})", file=sys.stderr)
                    continue
                try:
                    write_audio(dst, enhanced)
                except AudioWriteError as err:
                    failures.append((str(src), str(err)))
                    tqdm.write(f"error: {err} (input {src}); going on with the other files", file=sys.stderr)
                    continue
                done += 1
        except KeyboardInterrupt:
            interrupted = True
    extra = f", {warned} warning(s)" if warned else ""
    left = len(todo) - done - (len(failures) - len(plan.problems))
    if interrupted:
        print(f"interrupted: {left} file(s) not done", file=sys.stderr)
    print(
        f"{done} enhanced, {skipped} skipped (output exists; --overwrite to redo), "
        f"{len(failures)} failed{extra} -> {args.output}"
    )
    if interrupted:
        return EXIT_INTERRUPTED
    return 1 if failures else 0


def package_cli(argv=None):
    """``sslse-package``: package a training run as a model folder."""
    from .packaging import PackagingError, package_model

    parser = argparse.ArgumentParser(
        prog="sslse-package",
        description="Package a training run of recipes/DNS/enhancement as a pretrained-model folder.",
    )
    parser.add_argument("run_folder", help="the run's output_folder (holding hyperparams.yaml and save/)")
    parser.add_argument("-o", "--output", required=True, help="model folder to write")
    parser.add_argument(
        "--checkpoint", default=None,
        help="a save/CKPT+... folder (default: the best by the run's selection_key)",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    parser.add_argument(
        "--with_discriminator", action="store_true",
        help="also copy the checkpoint's discriminator.ckpt (for GAN fine-tunes started from the folder)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        folder = package_model(
            args.run_folder,
            args.output,
            checkpoint=args.checkpoint,
            overwrite=args.overwrite,
            with_discriminator=args.with_discriminator,
        )
    except (PackagingError, FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"model folder written: {folder}")
    return 0


def main():  # pragma: no cover - console entry point
    sys.exit(enhance_main())


def package_main():  # pragma: no cover - console entry point
    sys.exit(package_cli())
