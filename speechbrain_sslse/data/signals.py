"""Signal-level mixing: noise at a given SNR and reverberation aligned to the direct path.

These functions work on single 1-D waveforms (``[T]`` tensors) and are shared by the
mini corpus, the on-the-fly training mixer (:mod:`speechbrain_sslse.data.onthefly`), the
test-set builder and the probes. The arithmetic is torchaudio's (``add_noise``,
``fftconvolve``); what is here is the rules around it (silent noise, the FFT size, the
direct-path alignment and targets). They are also importable from
:mod:`speechbrain_sslse.data.mixing`.
"""

import math

import torch
from torchaudio.functional import add_noise, fftconvolve

from .rir import direct_path_index

EPS = 1e-10


def power(x):
    """Mean power of a waveform.

    Example
    -------
    >>> float(power(torch.ones(10) * 2))
    4.0
    """
    return x.double().pow(2).mean()


def level_dbfs(x, floor=1e-12):
    """RMS level of a waveform in dB full scale (the level :func:`set_level` sets).

    Arguments
    ---------
    x : torch.Tensor
        ``[T]`` waveform (full scale: samples in [-1, 1]).
    floor : float
        Added to the mean power, so that silence gives a finite level (-120 dB).

    Returns
    -------
    float

    Example
    -------
    >>> round(level_dbfs(0.1 * torch.ones(100)), 1)
    -20.0
    >>> level_dbfs(torch.zeros(10))
    -120.0
    """
    return 10.0 * math.log10(float(power(x)) + floor)


def snr_db(signal, noise):
    """SNR in dB of ``signal`` over ``noise`` (both ``[T]``).

    Example
    -------
    >>> round(float(snr_db(torch.ones(100), 0.1 * torch.ones(100))), 2)
    20.0
    """
    return 10.0 * torch.log10((power(signal) + EPS) / (power(noise) + EPS))


def loop_to_length(noise, length, offset=0):
    """Crops or loops ``noise`` (``[T]``) to ``length`` samples starting at ``offset``.

    A short noise repeats (unlike :func:`speechbrain_sslse.audio.fit_length`,
    which zero-pads a waveform).

    Example
    -------
    >>> loop_to_length(torch.arange(3.0), 7).tolist()
    [0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 0.0]
    """
    n = noise.shape[-1]
    if n == 0:
        raise ValueError("noise has no samples")
    reps = (offset + length) // n + 1
    return noise.repeat(reps)[offset : offset + length]


def mix_at_snr(clean, noise, snr):
    """Adds ``noise`` to ``clean`` scaled so that the SNR is ``snr`` dB.

    Arguments
    ---------
    clean : torch.Tensor
        ``[T]`` speech (reverberant or dry: the SNR is measured on what is given).
    noise : torch.Tensor
        ``[T]`` noise of the same length.
    snr : float
        Wanted SNR in dB.

    Returns
    -------
    noisy : torch.Tensor
        ``[T]`` mixture.
    scaled_noise : torch.Tensor
        ``[T]`` the noise as added.

    Example
    -------
    >>> g = torch.Generator().manual_seed(0)
    >>> s, n = torch.randn(16000, generator=g), torch.randn(16000, generator=g)
    >>> noisy, n2 = mix_at_snr(s, n, 5.0)
    >>> round(float(snr_db(s, noisy - s)), 3)
    5.0
    """
    if clean.shape != noise.shape:
        raise ValueError(f"clean {tuple(clean.shape)} and noise {tuple(noise.shape)} differ in shape")
    if not bool(noise.any()):
        # add_noise divides by the noise energy (silent noise would give NaN): nothing to add
        return clean.clone(), torch.zeros_like(clean)
    # torchaudio's add_noise, in float64 (as the gain was computed here before): the SNR of what
    # is given; it returns only the sum, so the scaled noise is the difference from the speech
    speech = clean.double()
    noisy = add_noise(speech[None], noise.double()[None], torch.tensor([float(snr)], dtype=torch.float64))
    scaled = (noisy[0] - speech).to(clean.dtype)
    return clean + scaled, scaled


