"""Writing audio and other files atomically (write to a temporary file beside, then rename).

:func:`atomic_path` gives any writer a temporary path that is renamed onto the target
on success, so that an interrupted run never leaves a half-written file behind;
:func:`write_audio` writes through it and turns a failed write into an
:class:`AudioWriteError` that names the file and the reason (libsndfile itself says
only "System error").

``torchaudio.save`` is not used: in torchaudio 2.9 it needs torchcodec. Writing goes
through soundfile.
"""

import contextlib
import errno
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .reading import SAMPLE_RATE

__all__ = ["AudioWriteError", "atomic_path", "write_audio"]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside ``path``; renames it onto ``path`` on success.

    A crash (or kill) before the end leaves ``path`` untouched and no partial
    file under its name.

    Example
    -------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_path(p) as tmp:
    ...     _ = open(tmp, "w").write("done")
    >>> open(p).read()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class AudioWriteError(OSError):
    """An audio file that cannot be written; the message names the file and the reason.

    Arguments
    ---------
    message : str
        ``"<file>: cannot write: <reason>"``.
    code : int, optional
        The ``errno`` of the failure, when known (kept as ``.errno``).
    file : str or Path, optional
        The file (kept as ``.file``).
    """

    def __init__(self, message, code=None, file=None):
        super().__init__(message)
        self.errno = code
        self.file = None if file is None else str(file)


_SAMPLE_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


def _write_failure_reason(directory, nbytes, err):
    """Why writing about ``nbytes`` into ``directory`` failed, for libsndfile's bare "System error"."""
    with contextlib.suppress(OSError):
        stat = os.statvfs(directory)
        free = stat.f_bavail * stat.f_frsize
        if free < nbytes + 65536:
            return (
                f"no space left on device ({free / 1e6:.1f} MB free in {directory}, "
                f"about {nbytes / 1e6:.1f} MB needed)"
            )
    with contextlib.suppress(ImportError, OSError, ValueError):
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY and limit < nbytes + 65536:
            return f"file size limit (ulimit -f) of {limit} bytes, about {nbytes} bytes needed"
    return f"the system refused the write ({err}); check the free space, quotas and the disk of {directory}"


def write_audio(path, wav, sample_rate=SAMPLE_RATE, subtype="PCM_16", file_format=None):
    """Writes ``wav`` (``[T]`` or ``[C, T]``, float in [-1, 1]) atomically.

    The format follows the extension (``.wav``, ``.flac``) unless
    ``file_format`` names a soundfile format (e.g. ``"NIST"`` for TIMIT's SPHERE).

    Raises
    ------
    AudioWriteError
        (an ``OSError``) when the file cannot be written: the message names the file
        and the reason (no space left on device, read-only file system, permission
        denied, file size limit ...); nothing is left under the file's name.

    Example
    -------
    >>> import tempfile, os
    >>> from speechbrain_sslse.audio import audio_info
    >>> p = os.path.join(tempfile.mkdtemp(), "x.flac")
    >>> write_audio(p, torch.zeros(160), 16000)
    >>> audio_info(p)[1]
    160
    """
    path = Path(path)
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().float().numpy()
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 2:
        wav = wav.T  # soundfile wants [T, C]
    fmt = file_format or {".flac": "FLAC", ".wav": "WAV"}.get(path.suffix.lower())
    try:
        with atomic_path(path) as tmp:
            try:
                sf.write(tmp, np.clip(wav, -1.0, 1.0), int(sample_rate), subtype=subtype, format=fmt)
            except sf.LibsndfileError as err:  # libsndfile hides errno ("System error")
                nbytes = wav.size * _SAMPLE_BYTES.get(subtype, 4) + 1024
                reason = _write_failure_reason(path.parent, nbytes, err)
                raise AudioWriteError(f"{path}: cannot write: {reason}", errno.EIO, path) from err
    except AudioWriteError:
        raise
    except OSError as err:  # creating the folder or the temporary file, or renaming it
        reason = err.strerror or str(err)
        raise AudioWriteError(f"{path}: cannot write: {reason}", err.errno, path) from err
