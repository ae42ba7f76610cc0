"""Noise generators: stationary (white, pink, brown) and non-stationary (babble, machinery, impulsive).

Every generator takes a length in samples, a sample rate and a
``numpy.random.Generator`` and returns a ``[T]`` float64 signal with unit RMS;
:func:`make_noise` scales the result to a file level. Different generators (or
seeds) give different instances, so training noise (DNS) and test noise
(NOISEX, DEMAND) never share samples.

- white: Gaussian.
- pink / brown: Gaussian shaped in the frequency domain to 1/f / 1/f^2 power
  (flat below 20 Hz, no DC).
- babble: several eSpeak NG talkers (voice variants no corpus speaker uses)
  reading pool sentences with random pauses, summed.
- machinery: harmonics of a 35-110 Hz hum with slow frequency and amplitude
  modulation, periodic thumps and broadband noise (like NOISEX's ``factory1``).
- impulsive: random decaying noise bursts and ringing clicks over a faint floor,
  partly in rapid bursts (like NOISEX's ``machinegun`` or kitchen clatter).
"""

import numpy as np
import torch

from ..audio import resample
from .espeak import private_espeak
from .speakers import ACCENTS, BABBLE_VARIANTS
from .text import SENTENCES

NOISE_TYPES = ("white", "pink", "brown", "babble", "machinery", "impulsive")

# NOISEX-92 file name of each type (the closest real NOISEX-92 recording).
NOISEX_NAMES = {
    "white": "white",
    "pink": "pink",
    "brown": "volvo",
    "babble": "babble",
    "machinery": "factory1",
    "impulsive": "machinegun",
}

# DEMAND environments: the types mixed in each, with their levels in dB.
DEMAND_ENVIRONMENTS = {
    "DKITCHEN": {"impulsive": 0.0, "machinery": -10.0, "pink": -12.0},
    "DLIVING": {"babble": -4.0, "pink": -10.0, "impulsive": -12.0},
    "NPARK": {"brown": -2.0, "babble": -14.0, "pink": -9.0},
    "OOFFICE": {"pink": -6.0, "babble": -9.0, "impulsive": -12.0, "machinery": -16.0},
    "PCAFETER": {"babble": 0.0, "impulsive": -7.0, "pink": -14.0},
    "STRAFFIC": {"brown": 0.0, "machinery": -6.0, "pink": -8.0},
    "TBUS": {"machinery": 0.0, "brown": -3.0, "babble": -14.0},
}

NOISE_RMS = 0.05  # about -26 dBFS
NOISE_PEAK = 0.95


def _unit_rms(x):
    rms = float(np.sqrt(np.mean(np.square(x))))
    return x / rms if rms > 0 else x


def white_noise(length, sample_rate, rng):
    """Gaussian white noise, unit RMS, ``[length]``.

    Example
    -------
    >>> x = white_noise(16000, 16000, np.random.default_rng(0))
    >>> x.shape, round(float(np.sqrt(np.mean(x ** 2))), 6)
    ((16000,), 1.0)
    """
    return _unit_rms(rng.standard_normal(length))


def colored_noise(length, sample_rate, rng, exponent, low_hz=20.0):
    """Gaussian noise with power spectrum ``1/f**exponent`` above ``low_hz`` (flat below, no DC).

    Example
    -------
    >>> x = colored_noise(32000, 16000, np.random.default_rng(0), exponent=2.0)
    >>> spec = np.abs(np.fft.rfft(x)) ** 2
    >>> bool(spec[100:200].mean() > 100 * spec[3000:4000].mean())
    True
    """
    spec = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1.0 / sample_rate)
    spec *= np.maximum(freqs, low_hz) ** (-exponent / 2.0)
    spec[0] = 0.0
    return _unit_rms(np.fft.irfft(spec, length))


def pink_noise(length, sample_rate, rng):
    """Pink (1/f) noise, unit RMS.

    Example
    -------
    >>> pink_noise(1000, 16000, np.random.default_rng(0)).shape
    (1000,)
    """
    return colored_noise(length, sample_rate, rng, 1.0)


