"""The classic peers: RNNoise (a small recurrent network on 48 kHz frames, through ``pyrnnoise``)
and non-stationary spectral gating (``noisereduce``).

Authors
 * speechbrain-sslse contributors
"""

import functools

import numpy as np
import torch

from speechbrain_sslse.audio import SAMPLE_RATE, fit_length, resample

from .common import _lag_of, _missing, _waveform

RNNOISE_RATE = 48000


def _rnnoise_48k(wav48):
    """RNNoise over a 48 kHz float waveform in [-1, 1]; returns the raw (delayed) output."""
    try:
        from pyrnnoise.rnnoise import FRAME_SIZE, create, destroy, process_frame
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise _missing("rnnoise", "pyrnnoise") from err
    x = np.asarray(wav48, dtype=np.float64)
    pad = (-len(x)) % FRAME_SIZE
    frames = np.concatenate([x, np.zeros(pad)]).reshape(-1, FRAME_SIZE)
    pcm = np.clip(np.round(frames * 32767.0), -32768, 32767).astype(np.int16)
    state = create()
    try:
        out = [process_frame(state, frame)[0] for frame in pcm]
    finally:
        destroy(state)
    return np.concatenate(out).astype(np.float64)[: len(x)] / 32767.0


@functools.cache
def rnnoise_delay():
    """RNNoise's delay in 48 kHz samples, measured on a band-limited noise burst.

    Example
    -------
    >>> rnnoise_delay() >= 0
    True
    """
    rng = np.random.default_rng(0)
    probe = np.zeros(RNNOISE_RATE)
    probe[4800:9600] = 0.3 * rng.standard_normal(4800)
    return _lag_of(_rnnoise_48k(probe), probe, 2400)


def rnnoise(wav, sample_rate=SAMPLE_RATE, num_threads=1):
    """Enhances a waveform with RNNoise, aligned with the input.

    RNNoise (J.-M. Valin, 2018; BSD-3-Clause) through the ``pyrnnoise`` wheel (Apache-2.0). It works
    on 48 kHz 16-bit frames of 10 ms: the input is resampled to 48 kHz, processed frame by
    frame, resampled back, and shifted by RNNoise's delay (:func:`rnnoise_delay`).

    Arguments
    ---------
    wav : torch.Tensor
        ``[T]`` noisy speech.
    sample_rate : int
        Its sample rate.
    num_threads : int
        Accepted for a uniform interface; RNNoise runs on one thread.

    Returns
    -------
    torch.Tensor
        ``[T]`` enhanced speech at ``sample_rate``.

    Example
    -------
    >>> x = 0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(0))
    >>> rnnoise(x).shape
    torch.Size([16000])
    """
    wav = _waveform(wav)
    up = resample(wav, sample_rate, RNNOISE_RATE).numpy()
    delay = rnnoise_delay()
    out = _rnnoise_48k(np.concatenate([up, np.zeros(delay)]))[delay : delay + len(up)]
    return fit_length(resample(torch.from_numpy(out).float(), RNNOISE_RATE, sample_rate), len(wav))


def spectral_gating(wav, sample_rate=SAMPLE_RATE, num_threads=1):
    """Enhances a waveform with non-stationary spectral gating.

    ``noisereduce`` (T. Sainburg; MIT), ``reduce_noise(stationary=False)``.

    Arguments
    ---------
    wav : torch.Tensor
        ``[T]`` noisy speech.
    sample_rate : int
        Its sample rate.
    num_threads : int
        Accepted for a uniform interface; the gating runs on one thread (``n_jobs=1``).

    Returns
    -------
    torch.Tensor
        ``[T]`` enhanced speech at ``sample_rate``.

    Example
    -------
    >>> x = 0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(0))
    >>> spectral_gating(x).shape
    torch.Size([16000])
    """
    try:
        import noisereduce
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise _missing("spectral_gating", "noisereduce") from err
    wav = _waveform(wav)
    out = noisereduce.reduce_noise(y=wav.numpy(), sr=sample_rate, stationary=False, n_jobs=1)
    return fit_length(torch.from_numpy(np.asarray(out, dtype=np.float32)), len(wav))
