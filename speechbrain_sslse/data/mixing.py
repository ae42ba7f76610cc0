"""Signal-level mixing: noise at a given SNR and reverberation aligned to the direct path.

These functions work on single 1-D waveforms (``[T]`` tensors) and are shared by the
mini corpus, the on-the-fly training mixer, the test-set builder and the probes. The
arithmetic is torchaudio's (``add_noise``, ``fftconvolve``); what is here is the rules
around it (silent noise, the FFT size, the direct-path alignment and targets).
"""

import numpy as np
import torch
from torchaudio.functional import add_noise, fftconvolve

from speechbrain_sslse.audio import AudioError, read_audio, read_segment

from .rir import direct_path_index, read_rir

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


class ChannelAugment:
    """Random recording-channel effects: microphone colouring, band limits and clipping.

    Real recordings differ from clean studio speech in what the microphone and the channel
    do to *both* speech and noise; these effects are applied alike to the mixture and the
    target (the model learns to remove the noise, not the channel), except clipping, which
    is applied to the mixture alone (the target stays unclipped).

    - colouring (``eq_probability``): one to three peaking filters (centre 100-6000 Hz,
      log-uniform; gain within +-``eq_gain_db``; Q 0.5-2) and, half of the time, a high-pass
      at 50-250 Hz;
    - band limit (``bandlimit_probability``): resampled through 8, 11.025 or 12 kHz;
    - clipping (``clip_probability``): the mixture clipped at the level that clips
      0.1-2 % of its samples.

    Arguments
    ---------
    eq_probability, bandlimit_probability, clip_probability : float
        Probabilities of each effect.
    eq_gain_db : float
        Largest gain of a peaking filter.
    sample_rate : int
        Sample rate of the signals.

    Example
    -------
    >>> import numpy as np
    >>> augment = ChannelAugment(eq_probability=1.0, bandlimit_probability=1.0, clip_probability=1.0)
    >>> g = torch.Generator().manual_seed(0)
    >>> noisy, target = augment(0.1 * torch.randn(16000, generator=g), 0.1 * torch.randn(16000, generator=g),
    ...                         np.random.default_rng(0))
    >>> noisy.shape, target.shape, bool(noisy.abs().max() < 0.5)
    (torch.Size([16000]), torch.Size([16000]), True)
    """

    def __init__(
        self,
        eq_probability=0.5,
        bandlimit_probability=0.1,
        clip_probability=0.05,
        eq_gain_db=8.0,
        sample_rate=16000,
    ):
        self.eq_probability = eq_probability
        self.bandlimit_probability = bandlimit_probability
        self.clip_probability = clip_probability
        self.eq_gain_db = eq_gain_db
        self.sample_rate = sample_rate

    def _colour(self, signals, rng):
        import torchaudio.functional as AF

        sr = self.sample_rate
        filters = []
        for _ in range(int(rng.integers(1, 4))):
            centre = float(np.exp(rng.uniform(np.log(100.0), np.log(6000.0))))
            gain = float(rng.uniform(-self.eq_gain_db, self.eq_gain_db))
            q = float(rng.uniform(0.5, 2.0))
            filters.append(lambda x, c=centre, g=gain, q=q: AF.equalizer_biquad(x, sr, c, g, q))
        if rng.random() < 0.5:
            cutoff = float(rng.uniform(50.0, 250.0))
            filters.append(lambda x, c=cutoff: AF.highpass_biquad(x, sr, c))
        out = []
        for x in signals:
            y = x.double()
            for f in filters:
                y = f(y)
            out.append(y.to(x.dtype))
        return out

    def _bandlimit(self, signals, rng):
        import torchaudio.functional as AF

        low = int([8000, 11025, 12000][int(rng.integers(3))])
        sr = self.sample_rate
        return [AF.resample(AF.resample(x, sr, low), low, sr)[: x.shape[-1]] for x in signals]

    def __call__(self, noisy, target, rng):
        """Applies the drawn effects: ``[T], [T] -> [T], [T]``."""
        signals = [noisy, target]
        if rng.random() < self.eq_probability:
            signals = self._colour(signals, rng)
        if rng.random() < self.bandlimit_probability:
            signals = self._bandlimit(signals, rng)
        noisy, target = signals
        if rng.random() < self.clip_probability:
            fraction = float(rng.uniform(0.001, 0.02))
            level = float(torch.quantile(noisy.abs().float(), 1.0 - fraction))
            if level > 0:
                noisy = noisy.clamp(-level, level)
        return noisy, target


