"""The output folder of a corpus: its lock, its marker of ownership, and whether it can be reused.

A generation first writes the marker file (``.sslse-corpus``, status ``in progress``),
lists the files it wrote there when it stops or finishes, and writes ``corpus.json``
last. Regenerating deletes only what an earlier generation wrote, and refuses when a
layout folder holds anything else.
"""

import contextlib
import json
import shutil
from pathlib import Path

from ..audio import atomic_path
from .config import CORPUS_LAYOUTS, FORMAT_VERSION, CorpusError

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX systems
    fcntl = None

META_NAME = "corpus.json"
MARKER_NAME = ".sslse-corpus"
LOCK_NAME = ".sslse-corpus.lock"
MARKER_HEADER = "written by sslse-corpus (speechbrain_sslse.corpus)"


@contextlib.contextmanager
def corpus_lock(out_dir):
    """Holds an exclusive lock on ``out_dir`` (a ``fcntl`` lock file) across processes.

    Example
    -------
    >>> import tempfile
    >>> with corpus_lock(tempfile.mkdtemp()):
    ...     pass
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / LOCK_NAME, "a+") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def read_meta(out_dir):
    """``corpus.json`` of ``out_dir`` as a dict, or None when absent or unreadable.

    Example
    -------
    >>> read_meta("/nonexistent") is None
    True
    """
    path = Path(out_dir) / META_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def speech_dir_key(speech_dir):
    """How corpus.json records the speech folder: its absolute path, or None for eSpeak speech.

    Example
    -------
    >>> speech_dir_key(None) is None
    True
    >>> speech_dir_key("/data/../data/speech")
    '/data/speech'
    """
    return None if speech_dir is None else str(Path(speech_dir).expanduser().resolve())


def corpus_matches(out_dir, size, seed, speech_dir, config):
    """True if ``out_dir`` holds a complete corpus generated with these settings.

    Example
    -------
    >>> from speechbrain_sslse.corpus.config import corpus_config
    >>> corpus_matches("/nonexistent", "tiny", 0, None, corpus_config("tiny"))
    False
    """
    meta = read_meta(out_dir)
    if not meta:
        return False
    same = (
        meta.get("format_version") == FORMAT_VERSION
        and meta.get("size") == size
        and meta.get("seed") == int(seed)
        and meta.get("speech_dir") == speech_dir_key(speech_dir)
        and meta.get("config") == config
    )
    return same and all((Path(out_dir) / sub).is_dir() for sub in CORPUS_LAYOUTS.values())


def layout_files(out_dir):
    """Relative paths (posix) of every file under the layout folders of ``out_dir``.

    Example
    -------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> (out / "DNS" / "noise").mkdir(parents=True)
    >>> _ = (out / "DNS" / "noise" / "a.wav").write_bytes(b"")
    >>> sorted(layout_files(out))
    ['DNS/noise/a.wav']
    """
    found = set()
    for sub in CORPUS_LAYOUTS.values():
        root = out_dir / sub
        if root.is_dir():
            found.update(p.relative_to(out_dir).as_posix() for p in root.rglob("*") if not p.is_dir())
    return found


def write_marker(out_dir, status, files=()):
    """The marker file: who wrote the folder, whether generation finished, and the files it wrote.

    Example
    -------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> write_marker(out, "complete", ["DNS/noise/a.wav"])
    >>> (out / MARKER_NAME).read_text().splitlines()[1:]
    ['status: complete', 'files:', 'DNS/noise/a.wav']
    """
    lines = [MARKER_HEADER, f"status: {status}", "files:", *sorted(files)]
    with atomic_path(out_dir / MARKER_NAME) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _files_written(out_dir):
    """The files the generator recorded as its own (None when the marker lists none)."""
    try:
        lines = (out_dir / MARKER_NAME).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    if "files:" not in lines or "status: in progress" in lines:  # (killed before it listed them)
        return None
    return set(lines[lines.index("files:") + 1 :])


def _user_files(out_dir):
    """Files in the layout folders that the generator did not write (to be kept, never deleted)."""
    files = layout_files(out_dir)
    listed = _files_written(out_dir)
    if listed is not None:
        return sorted(f for f in files - listed if not f.endswith(".part"))
    meta = out_dir / META_NAME
    if meta.is_file():  # a corpus of an older version: what was added after it was complete
        done = meta.stat().st_mtime
        return sorted(f for f in files if (out_dir / f).stat().st_mtime > done + 1.0)
    return []  # a generation killed before it listed its files: everything there is its own


def prepare_out_dir(out_dir):
    """Removes a previous (complete or partial) corpus from ``out_dir``.

    Refuses (and changes nothing) when the layout folders hold files the generator did
    not write: folders of another dataset, or files a user put inside a corpus.

    Example
    -------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> (out / "TIMIT").mkdir()
    >>> prepare_out_dir(out)
    Traceback (most recent call last):
    ...
    speechbrain_sslse.corpus.config.CorpusError: ... already holds TIMIT not written by sslse-corpus; ...
    """
    ours = (out_dir / MARKER_NAME).is_file() or (out_dir / META_NAME).is_file()
    present = [sub for sub in CORPUS_LAYOUTS.values() if (out_dir / sub).exists()]
    if present and not ours:
        raise CorpusError(
            f"{out_dir} already holds {', '.join(present)} not written by sslse-corpus; "
            "choose an empty or new folder for --out"
        )
    if present:
        user = _user_files(out_dir)
        if user:
            more = f" (and {len(user) - 1} more)" if len(user) > 1 else ""
            raise CorpusError(
                f"{out_dir}: {user[0]}{more} was not written by sslse-corpus, and regenerating the corpus "
                "would delete it; nothing was changed: move such files out of the corpus folders "
                "(or choose another --out)"
            )
    write_marker(out_dir, "in progress")
    with contextlib.suppress(FileNotFoundError):
        (out_dir / META_NAME).unlink()
    for sub in present:
        shutil.rmtree(out_dir / sub)
