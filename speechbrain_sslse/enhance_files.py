"""Which files ``sslse-enhance`` reads and writes: inputs found, output names, safety checks.

Inputs (files and folders, searched recursively, following symbolic links to folders
once) are resolved into a :class:`Plan` of ``(source, output)`` pairs before anything is
written: inputs that would get the same output name keep their source extension, then
their parent folders; an output that is an input, or an output folder inside an input
folder, is refused (:class:`InputError`), as is an output folder that cannot be
written. Partial files left by a killed run are removed (:func:`remove_stale_parts`).
"""

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# Formats that soundfile (libsndfile 1.2) reads: enhanced when found in folders.
AUDIO_EXTS = {
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".sph", ".nist", ".aiff", ".aif",
    ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64", ".voc",
}  # fmt: skip
# Audio formats it cannot read: reported, with the conversion to make.
UNREADABLE_AUDIO_EXTS = {
    ".m4a", ".aac", ".wma", ".webm", ".mp4", ".amr", ".ape", ".wv", ".mka", ".3gp", ".ac3", ".mov", ".mkv",
}  # fmt: skip


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
    speechbrain_sslse.enhance_files.InputError: -o ...: the output ... would overwrite the input ...
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