def _fftconvolve(x, h):
    """Full linear convolution of ``[T]`` by ``[R]``: torchaudio's ``fftconvolve`` in float64.

    ``x`` is zero-padded so that the FFT size is a power of two (torchaudio uses the bare
    output length, which can be a slow prime size); the result is the same full
    convolution, ``T + R - 1`` samples.

    Example
    -------
    >>> _fftconvolve(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.0, -1.0])).tolist()
    [1.0, 2.0, -1.0, -2.0]
    """
    n = x.shape[-1] + h.shape[-1] - 1
    nfft = 1 << (n - 1).bit_length()
    padded = torch.nn.functional.pad(x.double(), (0, nfft - n))
    return fftconvolve(padded, h.double())[..., :n].to(x.dtype)


def reverberate(clean, rir, early_ms=None, sample_rate=16000):
    """Convolves dry speech with an RIR, aligned so the direct path is at time zero.

    Arguments
    ---------
    clean : torch.Tensor
        ``[T]`` dry speech.
    rir : torch.Tensor
        ``[R]`` impulse response.
    early_ms : float or None
        ``None``: the target is the dry speech scaled by the direct-path gain.
        Otherwise the target keeps the early reflections up to ``early_ms`` after
        the direct path (the "early reverberation" target).
    sample_rate : int
        Sample rate of both signals.

    Returns
    -------
    reverberant : torch.Tensor
        ``[T]`` reverberant speech, time-aligned with ``target``.
    target : torch.Tensor
        ``[T]`` the training target aligned with ``reverberant``.

    Example
    -------
    >>> rir = torch.tensor([0.0, 0.0, 0.5, 0.0, 0.25])
    >>> x = torch.zeros(8); x[0] = 1.0
    >>> rev, tgt = reverberate(x, rir)
    >>> rev.tolist()[:3], tgt.tolist()[:2]
    ([0.5, 0.0, 0.25], [0.5, 0.0])
    """
    # Not speechbrain.processing.signal_processing.reverberate (AddReverb): it also puts the
    # direct path at lag 0, but convolves circularly over the input's length (the tail wraps
    # round to the start) and rescales the level; here the linear convolution is cut to the
    # input's length at the RIR's own gain, with a target aligned to it.
    d = direct_path_index(rir)
    h = rir[d:]
    length = clean.shape[-1]
    reverberant = _fftconvolve(clean, h)[:length]
    if early_ms is None:
        target = clean * h[0]
    else:
        n_early = int(round(early_ms * sample_rate / 1000.0)) + 1
        target = _fftconvolve(clean, h[:n_early])[:length]
    return reverberant, target


def set_level(signals, level_db, reference=0, peak=0.99):
    """Scales aligned signals by one gain: ``signals[reference]`` gets RMS ``level_db`` dBFS.

    The gain is then lowered if needed so that no signal peaks above ``peak``
    (clipping protection).

    Arguments
    ---------
    signals : list of torch.Tensor
        Aligned ``[T]`` signals (e.g. mixture and target).
    level_db : float
        Wanted RMS of the reference signal in dB full scale.
    reference : int
        Index of the signal whose level is set.
    peak : float
        Largest allowed absolute sample.

    Returns
    -------
    list of torch.Tensor

    Example
    -------
    >>> noisy, target = set_level([torch.ones(4) * 0.5, torch.ones(4) * 0.25], -20.0)
    >>> round(float(noisy[0]), 3), round(float(target[0]), 3)
    (0.1, 0.05)
    """
    rms = float(power(signals[reference]).sqrt())
    gain = 10.0 ** (level_db / 20.0) / max(rms, EPS)
    top = max(float(s.abs().max()) for s in signals) * gain
    if top > peak:
        gain *= peak / top
    return [s * gain for s in signals]
