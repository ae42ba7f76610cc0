"""Noisy, reverberant training mixtures made on the fly from clean speech, noise and RIR files.

The mixer draws the segment, RIR, noise, SNR and level and combines them with the
signal-level primitives of :mod:`speechbrain_sslse.data.signals`; a recipe's yaml creates
it as ``!new:speechbrain_sslse.data.mixing.OnTheFlyMixer`` (re-exported there).
"""

import torch

from speechbrain_sslse.audio import AudioError, read_audio, read_segment

from .rir import direct_path_index, read_rir
from .signals import loop_to_length, mix_at_snr, reverberate, set_level


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
    babble_probability : float
        Probability that a mixture's noise is babble instead of a noise file: the sum of
        ``babble_talkers`` segments of other utterances of ``babble_speech`` (given to
        :meth:`use_files`), each at equal RMS. 0 (the default) draws nothing more from the
        generator, so the mixtures are those of a mixer without the option; ``mix(...,
        babble=False)`` turns it off for one call (validation mixtures).
    babble_talkers : tuple of int
        Smallest and largest number of talkers in a babble (inclusive).

    Example
    -------
    >>> import tempfile, os
    >>> import numpy as np
    >>> import torch
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
    >>> write_audio(os.path.join(d, "t.wav"), 0.1 * torch.randn(32000, generator=g))
    >>> talkers = [{"wav": os.path.join(d, "s.wav"), "duration": 2.0}] * 3
    >>> babbler = OnTheFlyMixer(rir_probability=0.0, babble_probability=1.0, babble_talkers=(2, 2))
    >>> babbler.use_files(noises, [], babble_speech=talkers)  # doctest: +ELLIPSIS
    <...OnTheFlyMixer object at ...>
    >>> babbler.mix(os.path.join(d, "t.wav"), 2.0, np.random.default_rng(0))["noise"]
    'babble:2'
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
        babble_probability=0.0,
        babble_talkers=(3, 7),
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
        self.babble_probability = float(babble_probability)
        self.babble_talkers = (int(babble_talkers[0]), int(babble_talkers[1]))
        if not 1 <= self.babble_talkers[0] <= self.babble_talkers[1]:
            raise ValueError(f"babble_talkers must be (low, high), 1 <= low <= high, not {babble_talkers}")
        self.babble_speech = None
        self.bad_files = []
        self.noises, self.rirs = None, None
        self._silent = {}  # noise file -> whether it is digital silence throughout
        self._rir_cache = {}
        if noises is not None or rirs is not None:
            self.use_files(noises or [], rirs or [])

    def use_files(self, noises, rirs, on_bad_file=None, babble_speech=None):
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
        babble_speech : list of dict, optional
            Speech files ``{"wav": path, "duration": seconds}`` whose sums make babble
            (needed when ``babble_probability`` > 0; e.g. the training utterances).
        """
        if not noises:
            raise ValueError("the mixer needs at least one noise file")
        t60_range = t60_min, t60_max = self.t60_range
        in_range = [r for r in rirs if r.get("t60") is not None and t60_min <= r["t60"] <= t60_max]
        if self.rir_probability > 0 and not in_range:
            raise ValueError(
                f"no RIR has a T60 in {list(t60_range)} s: give RIRs in range or set rir_probability to 0"
            )
        if self.babble_probability > 0 and len(babble_speech or []) < 2:
            raise ValueError("babble_probability > 0 needs babble_speech: at least two speech files")
        self.noises, self.rirs = list(noises), in_range
        self.babble_speech = list(babble_speech or [])
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

    def _draw_babble(self, length, rng, exclude):
        """Babble of ``length`` samples: the sum of utterances other than ``exclude``, at equal RMS.

        Returns the babble ``[length]`` and its description ``{"wav": "babble:<talkers>"}``.
        """
        sr = self.sample_rate
        talkers = int(rng.integers(self.babble_talkers[0], self.babble_talkers[1] + 1))
        babble = torch.zeros(length, dtype=torch.float64)
        added = 0
        for _ in range(4 * talkers):  # unreadable or silent files are skipped, not retried forever
            if added == talkers:
                break
            item = self.babble_speech[int(rng.integers(len(self.babble_speech)))]
            if item["wav"] == exclude:
                continue
            total = max(int(float(item["duration"]) * sr), 1)
            offset = int(rng.integers(0, max(total - length, 0) + 1))
            try:
                segment = read_segment(item["wav"], offset, min(length, total), sr).double()
            except AudioError as err:
                self.bad_files.append((item["wav"], str(err)))
                if self.on_bad_file is not None:
                    self.on_bad_file(item["wav"], str(err))
                continue
            rms = float(segment.pow(2).mean().sqrt())
            if rms == 0.0:
                continue
            # a short utterance repeats from a random point, so talkers do not all start together
            start = int(rng.integers(0, segment.shape[-1])) if segment.shape[-1] < length else 0
            babble += loop_to_length(segment / rms, length, offset=start)
            added += 1
        if added == 0:
            raise AudioError(f"no usable babble talker in {4 * talkers} draws", file=exclude)
        return babble.float(), {"wav": f"babble:{added}"}

    def mix(self, wav, duration, rng, segment_seconds=None, babble=True):
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
        babble : bool
            False: no babble in this mixture whatever ``babble_probability`` (validation).

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
        if babble and self.babble_probability > 0 and rng.random() < self.babble_probability:
            noise, noise_item = self._draw_babble(length, rng, exclude=wav)
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
