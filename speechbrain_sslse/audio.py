"""Audio input/output shared by every part of the project.

All audio enters through :func:`read_audio`, which returns 16 kHz mono float32
and turns every way a file can be wrong (missing, not audio, empty, too short,
NaN/Inf samples) into an :class:`AudioError` that names the file and the fix.
Files are written with :func:`write_audio`, atomically (write, then rename), so
that an interrupted run never leaves a half-written file behind.

``torchaudio.load``/``save`` are not used: in torchaudio 2.9 they need
torchcodec. Reading goes through soundfile (WAV, FLAC, NIST SPHERE, OGG ...).
"""

import contextlib
import errno
import math
import os
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

SAMPLE_RATE = 16000


class AudioError(ValueError):
    """A file that cannot be used as audio; the message names the file and the fix.

    Arguments
    ---------
    message : str
        What is wrong and what to do, starting with the file's path.
    file : str or Path, optional
        The offending file (kept as ``.file`` for reports).
    """

    def __init__(self, message, file=None):
        super().__init__(message)
        self.file = None if file is None else str(file)


class AudioWarning(UserWarning):
    """A file that is usable but not what its header promises (e.g. truncated); the message names it."""


def resample(wav, orig_sr, target_sr=SAMPLE_RATE):
    """Resamples a waveform (band-limited sinc interpolation).

    Arguments
    ---------
    wav : torch.Tensor
        ``[..., T]`` waveform.
    orig_sr : int
        Its sample rate.
    target_sr : int
        Wanted sample rate.

    Returns
    -------
    torch.Tensor
        ``[..., T * target_sr / orig_sr]``.

    Example
    -------
    >>> resample(torch.zeros(48000), 48000).shape
    torch.Size([16000])
    """
    if int(orig_sr) == int(target_sr):
        return wav
    return AF.resample(wav, int(orig_sr), int(target_sr))


def fit_length(wav, num_samples):
    """Waveforms zero-padded or cropped at the end to ``num_samples`` (last dimension).

    (Noise that should repeat instead is fitted by
    :func:`speechbrain_sslse.data.mixing.loop_to_length`.)

    Arguments
    ---------
    wav : torch.Tensor
        ``[..., T]`` waveforms (``[T]``, ``[B, T]`` ...).
    num_samples : int
        The wanted length.

    Returns
    -------
    torch.Tensor
        ``[..., num_samples]``.

    Example
    -------
    >>> fit_length(torch.ones(2, 5), 3).shape, fit_length(torch.ones(2, 5), 7)[0, -1].item()
    (torch.Size([2, 3]), 0.0)
    >>> fit_length(torch.ones(2), 4).tolist()
    [1.0, 1.0, 0.0, 0.0]
    """
    if wav.shape[-1] < num_samples:
        wav = torch.nn.functional.pad(wav, (0, num_samples - wav.shape[-1]))
    return wav[..., :num_samples]


def as_waveforms(x, name="noisy", ndim=None):
    """Waveforms given as a tensor or numpy array, as float32 in [-1, 1], checked.

    Floats of any precision are cast; int16 and int32 PCM are scaled by 2**15 and
    2**31; booleans, complex numbers and other integer types are refused, as are
    NaN and Inf samples (like files holding them).

    Arguments
    ---------
    x : torch.Tensor, numpy.ndarray or list
        Samples.
    name : str
        The argument's name, for messages.
    ndim : int, optional
        The number of dimensions wanted (``1``: ``[T]``, ``2``: ``[B, T]``).

    Returns
    -------
    torch.Tensor
        float32, same shape.

    Example
    -------
    >>> as_waveforms(np.array([[16384, -32768]], dtype=np.int16), ndim=2)
    tensor([[ 0.5000, -1.0000]])
    >>> as_waveforms(torch.tensor([0.0, float("nan")]))
    Traceback (most recent call last):
    ...
    ValueError: noisy holds NaN or Inf samples; clean or drop them first
    """
    if isinstance(x, (np.ndarray, list, tuple)):
        x = torch.as_tensor(np.asarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or a numpy array, got {type(x).__name__}")
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"{name} is {x.dtype}: pass float samples in [-1, 1] (or int16 / int32 PCM)")
    if x.dtype == torch.int16:
        x = x.float() / 32768.0
    elif x.dtype == torch.int32:
        x = (x.double() / 2147483648.0).float()
    elif not x.is_floating_point():
        raise TypeError(f"{name} is {x.dtype}: pass float samples in [-1, 1] (or int16 / int32 PCM)")
    x = x.float()
    if ndim is not None and x.dim() != ndim:
        shape = "[T] (one waveform)" if ndim == 1 else "[B, T] (a batch; one waveform: wav[None])"
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} holds no samples (shape {tuple(x.shape)})")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} holds NaN or Inf samples; clean or drop them first")
    return x