def brown_noise(length, sample_rate, rng):
    """Brown (1/f^2) noise, unit RMS.

    Example
    -------
    >>> brown_noise(1000, 16000, np.random.default_rng(0)).shape
    (1000,)
    """
    return colored_noise(length, sample_rate, rng, 2.0)


def _talker(length, sample_rate, rng, es):
    variant = str(rng.choice(BABBLE_VARIANTS))
    voice = ACCENTS[int(rng.integers(len(ACCENTS)))][0]
    params = {
        "pitch": int(rng.integers(20, 81)),
        "pitch_range": int(rng.integers(30, 90)),
        "rate": int(rng.integers(140, 220)),
    }
    need = int(np.ceil(length * es.sample_rate / sample_rate)) + es.sample_rate // 10
    offset = int(rng.integers(0, 3 * es.sample_rate))  # talkers do not start together
    pieces, total = [], 0
    while total < offset + need:
        syn = es.synthesize(str(rng.choice(SENTENCES)), voice=voice, variant=variant, **params)
        pause = np.zeros(int(rng.uniform(0.05, 0.5) * es.sample_rate), dtype=np.float32)
        pieces += [syn.wav, pause]
        total += len(syn.wav) + len(pause)
    wav = np.concatenate(pieces)[offset : offset + need]
    out = resample(torch.from_numpy(wav), es.sample_rate, sample_rate).numpy().astype(np.float64)
    return _unit_rms(out[:length])


def babble_noise(length, sample_rate, rng, talkers=6):
    """Babble: ``talkers`` eSpeak NG voices (not corpus speakers) speaking at once, unit RMS.

    Example
    -------
    >>> x = babble_noise(4000, 16000, np.random.default_rng(0), talkers=2)
    >>> x.shape, bool(np.isfinite(x).all())
    ((4000,), True)
    """
    if talkers < 1:
        raise ValueError("babble needs at least one talker")
    mix = np.zeros(length)
    with private_espeak() as es:  # fresh library state: reproducible talkers
        for _ in range(talkers):
            mix += 10 ** (rng.uniform(-3.0, 3.0) / 20.0) * _talker(length, sample_rate, rng, es)
    return _unit_rms(mix)


