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
import os
import tempfile
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
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several types for bad files
        raise AudioError(
            f"{path}: not a readable audio file ({err}). "
            "Use WAV/FLAC/NIST SPHERE or convert it, e.g. `ffmpeg -i IN OUT.wav`.",
            file=path,
        ) from err
    if data.shape[0] == 0:
        raise AudioError(f"{path}: audio holds no samples. Re-create or remove it.", file=path)
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: audio holds NaN or Inf samples. Re-create or remove it.", file=path)
    wav = torch.from_numpy(np.ascontiguousarray(data.T))  # [C, T]
    if mono:
        wav = wav.mean(dim=0)
    wav = resample(wav, sr, sample_rate)
    duration = wav.shape[-1] / sample_rate
    if duration < min_duration:
        raise AudioError(
            f"{path}: audio is {duration:.3f} s long, shorter than the {min_duration} s "
            "this step needs. Remove it or lower the minimum duration.",
            file=path,
        )
    return wav


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


def write_audio(path, wav, sample_rate=SAMPLE_RATE, subtype="PCM_16", file_format=None):
    """Writes ``wav`` (``[T]`` or ``[C, T]``, float in [-1, 1]) atomically.

    The format follows the extension (``.wav``, ``.flac``) unless
    ``file_format`` names a soundfile format (e.g. ``"NIST"`` for TIMIT's SPHERE).

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
    with atomic_path(path) as tmp:
        sf.write(tmp, np.clip(wav, -1.0, 1.0), int(sample_rate), subtype=subtype, format=fmt)