def as_lengths(lengths, batch):
    """SpeechBrain relative lengths given as a tensor, numpy array or list, checked: ``[batch]`` in (0, 1].

    Example
    -------
    >>> as_lengths([1.0, 0.5], 2)
    tensor([1.0000, 0.5000], dtype=torch.float64)
    >>> as_lengths([1.0, 0.0], 2)
    Traceback (most recent call last):
    ...
    ValueError: lengths must be SpeechBrain relative lengths in (0, 1], got [1.0, 0.0]
    """
    if isinstance(lengths, (np.ndarray, list, tuple, int, float)):
        lengths = torch.as_tensor(np.asarray(lengths, dtype=np.float64))
    if not isinstance(lengths, torch.Tensor):
        raise TypeError(f"lengths must be a tensor, numpy array or list, got {type(lengths).__name__}")
    if lengths.dtype == torch.bool or lengths.is_complex():
        raise TypeError(f"lengths must be real numbers in (0, 1], got {lengths.dtype}")
    lengths = lengths.double().reshape(-1) if lengths.dim() == 0 else lengths.double()
    if tuple(lengths.shape) != (batch,):
        raise ValueError(f"lengths must have shape [{batch}] (one per item), got {tuple(lengths.shape)}")
    if not bool(((lengths > 0) & (lengths <= 1 + 1e-6)).all()):  # (NaN fails both)
        raise ValueError(f"lengths must be SpeechBrain relative lengths in (0, 1], got {lengths.tolist()}")
    return lengths


