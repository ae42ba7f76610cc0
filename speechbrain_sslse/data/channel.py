"""Random recording-channel effects for training mixtures (microphone colouring, band limits, clipping).

Used by :class:`speechbrain_sslse.data.onthefly.OnTheFlyMixer` (its ``augment``); a recipe's
yaml creates it as ``!new:speechbrain_sslse.data.mixing.ChannelAugment`` (re-exported there).
"""

import numpy as np
import torch


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
