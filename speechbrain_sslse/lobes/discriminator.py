"""HiFi-GAN's multi-period and multi-scale discriminators with a width multiplier.

SpeechBrain's :class:`speechbrain.lobes.models.HifiGAN.HifiganDiscriminator` has the
sizes of the HiFi-GAN paper (about 70 M parameters, some 11 GMAC per second of audio),
too heavy to train on a CPU. :class:`HifiganDiscriminator` here is the same
architecture (MPD with periods 2, 3, 5, 7, 11 and MSD at three scales, LeakyReLU 0.1,
weight norm, spectral norm on the first scale) whose channel counts are multiplied by
``width``: ``width=1`` has exactly the parameters of SpeechBrain's, smaller widths are
for CPU schedules. Scores and features come out in SpeechBrain's format, so its
HiFi-GAN losses apply unchanged. :class:`MultiResolutionSpectrogramDiscriminator` is
UnivNet's cheaper alternative (2-D convolutions over magnitude spectrograms at several
STFT resolutions), in the same output format. :class:`FeatureMatchingLoss` is the feature-matching
term with a choice of reduction over the feature maps (SpeechBrain's mean, or HiFi-GAN's
sum).

Authors
 * speechbrain-sslse contributors
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm
from torch.nn.utils.parametrizations import weight_norm

__all__ = [
    "HifiganDiscriminator",
    "MultiPeriodDiscriminator",
    "MultiScaleDiscriminator",
    "SpectrogramDiscriminator",
    "MultiResolutionSpectrogramDiscriminator",
    "FeatureMatchingLoss",
]

LRELU_SLOPE = 0.1


def _scaled(channels, width, groups=1):
    """``channels * width`` rounded to a multiple of ``groups`` (at least ``groups``)."""
    scaled = max(int(round(channels * width)), 1)
    groups = min(groups, scaled)
    return max(groups, scaled - scaled % groups), groups


def _scores_and_features(convs, conv_post, x):
    """``convs``, each followed by LeakyReLU, then ``conv_post``: (scores ``[B, N]``, feature maps)."""
    feats = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        feats.append(x)
    x = conv_post(x)
    feats.append(x)
    return torch.flatten(x, 1, -1), feats


class PeriodDiscriminator(nn.Module):
    """Looks at every ``period``-th sample: ``[B, 1, T] -> [B, T' * period]`` scores + features.

    Example
    -------
    >>> d = PeriodDiscriminator(3, width=0.125)
    >>> score, feats = d(torch.randn(2, 1, 1000))
    >>> score.shape[0], len(feats)
    (2, 6)
    """

    def __init__(self, period, width=1.0, kernel_size=5, stride=3):
        super().__init__()
        self.period = period
        sizes = [1] + [_scaled(c, width)[0] for c in (32, 128, 512, 1024, 1024)]
        strides = [stride, stride, stride, stride, 1]
        pad = (kernel_size - 1) // 2
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(c_in, c_out, (kernel_size, 1), (s, 1), padding=(pad, 0)))
            for c_in, c_out, s in zip(sizes[:-1], sizes[1:], strides)
        )
        self.conv_post = weight_norm(nn.Conv2d(sizes[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x):
        """``[B, 1, T]`` -> (scores ``[B, N]``, list of feature maps)."""
        b, c, t = x.shape
        if t % self.period:
            x = F.pad(x, (0, self.period - t % self.period), "reflect")
            t = x.shape[-1]
        x = x.view(b, c, t // self.period, self.period)
        return _scores_and_features(self.convs, self.conv_post, x)


class ScaleDiscriminator(nn.Module):
    """Strided, grouped 1-D convolutions over the waveform (one scale of the MSD).

    Example
    -------
    >>> d = ScaleDiscriminator(width=0.125)
    >>> score, feats = d(torch.randn(2, 1, 1000))
    >>> score.shape[0], len(feats)
    (2, 8)
    """

    # (out_channels, kernel, stride, groups) of the HiFi-GAN scale discriminator.
    LAYERS = ((128, 15, 1, 1), (128, 41, 2, 4), (256, 41, 2, 16), (512, 41, 4, 16), (1024, 41, 4, 16),
              (1024, 41, 1, 16), (1024, 5, 1, 1))  # fmt: skip

    def __init__(self, width=1.0, use_spectral_norm=False):
        super().__init__()
        norm = spectral_norm if use_spectral_norm else weight_norm
        convs, c_in = [], 1
        for channels, kernel, stride, groups in self.LAYERS:
            c_out, g = _scaled(channels, width, groups)
            g = g if c_in % g == 0 else 1
            convs.append(norm(nn.Conv1d(c_in, c_out, kernel, stride, groups=g, padding=(kernel - 1) // 2)))
            c_in = c_out
        self.convs = nn.ModuleList(convs)
        self.conv_post = norm(nn.Conv1d(c_in, 1, 3, 1, padding=1))

    def forward(self, x):
        """``[B, 1, T]`` -> (scores ``[B, N]``, list of feature maps)."""
        return _scores_and_features(self.convs, self.conv_post, x)


class MultiPeriodDiscriminator(nn.Module):
    """Period discriminators at periods 2, 3, 5, 7 and 11.

    Example
    -------
    >>> scores, feats = MultiPeriodDiscriminator(width=0.125)(torch.randn(1, 1, 800))
    >>> len(scores), len(feats)
    (5, 5)
    """

    def __init__(self, width=1.0, periods=(2, 3, 5, 7, 11)):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, width) for p in periods)

    def forward(self, x):
        """``[B, 1, T]`` -> (list of scores, list of feature lists)."""
        outputs = [d(x) for d in self.discriminators]
        return [s for s, _ in outputs], [f for _, f in outputs]


class MultiScaleDiscriminator(nn.Module):
    """Scale discriminators on the waveform and on two average-pooled versions of it.

    Example
    -------
    >>> scores, feats = MultiScaleDiscriminator(width=0.125)(torch.randn(1, 1, 800))
    >>> len(scores), len(feats)
    (3, 3)
    """

    def __init__(self, width=1.0):
        super().__init__()
        self.discriminators = nn.ModuleList(
            [
                ScaleDiscriminator(width, use_spectral_norm=True),
                ScaleDiscriminator(width),
                ScaleDiscriminator(width),
            ]
        )
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, x):
        """``[B, 1, T]`` -> (list of scores, list of feature lists)."""
        scores, feats = [], []
        for i, d in enumerate(self.discriminators):
            if i:
                x = self.pool(x)
            score, feat = d(x)
            scores.append(score)
            feats.append(feat)
        return scores, feats


class HifiganDiscriminator(nn.Module):
    """MPD + MSD of HiFi-GAN with channel counts scaled by ``width``.

    Arguments
    ---------
    width : float
        Channel multiplier (1.0: the HiFi-GAN paper's sizes, as in SpeechBrain).

    Example
    -------
    >>> disc = HifiganDiscriminator(width=0.125)
    >>> scores, feats = disc(torch.randn(2, 1, 4000))
    >>> len(scores), len(feats), scores[0].shape[0]
    (8, 8, 2)
    """

    def __init__(self, width=1.0):
        super().__init__()
        self.width = width
        self.mpd = MultiPeriodDiscriminator(width)
        self.msd = MultiScaleDiscriminator(width)

    def forward(self, x):
        """Scores and features of ``[B, 1, T]`` waveforms: (list of 8 ``[B, N]``, list of 8 lists)."""
        scores, feats = self.mpd(x)
        scores_s, feats_s = self.msd(x)
        return scores + scores_s, feats + feats_s


class SpectrogramDiscriminator(nn.Module):
    """2-D convolutions over one STFT resolution's compressed magnitude (UnivNet's MRD branch).

    The waveform's magnitude spectrogram ``|STFT|`` is raised to ``compression`` (0.3
    by default, the loudness-like compression of the reconstruction loss) and read as a
    ``[B, 1, frames, bins]`` image by five weight-normalised 2-D convolutions with
    kernels 3 x 9, the middle three strided by 2 along frequency, and a 3 x 3 output
    convolution (LeakyReLU 0.1 between them).

    Arguments
    ---------
    n_fft, hop_length, win_length : int
        The STFT resolution (Hann window).
    channels : int
        Channels of every hidden convolution (UnivNet: 32).
    compression : float
        Exponent of the magnitude (1.0: linear magnitude, as in UnivNet).

    Example
    -------
    >>> d = SpectrogramDiscriminator(512, 128, 512, channels=8)
    >>> score, feats = d(torch.randn(2, 1, 4000))
    >>> score.shape[0], len(feats), feats[0].shape[1:3]
    (2, 6, torch.Size([8, 32]))
    """

    def __init__(self, n_fft, hop_length, win_length, channels=32, compression=0.3):
        super().__init__()
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
        self.compression = compression
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        strides = (1, 2, 2, 2, 1)
        sizes = [1] + [channels] * len(strides)
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(c_in, c_out, (3, 9), (1, s), padding=(1, 4)))
            for c_in, c_out, s in zip(sizes[:-1], sizes[1:], strides)
        )
        self.conv_post = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def spectrogram(self, x):
        """``[B, 1, T]`` -> compressed magnitude ``[B, 1, frames, n_fft // 2 + 1]``."""
        spec = torch.stft(
            x.squeeze(1).float(),
            self.n_fft,
            self.hop_length,
            self.win_length,
            window=self.window,
            center=True,
            return_complex=True,
        )
        mag = spec.abs().clamp_min(1e-8) ** self.compression
        return mag.transpose(1, 2).unsqueeze(1).to(x.dtype)

    def forward(self, x):
        """``[B, 1, T]`` -> (scores ``[B, N]``, list of feature maps)."""
        return _scores_and_features(self.convs, self.conv_post, self.spectrogram(x))


class MultiResolutionSpectrogramDiscriminator(nn.Module):
    """Spectrogram discriminators at several STFT resolutions (UnivNet's MRD, Jang et al., 2021).

    Cheaper than MPD + MSD on a CPU (2-D convolutions over a few hundred frames instead
    of 1-D convolutions over every sample) and it sees what the spectral losses see.
    With ``normalize_level``, each waveform is divided by its RMS before the STFT: the
    training mixtures span 33 dB of level (``level_range``), and a discriminator that
    sees raw levels spends its capacity on loudness, which the reconstruction losses
    already match. Scores and features come out in SpeechBrain's HiFi-GAN format (one
    entry per resolution), so its ``MSEGLoss``, ``MSEDLoss`` and feature matching apply.

    Arguments
    ---------
    resolutions : list of (int, int, int)
        ``(n_fft, hop_length, win_length)`` of each branch.
    channels : int
        Hidden channels of each branch.
    compression : float
        Magnitude exponent (see :class:`SpectrogramDiscriminator`).
    normalize_level : bool
        Divide each waveform by its RMS first.

    Example
    -------
    >>> disc = MultiResolutionSpectrogramDiscriminator(channels=8)
    >>> scores, feats = disc(torch.randn(2, 1, 8000))
    >>> len(scores), len(feats), scores[0].shape[0]
    (3, 3, 2)
    >>> a, _ = disc(0.01 * torch.ones(1, 1, 8000).normal_(generator=torch.Generator().manual_seed(0)))
    >>> b, _ = disc(torch.ones(1, 1, 8000).normal_(generator=torch.Generator().manual_seed(0)))
    >>> all(torch.allclose(x, y, atol=1e-4) for x, y in zip(a, b))  # level-invariant
    True
    """

    def __init__(
        self,
        resolutions=((512, 128, 512), (1024, 256, 1024), (256, 64, 256)),
        channels=32,
        compression=0.3,
        normalize_level=True,
    ):
        super().__init__()
        self.normalize_level = normalize_level
        self.discriminators = nn.ModuleList(
            SpectrogramDiscriminator(n_fft, hop, win, channels, compression)
            for n_fft, hop, win in resolutions
        )

    def forward(self, x):
        """Scores and features of ``[B, 1, T]`` waveforms: (list of ``[B, N]``, list of feature lists)."""
        if self.normalize_level:
            x = x / x.float().pow(2).mean(dim=-1, keepdim=True).sqrt().clamp_min(1e-5).to(x.dtype)
        outputs = [d(x) for d in self.discriminators]
        return [s for s, _ in outputs], [f for _, f in outputs]


class FeatureMatchingLoss(nn.Module):
    """L1 distance between the discriminator features of generated and real waveforms.

    Each feature map contributes the mean absolute difference of its elements; the
    ``reduction`` combines the maps (54 with HiFi-GAN's MPD + MSD: 5 periods x 6 maps,
    3 scales x 8 maps):

    - ``"mean"``: their average, as SpeechBrain's
      :class:`~speechbrain.lobes.models.HifiGAN.MelganFeatureLoss` (which this equals);
      SpeechBrain's HiFi-GAN recipe weights it x10;
    - ``"sum"``: their sum, as in HiFi-GAN (Kong et al., 2020, eq. 2, weighted x2 there).

    With 54 maps, "mean" x10 is about 11 times weaker than HiFi-GAN's "sum" x2.

    Arguments
    ---------
    reduction : str
        ``"mean"`` or ``"sum"`` over the feature maps.

    Example
    -------
    >>> fake = [[torch.ones(2, 3), torch.ones(2, 5)], [torch.zeros(2, 4)]]
    >>> real = [[torch.zeros(2, 3), torch.zeros(2, 5)], [torch.zeros(2, 4)]]
    >>> float(FeatureMatchingLoss("mean")(fake, real)), float(FeatureMatchingLoss("sum")(fake, real))
    (0.6666666865348816, 2.0)
    >>> FeatureMatchingLoss("max")
    Traceback (most recent call last):
    ...
    ValueError: FeatureMatchingLoss reduction 'max': use 'mean' (SpeechBrain's ...) or 'sum' (HiFi-GAN)
    """

    REDUCTIONS = ("mean", "sum")

    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in self.REDUCTIONS:
            raise ValueError(
                f"FeatureMatchingLoss reduction {reduction!r}: use 'mean' (SpeechBrain's "
                "MelganFeatureLoss) or 'sum' (HiFi-GAN)"
            )
        self.reduction = reduction

    def forward(self, fake_feats, real_feats):
        """Loss of the feature lists of :class:`HifiganDiscriminator` (one list per sub-discriminator)."""
        terms = [
            F.l1_loss(fake, real)
            for fake_list, real_list in zip(fake_feats, real_feats)
            for fake, real in zip(fake_list, real_list)
        ]
        if not terms:
            raise ValueError("FeatureMatchingLoss got no feature maps")
        total = torch.stack(terms).sum()
        return total / len(terms) if self.reduction == "mean" else total
