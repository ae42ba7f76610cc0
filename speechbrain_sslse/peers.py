"""Two classic enhancers to compare with, both pip-installable and offline.

- :func:`rnnoise`: RNNoise (Valin, 2018) through the ``pyrnnoise`` wheel. RNNoise works
  on 48 kHz 16-bit frames of 10 ms: the input is resampled to 48 kHz, processed frame by
  frame, resampled back, and shifted by RNNoise's delay (measured once with an impulse,
  :func:`rnnoise_delay`) so that the output is aligned with the input.
- :func:`spectral_gating`: non-stationary spectral gating through ``noisereduce``.

Both take and return 16 kHz ``[T]`` float waveforms of the same length. Install them with
``pip install speechbrain-sslse[peers]``.

Authors
 * speechbrain-sslse contributors
"""

import functools

import numpy as np
import torch

from .audio import SAMPLE_RATE, resample

__all__ = ["rnnoise", "rnnoise_delay", "spectral_gating", "PEERS"]

RNNOISE_RATE = 48000


def _rnnoise_48k(wav48):
    """RNNoise over a 48 kHz float waveform in [-1, 1]; returns the raw (delayed) output."""
    try:
        from pyrnnoise.rnnoise import FRAME_SIZE, create, destroy, process_frame
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError("RNNoise needs pyrnnoise: pip install speechbrain-sslse[peers]") from err
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
    out = _rnnoise_48k(probe)
    lags = np.arange(0, 2400)
    scores = [np.dot(out[lag : lag + 38400], probe[:38400]) for lag in lags]
    return int(lags[int(np.argmax(scores))])


def rnnoise(wav, sample_rate=SAMPLE_RATE):
    """Enhances a waveform with RNNoise, aligned with the input.

    Arguments
    ---------
    wav : torch.Tensor
        ``[T]`` noisy speech.
    sample_rate : int
        Its sample rate.

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
    wav = torch.as_tensor(wav, dtype=torch.float32)
    up = resample(wav, sample_rate, RNNOISE_RATE).numpy()
    delay = rnnoise_delay()
    out = _rnnoise_48k(np.concatenate([up, np.zeros(delay)]))[delay : delay + len(up)]
    down = resample(torch.from_numpy(out).float(), RNNOISE_RATE, sample_rate)
    return torch.nn.functional.pad(down, (0, max(0, len(wav) - len(down))))[: len(wav)]


def spectral_gating(wav, sample_rate=SAMPLE_RATE):
    """Enhances a waveform with non-stationary spectral gating (``noisereduce``).

    Example
    -------
    >>> x = 0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(0))
    >>> spectral_gating(x).shape
    torch.Size([16000])
    """
    try:
        import noisereduce
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError("spectral gating needs noisereduce: pip install speechbrain-sslse[peers]") from err
    wav = torch.as_tensor(wav, dtype=torch.float32)
    out = noisereduce.reduce_noise(y=wav.numpy(), sr=sample_rate, stationary=False, n_jobs=1)
    return torch.from_numpy(np.asarray(out, dtype=np.float32))[: len(wav)]


PEERS = {"rnnoise": rnnoise, "spectral_gating": spectral_gating}
