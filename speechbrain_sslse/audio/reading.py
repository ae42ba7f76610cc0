"""Reading audio: any file soundfile decodes, as 16 kHz (or any rate) float32, with clear errors.

:func:`read_audio` returns mono float32 at ``sample_rate`` and turns every way a file
can be wrong (missing, not audio, empty, too short, NaN/Inf samples) into an
:class:`AudioError` that names the file and the fix; it reads, mixes and resamples
:data:`READ_BLOCK_SECONDS` at a time, so that only the result is ever in memory.
:func:`read_segment` decodes only a segment, :func:`audio_info` only the header.

``torchaudio.load`` is not used: in torchaudio 2.9 it needs torchcodec. Reading goes
through soundfile (WAV, FLAC, NIST SPHERE, OGG ...).
"""

import contextlib
import math
import os
import struct
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

__all__ = [
    "SAMPLE_RATE",
    "READ_BLOCK_SECONDS",
    "AudioError",
    "AudioWarning",
    "resample",
    "read_audio",
    "read_segment",
    "audio_info",
]

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
    >>> from speechbrain_sslse.audio import write_audio
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
    >>> from speechbrain_sslse.audio import write_audio
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
    >>> from speechbrain_sslse.audio import write_audio
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