def read_audio(path, sample_rate=SAMPLE_RATE, min_duration=0.0, mono=True):
    """Reads an audio file as float32 mono at ``sample_rate``.

    Any sample rate and channel count are accepted: channels are averaged and the
    signal is resampled.

    Arguments
    ---------
    path : str or Path
        The audio file.
    sample_rate : int
        Output rate (16 kHz by default).
    min_duration : float
        Shortest accepted duration in seconds (after reading).
    mono : bool
        Average the channels (default). If False, returns ``[C, T]``.

    Returns
    -------
    torch.Tensor
        ``[T]`` (or ``[C, T]`` when ``mono=False``).

    Raises
    ------
    AudioError
        If the file is missing, unreadable, empty, shorter than
        ``min_duration`` or holds NaN/Inf samples.

    Example
    -------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.wav")
    >>> write_audio(p, torch.zeros(2, 44100), 44100)
    >>> read_audio(p).shape
    torch.Size([16000])
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(
            f"{path}: file not found. Check the path (and the manifest that lists it).", file=path
        )
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes). Re-create or remove it.", file=path)
    try:
        wav = _read_resampled(path, sample_rate, mono)
    except AudioError:
        raise
    except MemoryError:
        raise
    except Exception as err:  # soundfile raises several types for bad files
        raise AudioError(
            f"{path}: not a readable audio file ({err}). "
            "Use WAV/FLAC/NIST SPHERE or convert it, e.g. `ffmpeg -i IN OUT.wav`.",
            file=path,
        ) from err
    duration = wav.shape[-1] / sample_rate
    if duration < min_duration:
        raise AudioError(
            f"{path}: audio is {duration:.3f} s long, shorter than the {min_duration} s "
            "this step needs. Remove it or lower the minimum duration.",
            file=path,
        )
    return wav


READ_BLOCK_SECONDS = 20.0  # read, mix and resample this much at a time: memory stays bounded


def _wav_declared_frames(path, info):
    """Frames a RIFF WAV file's header declares for its data (None if unknown or not plain WAV)."""
    if info.format != "WAV":
        return None
    with contextlib.suppress(OSError, ValueError, struct.error), open(path, "rb") as f:
        if f.read(4) != b"RIFF":
            return None
        f.read(4)
        if f.read(4) != b"WAVE":
            return None
        block_align = None
        while True:
            header = f.read(8)
            if len(header) < 8:
                return None
            chunk, size = header[:4], struct.unpack("<I", header[4:])[0]
            if chunk == b"fmt ":
                fmt = f.read(size)
                block_align = struct.unpack("<H", fmt[12:14])[0]
                f.seek(size % 2, os.SEEK_CUR)
            elif chunk == b"data":
                if not block_align or size in (0, 0xFFFFFFFF):  # streamed files leave it unset
                    return None
                return size // block_align
            else:
                f.seek(size + size % 2, os.SEEK_CUR)
    return None


def _resample_margin(orig, new):
    """Input samples (a multiple of the reduced ``orig``) that resampling one block needs around it."""
    g = math.gcd(int(orig), int(new))
    o, n = int(orig) // g, int(new) // g
    # torchaudio's sinc kernel half-width (6 zero crossings, rolloff 0.99), plus one
    width = math.ceil(6 * o / (min(o, n) * 0.99)) + 1
    return o * (math.ceil((width + o) / o) + 1), o, n