class OnTheFlyMixer:
    """Noisy, reverberant training mixtures made on the fly from clean speech.

    For one clean utterance: a random segment, an RIR (with probability
    ``rir_probability``) whose T60 lies in ``t60_range``, a noise segment at an SNR
    drawn uniformly from ``snr_range`` (measured against the speech as it appears
    in the mixture, i.e. reverberant when an RIR is applied), a random level and
    clipping protection applied to mixture and target alike. The target is the dry
    speech aligned with the RIR's direct path (the RIR is scaled to a unit direct
    path), or, with ``early_ms``, the speech with the reflections of the first
    ``early_ms`` milliseconds. Reverberation sees up to ``context_seconds`` of the
    utterance before the segment, so the segment starts with a natural reverberant tail.

    All randomness comes from the ``numpy.random.Generator`` passed to :meth:`mix`, so a
    seeded generator gives a fixed mixture (used for validation sets).

    The settings are the constructor's, so that a recipe's yaml creates the mixer with
    ``!new:`` (as SpeechBrain's ``AddNoise``/``AddReverb``); the noise and RIR files, known
    once the data are prepared, are given to :meth:`use_files` (or, from Python, as
    ``noises`` and ``rirs`` here).

    Arguments
    ---------
    noises : list of dict, optional
        Noise files: ``{"wav": path, "duration": seconds}`` (as for :meth:`use_files`).
    rirs : list of dict, optional
        Impulse responses: ``{"wav": path, "t60": seconds, "channel": int (optional)}``;
        those with T60 outside ``t60_range`` are never used.
    segment_seconds : float or None
        Length of the mixtures (None: the whole utterance).
    snr_range : tuple of float
        SNR range in dB.
    rir_probability : float
        Probability of reverberating a mixture.
    t60_range : tuple of float
        Accepted T60 range in seconds.
    level_range : tuple of float
        Range of the mixture's RMS level in dBFS.
    peak : float
        Largest absolute sample of mixture and target.
    early_ms : float or None
        Keep early reflections up to this time after the direct path in the target.
    context_seconds : float
        Speech before the segment that feeds the reverberant tail.
    sample_rate : int
        Sample rate of everything.
    on_bad_file : callable, optional
        Called as ``on_bad_file(path, reason)`` when a noise or RIR file is unusable
        (it is then dropped from its pool).
    augment : ChannelAugment, optional
        Channel effects applied to mixture and target before the level is set.

    Example
    -------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from speechbrain_sslse.audio import write_audio
    >>> d = tempfile.mkdtemp()
    >>> g = torch.Generator().manual_seed(0)
    >>> write_audio(os.path.join(d, "s.wav"), 0.1 * torch.randn(32000, generator=g))
    >>> write_audio(os.path.join(d, "n.wav"), 0.1 * torch.randn(16000, generator=g))
    >>> noises = [{"wav": os.path.join(d, "n.wav"), "duration": 1.0}]
    >>> mixer = OnTheFlyMixer(rir_probability=0.0, segment_seconds=1.0).use_files(noises, rirs=[])
    >>> mix = mixer.mix(os.path.join(d, "s.wav"), 2.0, np.random.default_rng(0))
    >>> mix["noisy"].shape, mix["target"].shape, -5 <= mix["snr"] <= 20
    (torch.Size([16000]), torch.Size([16000]), True)
    >>> again = OnTheFlyMixer(noises, [], rir_probability=0.0, segment_seconds=1.0)
    >>> torch.equal(again.mix(os.path.join(d, "s.wav"), 2.0, np.random.default_rng(0))["noisy"], mix["noisy"])
    True
    """

    def __init__(
        self,
        noises=None,
        rirs=None,
        segment_seconds=1.0,
        snr_range=(-5.0, 20.0),
        rir_probability=0.75,
        t60_range=(0.3, 1.3),
        level_range=(-35.0, -15.0),
        peak=0.99,
        early_ms=None,
        context_seconds=0.5,
        sample_rate=16000,
        on_bad_file=None,
        augment=None,
    ):
        self.segment_seconds = segment_seconds
        self.snr_range = tuple(snr_range)
        self.rir_probability = rir_probability
        self.t60_range = tuple(t60_range)
        self.level_range = tuple(level_range)
        self.peak = peak
        self.early_ms = early_ms
        self.context_seconds = context_seconds
        self.sample_rate = sample_rate
        self.on_bad_file = on_bad_file
        self.augment = augment
        self.bad_files = []
        self.noises, self.rirs = None, None
        self._silent = {}  # noise file -> whether it is digital silence throughout
        self._rir_cache = {}
        if noises is not None or rirs is not None:
            self.use_files(noises or [], rirs or [])

    def use_files(self, noises, rirs, on_bad_file=None):
        """Gives the mixer its noise and RIR files; returns the mixer.

        Arguments
        ---------
        noises : list of dict
            Noise files: ``{"wav": path, "duration": seconds}``.
        rirs : list of dict
            Impulse responses: ``{"wav": path, "t60": seconds, "channel": int (optional)}``;
            those with T60 outside ``t60_range`` are never used.
        on_bad_file : callable, optional
            Replaces the constructor's ``on_bad_file`` (e.g. a run's log of unusable files).
        """
        if not noises:
            raise ValueError("the mixer needs at least one noise file")
        t60_range = t60_min, t60_max = self.t60_range
        in_range = [r for r in rirs if r.get("t60") is not None and t60_min <= r["t60"] <= t60_max]
        if self.rir_probability > 0 and not in_range:
            raise ValueError(
                f"no RIR has a T60 in {list(t60_range)} s: give RIRs in range or set rir_probability to 0"
            )
        self.noises, self.rirs = list(noises), in_range
        if on_bad_file is not None:
            self.on_bad_file = on_bad_file
        return self

    def load_rir(self, rir):
        """An RIR as ``[R]`` at the mixer's rate, scaled to a unit direct path (cached)."""
        key = (rir["wav"], rir.get("channel"))
        if key not in self._rir_cache:
            h = read_rir(rir["wav"], rir.get("channel") or 0, self.sample_rate)
            direct = float(h[direct_path_index(h)])
            if direct == 0.0:
                raise AudioError(
                    f"{rir['wav']}: impulse response is silent. Remove it from the RIR list.", file=rir["wav"]
                )
            self._rir_cache[key] = h / direct
        return self._rir_cache[key]

    def _drop(self, pool, item, err):
        """Removes an unusable noise or RIR from its pool and reports it."""
        pool.remove(item)
        self.bad_files.append((item["wav"], str(err)))
        if self.on_bad_file is not None:
            self.on_bad_file(item["wav"], str(err))
        if not pool:
            raise AudioError(f"every file of the mixer's pool is unusable; last: {err}", file=item["wav"])

    def _draw_rir(self, rng):
        """An RIR drawn from the pool and its samples (None, None without reverberation)."""
        while self.rirs and rng.random() < self.rir_probability:
            rir = self.rirs[int(rng.integers(len(self.rirs)))]
            try:
                return rir, self.load_rir(rir)
            except AudioError as err:
                self._drop(self.rirs, rir, err)
        return None, None

    def _is_silent(self, item):
        """Whether a whole noise file is digital silence (cached)."""
        path = item["wav"]
        if path not in self._silent:
            try:
                self._silent[path] = float(read_audio(path, self.sample_rate).abs().max()) == 0.0
            except AudioError:
                self._silent[path] = True
        return self._silent[path]

    def _draw_noise(self, length, rng):
        """A noise segment of ``length`` samples (looped if the file is shorter) and its file."""
        sr = self.sample_rate
        while True:
            item = self.noises[int(rng.integers(len(self.noises)))]
            noise_len = max(int(item.get("duration", 0) * sr), 1)
            offset = int(rng.integers(0, max(noise_len - length, 0) + 1))
            try:
                noise = read_segment(item["wav"], offset, min(length, noise_len), sr)
            except AudioError as err:
                self._drop(self.noises, item, err)
                continue
            if float(noise.abs().max()) == 0.0:
                # A silent stretch (a clip padded with digital silence): draw again; the file
                # is dropped only when it is silent throughout.
                if self._is_silent(item):
                    self._drop(self.noises, item, f"{item['wav']}: noise file is silent")
                continue
            return loop_to_length(noise, length), item

    def mix(self, wav, duration, rng, segment_seconds=None):
        """Makes one mixture.

        Arguments
        ---------
        wav : str
            Clean speech file.
        duration : float
            Its duration in seconds (from the manifest).
        rng : numpy.random.Generator
            Source of all random choices.
        segment_seconds : float, optional
            Mixture length for this call (default: the mixer's ``segment_seconds``).

        Returns
        -------
        dict
            ``noisy`` and ``target`` (``[T]`` float32), ``speech`` (the speech as it is
            in the mixture, so that ``noisy - speech`` is the added noise), and what was
            drawn: ``snr``, ``noise``, ``rir`` (path or None), ``t60`` (or None), ``level``,
            ``offset``.

        Raises
        ------
        AudioError
            If ``wav`` cannot be read (unusable noises and RIRs are dropped from their
            pools, reported to ``on_bad_file``, and replaced by others).
        """
        if self.noises is None:
            raise RuntimeError("the mixer has no files yet: call use_files(noises, rirs) first")
        sr = self.sample_rate
        seconds = self.segment_seconds if segment_seconds is None else segment_seconds
        total = max(int(duration * sr), 1)
        length = total if seconds is None else int(seconds * sr)
        offset = int(rng.integers(0, total - length + 1)) if total > length else 0
        rir, h = self._draw_rir(rng)
        context = min(offset, int(self.context_seconds * sr)) if rir is not None else 0
        speech = read_segment(wav, offset - context, length + context, sr)
        if rir is not None:
            reverberant, target = reverberate(speech, h, self.early_ms, sr)
            reverberant, target = reverberant[context:], target[context:]
        else:
            reverberant = target = speech
        noise, noise_item = self._draw_noise(length, rng)
        snr = float(rng.uniform(*self.snr_range))
        noisy, _ = mix_at_snr(reverberant, noise, snr)
        if self.augment is not None:
            noisy, target = self.augment(noisy, target, rng)
        level = float(rng.uniform(*self.level_range))
        noisy, target, speech = set_level([noisy, target, reverberant], level, peak=self.peak)
        return {
            "noisy": noisy.float(),
            "target": target.float(),
            "speech": speech.float(),
            "snr": snr,
            "noise": noise_item["wav"],
            "rir": None if rir is None else rir["wav"],
            "t60": None if rir is None else float(rir["t60"]),
            "level": level,
            "offset": offset,
        }
