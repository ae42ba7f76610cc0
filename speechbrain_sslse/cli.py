"""Console entry points.

- ``sslse-enhance IN [IN ...] -o OUT [--model DIR]`` enhances files and folders
  (recursively). Outputs mirror the input tree under OUT as 16 kHz mono WAV. Existing
  outputs are skipped unless ``--overwrite``. A bad file prints one line naming it and
  the reason; the others are still processed and the exit status is 1 at the end.
  Inference takes the fast path (:mod:`speechbrain_sslse.fast`) unless ``--eager``
  (alias ``--no-fast``); ``--precision auto|fp32|bf16|fp16`` and ``--threads N`` tune it.
- ``sslse-package RUN_FOLDER -o MODEL_DIR`` turns a training run of the DNS recipe
  into a model folder for ``sslse-enhance --model`` and ``SpectrumAwareEnhancer``.
"""

import argparse
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from .audio import AudioError

AUDIO_EXTS = {".wav", ".flac", ".ogg", ".mp3", ".sph", ".aiff", ".aif"}


def collect_inputs(inputs, output_dir):
    """Pairs each input audio file with its output path.

    Files map to ``OUT/<name>.wav``; folders are searched recursively and keep their
    relative layout under ``OUT/<folder name>/``.

    Arguments
    ---------
    inputs : list of str
        Files and folders.
    output_dir : str
        Output folder.

    Returns
    -------
    pairs : list of (Path, Path)
        (input, output) pairs, in a stable order.
    missing : list of str
        Inputs that do not exist.

    Example
    -------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); os.makedirs(os.path.join(d, "a", "b"))
    >>> _ = open(os.path.join(d, "a", "b", "x.flac"), "wb")
    >>> pairs, missing = collect_inputs([os.path.join(d, "a"), "nope.wav"], "/out")
    >>> [str(o) for _, o in pairs], missing
    (['/out/a/b/x.wav'], ['nope.wav'])
    """
    pairs, missing = [], []
    out = Path(output_dir)
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in AUDIO_EXTS:
                    pairs.append((f, out / p.name / f.relative_to(p).with_suffix(".wav")))
        elif p.is_file():
            pairs.append((p, out / p.with_suffix(".wav").name))
        else:
            missing.append(item)
    return pairs, missing


def load_enhancer(model_dir=None, device="cpu", fast=True, precision="auto", num_threads=None):
    """Loads a packaged model folder (the shipped default model when ``model_dir`` is None).

    ``fast``, ``precision`` and ``num_threads`` choose the inference path (see
    :class:`speechbrain_sslse.inference.SpectrumAwareEnhancer`).
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
    )


def enhance_main(argv=None):
    """``sslse-enhance``: enhance audio files and folders with a packaged model."""
    parser = argparse.ArgumentParser(
        prog="sslse-enhance",
        description="Enhance noisy/reverberant speech with a spectrum-aware denoising vocoder.",
    )
    parser.add_argument("inputs", nargs="+", help="audio files and/or folders (searched recursively)")
    parser.add_argument("-o", "--output", required=True, help="output folder (16 kHz mono WAV)")
    parser.add_argument("--model", default=None, help="packaged model folder (default: the shipped model)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
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
    args = parser.parse_args(argv)
    from .fast import check_inference_options

    try:
        check_inference_options(args.fast, args.precision, args.device, args.threads)
    except ValueError as err:
        parser.error(str(err))

    pairs, missing = collect_inputs(args.inputs, args.output)
    failures = [(m, "no such file or folder") for m in missing]
    for m in missing:
        print(f"error: {m}: no such file or folder", file=sys.stderr)
    todo = [(i, o) for i, o in pairs if args.overwrite or not o.exists()]
    skipped = len(pairs) - len(todo)
    if todo:
        try:
            enhancer = load_enhancer(args.model, args.device, args.fast, args.precision, args.threads)
        except (FileNotFoundError, RuntimeError, ValueError) as err:
            print(f"error: cannot load the model: {err}", file=sys.stderr)
            return 2
        for src, dst in tqdm(todo, desc="enhancing", unit="file", disable=None):
            try:
                enhancer.enhance_file(str(src), str(dst))
            except AudioError as err:
                failures.append((str(src), str(err)))
                tqdm.write(f"error: {err}", file=sys.stderr)
            except (RuntimeError, ValueError) as err:  # the model refused this input
                failures.append((str(src), str(err)))
                tqdm.write(f"error: {src}: cannot enhance ({type(err).__name__}: {err})", file=sys.stderr)
    done = len(todo) - sum(1 for f, _ in failures if f not in missing)
    print(
        f"{done} enhanced, {skipped} skipped (output exists; --overwrite to redo), "
        f"{len(failures)} failed -> {args.output}"
    )
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
    parser.add_argument("--checkpoint", default=None, help="a save/CKPT+... folder (default: best PESQ)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    args = parser.parse_args(argv)
    try:
        folder = package_model(
            args.run_folder, args.output, checkpoint=args.checkpoint, overwrite=args.overwrite
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