def _read_resampled(path, sample_rate, mono):
    """Reads a file block by block, mixing and resampling each block: ``[T]`` or ``[C, T]`` float32.

    Blocks are resampled with enough input around them that the result is the
    resampling of the whole signal (to float rounding); the file's samples are never
    all in memory at once, only the result.
    """
    with sf.SoundFile(str(path)) as f:
        rate, frames, channels = f.samplerate, f.frames, f.channels
        declared = _wav_declared_frames(path, f)
        if declared is not None and declared > frames:
            warnings.warn(
                AudioWarning(
                    f"{path}: truncated: its header promises {declared / rate:.2f} s, the file holds "
                    f"{frames / rate:.2f} s; only those {frames / rate:.2f} s are used (copy the file again)"
                ),
                stacklevel=3,
            )
        if frames <= 0:
            raise AudioError(f"{path}: audio holds no samples. Re-create or remove it.", file=path)
        rows = 1 if mono else channels

        def read(start, stop):
            """Samples ``[start, stop)`` as ``[rows, n]``, zeros outside the file."""
            lo, hi = max(start, 0), min(stop, frames)
            block = np.zeros((rows, stop - start), dtype=np.float32)
            if hi > lo:
                f.seek(lo)
                data = f.read(hi - lo, dtype="float32", always_2d=True)
                if not np.isfinite(data).all():
                    raise AudioError(
                        f"{path}: audio holds NaN or Inf samples. Re-create or remove it.", file=path
                    )
                data = data.mean(axis=1, keepdims=True) if mono else data
                block[:, lo - start : lo - start + len(data)] = data.T
            return block

        if int(rate) == int(sample_rate):
            out = torch.empty(rows, frames)
            step = max(int(READ_BLOCK_SECONDS * rate), 1)
            for start in range(0, frames, step):
                stop = min(start + step, frames)
                out[:, start:stop] = torch.from_numpy(read(start, stop))
        else:
            margin, o, n = _resample_margin(rate, sample_rate)
            total = math.ceil(n * frames / o)
            out = torch.empty(rows, total)
            step_out = n * max(int(READ_BLOCK_SECONDS * sample_rate) // n, 1)  # output samples per block
            for first in range(0, total, step_out):
                last = min(first + step_out, total)
                start = first // n * o  # input sample of output sample `first` (an exact multiple)
                stop = start + (last - first + n - 1) // n * o
                block = torch.from_numpy(read(start - margin, stop + margin))
                y = resample(block, rate, sample_rate)
                skip = margin // o * n
                out[:, first:last] = y[:, skip : skip + last - first]
    return out[0] if mono else out


def read_segment(path, offset, num_samples, sample_rate=SAMPLE_RATE, channel=None):
    """Reads ``num_samples`` samples (at ``sample_rate``) from ``offset`` samples into a file.

    Only the needed part of the file is decoded. Files at another rate are read around
    the segment and resampled; channels are averaged unless ``channel`` picks one.
    A segment running past the end of the file is zero-padded.

    Arguments
    ---------
    path : str or Path
        The audio file.
    offset : int
        First sample (at ``sample_rate``).
    num_samples : int
        Number of samples (at ``sample_rate``).
    sample_rate : int
        Rate of ``offset``, ``num_samples`` and the result.
    channel : int or None
        Channel to keep (None: average all channels).

    Returns
    -------
    torch.Tensor
        ``[num_samples]`` float32.

    Raises
    ------
    AudioError
        If the file is missing, unreadable, empty or holds NaN/Inf samples in the segment.

    Example
    -------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.wav")
    >>> write_audio(p, torch.arange(8000) / 8000, 8000)
    >>> seg = read_segment(p, offset=16000 - 4, num_samples=8)
    >>> seg.shape, bool((seg[4:] == 0).all())
    (torch.Size([8]), True)
    """
    path = Path(path)
    rate, frames, channels = audio_info(path)
    if frames == 0:
        raise AudioError(f"{path}: audio holds no samples. Re-create or remove it.", file=path)
    if channel is not None and not 0 <= channel < channels:
        raise AudioError(f"{path}: has {channels} channel(s), channel {channel} was asked for.", file=path)
    ratio = rate / sample_rate
    margin = 0 if rate == sample_rate else 64  # resampling filter context
    start = min(max(int(offset * ratio) - margin, 0), frames)
    stop = min(int(np.ceil((offset + num_samples) * ratio)) + margin, frames)
    try:
        data, _ = sf.read(str(path), start=start, stop=max(stop, start), dtype="float32", always_2d=True)
    except Exception as err:
        raise AudioError(f"{path}: not a readable audio file ({err}).", file=path) from err
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: audio holds NaN or Inf samples. Re-create or remove it.", file=path)
    wav = torch.from_numpy(np.ascontiguousarray(data.T))
    wav = wav.mean(dim=0) if channel is None else wav[channel]
    if rate != sample_rate:
        wav = resample(wav, rate, sample_rate)
        skip = int(round((offset * ratio - start) / ratio))
        wav = wav[skip:]
    wav = wav[:num_samples]
    if wav.shape[0] < num_samples:
        wav = torch.nn.functional.pad(wav, (0, num_samples - wav.shape[0]))
    return wav


def audio_info(path):
    """Returns ``(sample_rate, num_frames, channels)`` of an audio file without reading it.

    Example
    -------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.wav")
    >>> write_audio(p, torch.zeros(8000), 8000)
    >>> audio_info(p)
    (8000, 8000, 1)
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(
            f"{path}: file not found. Check the path (and the manifest that lists it).", file=path
        )
    try:
        info = sf.info(str(path))
    except Exception as err:
        raise AudioError(f"{path}: not a readable audio file ({err}).", file=path) from err
    return info.samplerate, info.frames, info.channels


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
