"""Room impulse responses: reading, reverberation time and direct-path location."""

import numpy as np
import torch

from speechbrain_sslse.audio import AudioError, read_audio


def _as_numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def direct_path_index(rir):
    """Index of the direct-path peak of an RIR (its largest absolute sample).

    Arguments
    ---------
    rir : torch.Tensor or numpy.ndarray
        ``[T]`` impulse response.

    Returns
    -------
    int

    Example
    -------
    >>> direct_path_index(torch.tensor([0.0, 0.1, -0.9, 0.3]))
    2
    """
    return int(np.argmax(np.abs(_as_numpy(rir))))


def schroeder_curve_db(rir):
    """Schroeder backward-integrated energy decay curve in dB (0 dB at the start).

    Example
    -------
    >>> edc = schroeder_curve_db(torch.exp(-torch.arange(100.0) / 10))
    >>> round(float(edc[0]), 3), bool((edc[1:] <= edc[:-1]).all())
    (0.0, True)
    """
    h = _as_numpy(rir)
    energy = np.cumsum(h[::-1] ** 2)[::-1]
    energy = np.maximum(energy, energy[0] * 1e-12 + 1e-30)
    return 10.0 * np.log10(energy / energy[0])


def measure_t60(rir, sample_rate, decay_db=(-5.0, -25.0)):
    """Estimates the reverberation time (T60) of an impulse response.

    A line is fitted (least squares) to the Schroeder decay curve between the two
    levels of ``decay_db`` (T20 by default, ISO 3382) and extrapolated to -60 dB.
    The curve is taken from the direct path on.

    Arguments
    ---------
    rir : torch.Tensor or numpy.ndarray
        ``[T]`` impulse response.
    sample_rate : int
        Its sample rate.
    decay_db : tuple of float
        Fit range in dB below the start of the decay.

    Returns
    -------
    float
        T60 in seconds.

    Example
    -------
    >>> sr = 16000
    >>> t = torch.arange(sr) / sr
    >>> g = torch.Generator().manual_seed(0)
    >>> h = torch.randn(sr, generator=g) * 10 ** (-3 * t / 0.5)  # T60 = 0.5 s
    >>> abs(measure_t60(h, sr) - 0.5) < 0.05
    True
    """
    # Not pyroomacoustics.experimental.measure_rt60, which fits the same curve from -5 dB but
    # ends its range 20 dB below its first sample under -5 dB (here: at -25 dB, ISO 3382),
    # starts at sample 0, and returns 0.0 (or fails) where the decay is too short: the two
    # agree to 0.01 % on the mini corpus' RIRs (tests/test_data_helpers.py), but the corpus
    # generator iterates on this measure, so a switch would change the generated RIRs.
    h = _as_numpy(rir)
    h = h[direct_path_index(h) :]
    edc = schroeder_curve_db(h)
    hi, lo = decay_db
    idx = np.nonzero((edc <= hi) & (edc >= lo))[0]
    if idx.size < 2:
        raise ValueError(
            f"impulse response decays less than {-lo:.0f} dB; cannot estimate T60 "
            "(is it truncated or mostly noise?)"
        )
    t = idx / float(sample_rate)
    slope, _ = np.polyfit(t, edc[idx], 1)  # dB per second, negative
    if slope >= 0:
        raise ValueError("impulse response energy does not decay; cannot estimate T60")
    return float(-60.0 / slope)


def read_rir(path, channel=0, sample_rate=16000):
    """Reads one channel of an impulse response file at ``sample_rate``.

    A mono file is returned whatever ``channel`` says (DNS tables give channels for
    mono files too).

    Arguments
    ---------
    path : str or Path
        The RIR file.
    channel : int
        Channel index, from 0.
    sample_rate : int
        Output rate.

    Returns
    -------
    torch.Tensor
        ``[R]``.

    Example
    -------
    >>> import tempfile, os
    >>> from speechbrain_sslse.audio import write_audio
    >>> p = os.path.join(tempfile.mkdtemp(), "rir.wav")
    >>> write_audio(p, torch.tensor([[0.0, 0.5, 0.1], [0.0, 0.2, 0.1]]), 16000)
    >>> read_rir(p, channel=1).tolist(), read_rir(p).shape
    ([0.0, 0.199981689453125, 0.0999755859375], torch.Size([3]))
    """
    h = read_audio(path, sample_rate, mono=False)
    if h.shape[0] == 1:
        return h[0]
    if not 0 <= int(channel) < h.shape[0]:
        raise AudioError(f"{path}: has {h.shape[0]} channels, channel {channel} was asked for.", file=path)
    return h[int(channel)]
