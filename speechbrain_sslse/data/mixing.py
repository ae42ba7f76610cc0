"""Signal-level mixing: noise at a given SNR and reverberation aligned to the direct path.

These functions work on single 1-D waveforms (``[T]`` tensors) and are shared by the
mini corpus, the on-the-fly training mixer, the test-set builder and the probes.
"""

import torch
import torch.nn.functional as F

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


def snr_db(signal, noise):
    """SNR in dB of ``signal`` over ``noise`` (both ``[T]``).

    Example
    -------
    >>> round(float(snr_db(torch.ones(100), 0.1 * torch.ones(100))), 2)
    20.0
    """
    return 10.0 * torch.log10((power(signal) + EPS) / (power(noise) + EPS))


def fit_length(noise, length, offset=0):
    """Crops or loops ``noise`` (``[T]``) to ``length`` samples starting at ``offset``.

    Example
    -------
    >>> fit_length(torch.arange(3.0), 7).tolist()
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
    gain = torch.sqrt(power(clean) / ((power(noise) + EPS) * 10.0 ** (snr / 10.0)))
    scaled = (noise.double() * gain).to(clean.dtype)
    return clean + scaled, scaled


def _fftconvolve(x, h):
    n = x.shape[-1] + h.shape[-1] - 1
    nfft = 1 << (n - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(x.double(), nfft) * torch.fft.rfft(h.double(), nfft), nfft)
    return y[..., :n].to(x.dtype)


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


def normalize_peak(signals, peak=0.9):
    """Scales several aligned signals by one gain so that the loudest peak is ``peak``.

    Used as clipping protection: the same gain applies to mixture and target.

    Example
    -------
    >>> a, b = normalize_peak([torch.tensor([2.0, -4.0]), torch.tensor([1.0, 1.0])], 0.5)
    >>> a.tolist(), b.tolist()
    ([0.25, -0.5], [0.125, 0.125])
    """
    top = max(float(s.abs().max()) for s in signals)
    if top <= peak or top == 0.0:
        return list(signals)
    g = peak / top
    return [s * g for s in signals]


def pad_to(x, length):
    """Zero-pads (or crops) the last dimension of ``x`` to ``length``.

    Example
    -------
    >>> pad_to(torch.ones(2), 4).tolist()
    [1.0, 1.0, 0.0, 0.0]
    """
    if x.shape[-1] >= length:
        return x[..., :length]
    return F.pad(x, (0, length - x.shape[-1]))