def machinery_noise(length, sample_rate, rng):
    """Modulated machinery: hum harmonics with slow FM/AM, periodic thumps and broadband noise; unit RMS.

    Example
    -------
    >>> x = machinery_noise(16000, 16000, np.random.default_rng(0))
    >>> x.shape, bool(np.isfinite(x).all())
    ((16000,), True)
    """
    t = np.arange(length) / sample_rate
    f0 = rng.uniform(35.0, 110.0)
    fm = 1.0 + rng.uniform(0.002, 0.01) * np.sin(
        2 * np.pi * rng.uniform(0.05, 0.3) * t + rng.uniform(0, 2 * np.pi)
    )
    phase = 2 * np.pi * np.cumsum(f0 * fm) / sample_rate
    hum = np.zeros(length)
    n_harm = int(min(40, (0.45 * sample_rate) // f0, 4000 // f0))
    for k in range(1, n_harm + 1):
        hum += rng.uniform(0.3, 1.0) * k**-0.8 * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    am_rate = rng.uniform(0.5, 4.0)
    am = 1.0 + rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * am_rate * t + rng.uniform(0, 2 * np.pi))
    thumps = np.zeros(length)
    period = rng.uniform(0.3, 1.2)
    decay = np.exp(-np.arange(int(0.12 * sample_rate)) / (0.025 * sample_rate))
    ring = decay * np.sin(2 * np.pi * rng.uniform(80.0, 250.0) * np.arange(decay.size) / sample_rate)
    for start in np.arange(rng.uniform(0, period), t[-1] if length else 0, period):
        i = int(start * sample_rate)
        seg = ring[: length - i] * rng.uniform(0.5, 1.0)
        thumps[i : i + seg.size] += seg
    broadband = colored_noise(length, sample_rate, rng, 0.5)
    return _unit_rms(_unit_rms(hum) * am + 0.6 * _unit_rms(thumps + 1e-12) + 0.3 * broadband)


def impulsive_noise(length, sample_rate, rng):
    """Impulsive clatter: random decaying bursts and ringing clicks (some in rapid series); unit RMS.

    Example
    -------
    >>> x = impulsive_noise(16000, 16000, np.random.default_rng(0))
    >>> bool(np.abs(x).max() > 4 * np.sqrt(np.mean(x ** 2)))
    True
    """
    out = 0.01 * colored_noise(length, sample_rate, rng, 1.0)
    rate = rng.uniform(2.0, 6.0)  # events per second
    n_events = max(1, rng.poisson(rate * length / sample_rate))
    for _ in range(n_events):
        onset = int(rng.integers(0, max(1, length)))
        shots = int(rng.integers(3, 9)) if rng.random() < 0.25 else 1  # a rapid burst of shots
        gap = int(rng.uniform(0.06, 0.1) * sample_rate)
        for s in range(shots):
            start = onset + s * gap
            if start >= length:
                break
            dur = int(rng.uniform(0.03, 0.25) * sample_rate)
            n = np.arange(min(dur, length - start))
            tau = rng.uniform(0.004, 0.04) * sample_rate
            burst = rng.standard_normal(n.size) * np.exp(-n / tau)
            if rng.random() < 0.5:  # ringing click, e.g. cutlery or glass
                f = rng.uniform(1500.0, min(6000.0, 0.45 * sample_rate))
                burst += 2.0 * np.sin(2 * np.pi * f * n / sample_rate) * np.exp(-n / (3 * tau))
            out[start : start + n.size] += np.exp(rng.normal(0.0, 0.6)) * burst
    return _unit_rms(out)


GENERATORS = {
    "white": white_noise,
    "pink": pink_noise,
    "brown": brown_noise,
    "babble": babble_noise,
    "machinery": machinery_noise,
    "impulsive": impulsive_noise,
}


def to_level(x, rms=NOISE_RMS, peak=NOISE_PEAK):
    """Scales a signal to ``rms``, then down if its peak would exceed ``peak``; float32.

    Example
    -------
    >>> y = to_level(np.r_[np.zeros(999), 1.0])  # RMS 0.05 would put the peak at 1.58
    >>> round(float(np.abs(y).max()), 2)
    0.95
    """
    x = _unit_rms(np.asarray(x, dtype=np.float64)) * rms
    top = float(np.abs(x).max()) if x.size else 0.0
    if top > peak:
        x = x * (peak / top)
    return x.astype(np.float32)


def make_noise(kind, seconds, sample_rate, rng):
    """A noise file's signal: ``seconds`` of noise ``kind`` at ``sample_rate``, at file level.

    Arguments
    ---------
    kind : str
        One of :data:`NOISE_TYPES`.
    seconds : float
        Duration.
    sample_rate : int
        Rate (any, e.g. 19980 Hz for NOISEX-92).
    rng : numpy.random.Generator
        The item's generator.

    Returns
    -------
    numpy.ndarray
        ``[seconds * sample_rate]`` float32.

    Example
    -------
    >>> make_noise("pink", 0.5, 19980, np.random.default_rng(0)).shape
    (9990,)
    """
    if kind not in GENERATORS:
        raise ValueError(f"unknown noise type {kind!r}; choose from {', '.join(NOISE_TYPES)}")
    length = int(round(seconds * sample_rate))
    return to_level(GENERATORS[kind](length, sample_rate, rng))


def make_environment(name, seconds, sample_rate, rng_factory):
    """A DEMAND-like environment: the noise types of :data:`DEMAND_ENVIRONMENTS` mixed at their levels.

    Arguments
    ---------
    name : str
        Environment (``DKITCHEN`` ...).
    seconds : float
        Duration.
    sample_rate : int
        Rate.
    rng_factory : callable
        ``rng_factory(kind) -> numpy.random.Generator`` for each component.

    Returns
    -------
    numpy.ndarray
        ``[T]`` float32 at file level.

    Example
    -------
    >>> x = make_environment("STRAFFIC", 0.5, 16000, lambda k: np.random.default_rng(len(k)))
    >>> x.shape
    (8000,)
    """
    length = int(round(seconds * sample_rate))
    mix = np.zeros(length)
    for kind, gain_db in DEMAND_ENVIRONMENTS[name].items():
        mix += 10 ** (gain_db / 20.0) * GENERATORS[kind](length, sample_rate, rng_factory(kind))
    return to_level(mix)
