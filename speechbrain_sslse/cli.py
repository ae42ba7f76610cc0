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
"""

import argparse
import contextlib
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from .audio import AudioError, AudioWarning, AudioWriteError, read_audio, write_audio

# Formats that soundfile (libsndfile 1.2) reads: enhanced when found in folders.
AUDIO_EXTS = {
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".sph", ".nist", ".aiff", ".aif",
    ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64", ".voc",
}  # fmt: skip
# Audio formats it cannot read: reported, with the conversion to make.
UNREADABLE_AUDIO_EXTS = {
    ".m4a", ".aac", ".wma", ".webm", ".mp4", ".amr", ".ape", ".wv", ".mka", ".3gp", ".ac3", ".mov", ".mkv",
}  # fmt: skip
EXIT_INTERRUPTED = 130


class InputError(ValueError):
    """Inputs and output that cannot go together (an output over an input, ...)."""


@dataclass
class Plan:
    """What ``sslse-enhance`` will do, found before anything is loaded or written.

    Attributes
    ----------
    pairs : list of (Path, Path)
        (input file, output file), one per distinct input file, in a stable order.
    problems : list of (str, str)
        (input, reason) of each input that cannot be enhanced (missing, dangling link,
        unreadable format, folder without audio ...).
    notes : list of str
        Lines to print: renamed outputs, folders not followed twice, files left out.
    """

    pairs: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def _resolved(path):
    """``path`` made absolute, ``~`` expanded and symbolic links resolved (it need not exist)."""
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def _is_within(path, folder):
    """Whether ``path`` is ``folder`` or inside it (both resolved)."""
    return path == folder or folder in path.parents


def _broken_link(path):
    return f"broken symbolic link (its target {os.readlink(path)} does not exist)"


def _walk(folder, plan):
    """Files under ``folder`` as (path, relative path), following folder links once each.

    Dangling links and unlistable folders go to ``plan.problems``; a folder reached a
    second time (a link loop, or two links to one folder) is not read again.
    """
    seen = set()
    files = []

    def visit(directory, rel):
        try:
            st = directory.stat()
        except OSError as err:
            plan.problems.append((str(directory), f"cannot read the folder ({err.strerror or err})"))
            return
        key = (st.st_dev, st.st_ino)
        if key in seen:
            plan.notes.append(
                f"note: {directory}: folder already read (a symbolic link loop or a second link); skipped"
            )
            return
        seen.add(key)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as err:
            plan.problems.append((str(directory), f"cannot list the folder ({err.strerror or err})"))
            return
        for entry in entries:
            path = directory / entry.name
            try:
                if entry.is_dir():
                    visit(path, rel / entry.name)
                elif entry.is_file():
                    files.append((path, rel / entry.name))
                elif entry.is_symlink():
                    plan.problems.append((str(path), _broken_link(path)))
            except OSError as err:
                plan.problems.append((str(path), f"cannot be read ({err.strerror or err})"))

    visit(folder, Path())
    return files


def _distinct(names):
    """Whether ``names`` differ even when case is ignored (as on macOS and Windows file systems)."""
    return len({str(n).casefold() for n in names}) == len(names)


def _qualified(paths, depth):
    """The last ``depth`` parent folder names of each path, or None when a path has fewer."""
    out = []
    for path in paths:
        parents = [p.name for p in reversed(path.parents) if p.name]
        if len(parents) < depth:
            return None
        out.append(Path(*parents[len(parents) - depth :]))
    return out


def _separate(members, sources, keep_ext=True):
    """Names for inputs whose plain names clash: the source extension kept, then parent folders.

    Arguments
    ---------
    members : list of Path
        Their plain (clashing) names, relative to their root.
    sources : list of Path
        Their source files (resolved), whose names and folders tell them apart.
    keep_ext : bool
        Try keeping the source extension first (files; not folders).

    Returns
    -------
    list of Path or None
        Distinct names, or None when neither tells them apart.
    """
    with_ext = members
    if keep_ext:  # a .wav source keeps the plain name
        with_ext = [
            m if s.suffix.lower() == ".wav" else m.with_name(s.name + ".wav")
            for m, s in zip(members, sources)
        ]
    if keep_ext and _distinct(with_ext):
        return with_ext
    for depth in range(1, 64):
        parents = _qualified(sources, depth)
        if parents is None:
            return None
        for names in (members, with_ext):
            qualified = [parent / name for parent, name in zip(parents, names)]
            if _distinct(qualified):
                return qualified
    return None


def _numbered(name, k):
    return name if k == 1 else name.with_name(f"{name.name[:-4]}-{k}.wav")


def _assign_outputs(entries, out, plan):
    """Gives every input file its own output file, never one shared with another input.

    ``entries`` are (source file, resolved source, root name or None, relative path):
    files given directly have no root; files found in a folder have the folder's output
    name as root. Folders of the same name get their parent folders' names; clashing
    files keep their source extension (``x.flac.wav``), then their parent folders'
    names, else a number. Names are compared ignoring case.
    """
    roots = {}  # folder (resolved) -> output name
    folders = sorted({root for _, _, root, _ in entries if root is not None}, key=str)
    by_name = {}
    for folder in folders:
        by_name.setdefault((folder.name or "root").casefold(), []).append(folder)
    for group in by_name.values():
        names = [Path(f.name or "root") for f in group]
        if len(group) > 1:
            names = _separate(names, group, keep_ext=False) or [
                _numbered(n, k) for k, n in enumerate(names, 1)
            ]
        roots.update(zip(group, names))
    names = []
    for source, _, root, rel in entries:
        if root is None:
            names.append(Path(source.stem + ".wav"))
        else:
            names.append(roots[root] / rel.with_suffix(".wav"))
    plain = list(names)
    for _ in range(8):
        groups = {}
        for i, name in enumerate(names):
            groups.setdefault(str(name).casefold(), []).append(i)
        clashes = [members for members in groups.values() if len(members) > 1]
        if not clashes:
            break
        for members in clashes:
            separated = _separate([names[i] for i in members], [entries[i][1] for i in members])
            if separated is None:
                separated = [_numbered(names[i], k) for k, i in enumerate(members, 1)]
            for i, name in zip(members, separated):
                names[i] = name
    else:  # pragma: no cover - names that keep clashing: number them all
        names = [_numbered(name, i + 1) for i, name in enumerate(plain)]
    for (source, *_), name, first in zip(entries, names, plain):
        dst = out / name
        if name != first:
            plan.notes.append(f"note: {source} -> {dst} (another input would have the same output name)")
        plan.pairs.append((source, dst))


def collect_inputs(inputs, output_dir):
    """Pairs each input audio file with its output path.

    Files map to ``OUT/<stem>.wav``; folders are searched recursively (following
    symbolic links to folders, each folder once) and keep their relative layout under
    ``OUT/<folder name>/``. Inputs and the output folder are resolved first (``..``,
    ``~`` and links). A file reached twice (given twice, or inside a given folder) is
    enhanced once; inputs that would get the same output keep their source extension
    (``x.flac.wav``), then their parent folders' names.

    Arguments
    ---------
    inputs : list of str
        Files and folders.
    output_dir : str
        Output folder.

    Returns
    -------
    Plan
        The (input, output) pairs, the inputs that cannot be enhanced and notes.

    Example
    -------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); os.makedirs(os.path.join(d, "a", "b"))
    >>> for name in ("x.flac", "x.ogg", "notes.txt"):
    ...     _ = open(os.path.join(d, "a", "b", name), "wb")
    >>> plan = collect_inputs([os.path.join(d, "a"), "nope.wav"], "/out")
    >>> [str(o) for _, o in plan.pairs], plan.problems
    (['/out/a/b/x.flac.wav', '/out/a/b/x.ogg.wav'], [('nope.wav', 'no such file or folder')])
    """
    plan = Plan()
    out = _resolved(output_dir)
    entries, seen, other = [], set(), {}
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            folder = _resolved(path)
            found = 0
            for file, rel in _walk(folder, plan):
                suffix = file.suffix.lower()
                if suffix in UNREADABLE_AUDIO_EXTS:
                    plan.problems.append(
                        (
                            str(file),
                            f"{suffix} is not a format this tool reads; convert: ffmpeg -i IN OUT.wav",
                        )
                    )
                elif suffix in AUDIO_EXTS:
                    found += 1
                    real = _resolved(file)
                    if real not in seen:
                        seen.add(real)
                        entries.append((file, real, folder, rel))
                else:
                    other[suffix or "(no extension)"] = other.get(suffix or "(no extension)", 0) + 1
            if not found:
                plan.problems.append(
                    (item, f"no audio files in this folder (looked for {', '.join(sorted(AUDIO_EXTS))})")
                )
        elif path.is_file():
            real = _resolved(path)
            if real not in seen:
                seen.add(real)
                entries.append((path, real, None, None))
        elif path.is_symlink():
            plan.problems.append((item, _broken_link(path)))
        else:
            plan.problems.append((item, "no such file or folder"))
    if other:
        kinds = ", ".join(f"{n} {ext}" for ext, n in sorted(other.items()))
        plan.notes.append(
            f"note: left out {sum(other.values())} non-audio file(s) of the input folders ({kinds})"
        )
    _assign_outputs(entries, out, plan)
    return plan


def check_outputs(plan, inputs, output_dir):
    """Refuses outputs that would overwrite an input or land inside an input folder.

    Raises
    ------
    InputError
        One line naming the first conflict, how many there are and the fix.

    Example
    -------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "x.wav"); _ = open(p, "wb")
    >>> check_outputs(collect_inputs([p], d), [p], d)
    Traceback (most recent call last):
    ...
    speechbrain_sslse.cli.InputError: -o ...: the output ... would overwrite the input ...
    """
    out = _resolved(output_dir)
    fix = "choose an output folder that is neither an input folder nor inside one"
    folders = [_resolved(item) for item in inputs if Path(item).expanduser().is_dir()]
    for folder in folders:
        if _is_within(out, folder):
            raise InputError(
                f"-o {output_dir}: the output folder {out} is inside the input folder {folder}: the outputs "
                f"would be written among the inputs (and read as inputs next time); {fix}"
            )
    sources = {_resolved(src) for src, _ in plan.pairs}
    conflicts = []
    for _, dst in plan.pairs:
        target = _resolved(dst)
        if target in sources:
            conflicts.append(f"the output {dst} would overwrite the input {target}")
        else:
            inside = next((f for f in folders if _is_within(target, f)), None)
            if inside is not None:
                conflicts.append(f"the output {dst} would be written into the input folder {inside}")
    if conflicts:
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise InputError(f"-o {output_dir}: {conflicts[0]}{more}; {fix}")


def check_output_folder(output_dir):
    """Creates the output folder if needed and checks that files can be written in it.

    Raises
    ------
    InputError
        It is a file, or cannot be created or written (the reason is in the message).

    Example
    -------
    >>> import tempfile
    >>> check_output_folder(tempfile.mkdtemp())
    """
    out = Path(output_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"-o {output_dir}: is a file, not a folder; choose a folder for the outputs")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".sslse-write-test-", suffix=".part", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or str(err)
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        raise InputError(
            f"-o {output_dir}: cannot write there: {reason}{where}; choose a folder you can write to"
        ) from err


def remove_stale_parts(pairs):
    """Removes the partial files (``.<name>.*.part``) a killed run left beside these outputs.

    Returns
    -------
    int
        How many were removed.
    """
    removed = 0
    for _, dst in pairs:
        if dst.parent.is_dir():
            for part in dst.parent.glob(f".{glob_escape(dst.name)}.*.part"):
                with contextlib.suppress(OSError):
                    part.unlink()
                    removed += 1
    return removed


def glob_escape(name):
    """``name`` with the glob characters ``*?[`` escaped.

    Example
    -------
    >>> glob_escape("a[1].wav")
    'a[[]1].wav'
    """
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


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
    except ImportError:  # pragma: no cover - peers.py needs only numpy and torch
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
