"""Audio input/output shared by every part of the project.

All audio enters through :func:`read_audio`, which returns 16 kHz mono float32
and turns every way a file can be wrong (missing, not audio, empty, too short,
NaN/Inf samples) into an :class:`AudioError` that names the file and the fix.
Files are written with :func:`write_audio`, atomically (write, then rename), so
that an interrupted run never leaves a half-written file behind.

``torchaudio.load``/``save`` are not used: in torchaudio 2.9 they need
torchcodec. Reading goes through soundfile (WAV, FLAC, NIST SPHERE, OGG ...).

The parts: :mod:`.reading` (:func:`read_audio`, :func:`read_segment`,
:func:`audio_info`, :func:`resample`; its block size ``READ_BLOCK_SECONDS``),
:mod:`.writing` (:func:`atomic_path`, :func:`write_audio`, :class:`AudioWriteError`)
and :mod:`.shapes` (:func:`fit_length`, :func:`as_waveforms`, :func:`as_lengths`).
"""

from .reading import SAMPLE_RATE, AudioError, AudioWarning, audio_info, read_audio, read_segment, resample
from .shapes import as_lengths, as_waveforms, fit_length
from .writing import AudioWriteError, atomic_path, write_audio

__all__ = [
    "SAMPLE_RATE",
    "AudioError",
    "AudioWarning",
    "AudioWriteError",
    "read_audio",
    "read_segment",
    "audio_info",
    "resample",
    "atomic_path",
    "write_audio",
    "fit_length",
    "as_waveforms",
    "as_lengths",
]
