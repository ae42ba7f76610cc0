"""Spectrum-aware mask head: a generator family that filters the noisy STFT instead of synthesising.

The fused SSL + spectrum features (``[B, F, D]`` on the 10 ms grid) drive a small ConvNeXt
(+ optional bidirectional GRU) backbone whose head predicts a bounded complex ratio mask
for every bin of the noisy STFT (``n_fft`` 512, window 400, hop 160: the grid of
:class:`~speechbrain_sslse.lobes.spectrum.NoisySpectrum`); the enhanced waveform is the
inverse STFT of the masked noisy STFT. The noisy phase and harmonics are kept where the
mask is near one, so a small model trained briefly already sounds like speech, which a
HiFi-GAN generator trained from scratch does not.

With ``filter_order`` K > 1 the head predicts a complex filter over the current and the
K - 1 previous noisy frames of every bin instead of one mask, i.e. deep filtering as in
DeepFilterNet: ``Y[f, t] = sum_k C_k[f, t] X[f, t - k]``. A one-frame mask cannot remove late
reverberation, which is spread over earlier frames; a filter over past frames can. A
checkpoint of filter order 1 loads into any order, with the past taps at zero, so the model
starts out computing exactly what the one-frame model computed (:func:`expand_filter_taps`).

Authors
 * speechbrain-sslse contributors
"""

import torch
from torch import nn

__all__ = ["ConvNeXtBlock", "SpectralMaskHead", "bounded_complex_mask", "expand_filter_taps", "past_frames"]


def bounded_complex_mask(raw, bound=1.2):
    """A complex mask whose magnitude is ``bound * tanh(|raw|)`` and whose phase is ``raw``'s.

    Arguments
    ---------
    raw : torch.Tensor
        ``[..., 2]`` unbounded real and imaginary parts.
    bound : float
        Largest mask magnitude.

    Returns
    -------
    torch.Tensor
        ``[...]`` complex mask.

    Example
    -------
    >>> m = bounded_complex_mask(torch.tensor([[3.0, 4.0], [0.0, 0.0]]), bound=1.0)
    >>> [round(v, 4) for v in m.abs().tolist()]
    [0.9999, 0.0]
    """
    re, im = raw[..., 0].float(), raw[..., 1].float()
    mag = torch.sqrt(re * re + im * im + 1e-12)
    scale = bound * torch.tanh(mag) / mag
    return torch.complex(re * scale, im * scale)


class ConvNeXtBlock(nn.Module):
    """1-D ConvNeXt block (as in Vocos): depthwise conv, LayerNorm, pointwise MLP, layer scale, residual.

    Arguments
    ---------
    channels : int
        Feature size ``C``.
    intermediate : int
        Hidden size of the pointwise MLP.
    kernel_size : int
        Depthwise kernel (odd; "same" padding).
    dilation : int
        Dilation of the depthwise convolution.
    layer_scale : float
        Initial value of the per-channel residual scale.

    Example
    -------
    >>> ConvNeXtBlock(16, 32)(torch.randn(2, 16, 50)).shape
    torch.Size([2, 16, 50])
    """

    def __init__(self, channels, intermediate, kernel_size=7, dilation=1, layer_scale=0.1):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        pad = dilation * (kernel_size - 1) // 2
        self.dwconv = nn.Conv1d(
            channels, channels, kernel_size, padding=pad, dilation=dilation, groups=channels
        )
        self.norm = nn.LayerNorm(channels)
        self.pwconv1 = nn.Linear(channels, intermediate)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate, channels)
        self.gamma = nn.Parameter(layer_scale * torch.ones(channels))

    def forward(self, x):
        """``[B, C, F] -> [B, C, F]``."""
        y = self.dwconv(x).transpose(1, 2)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


def past_frames(spec, order):
    """The current and ``order - 1`` previous frames of a complex STFT, zeros before the start.

    Arguments
    ---------
    spec : torch.Tensor
        ``[B, n_freq, F]`` complex STFT.
    order : int
        Number of frames (taps).

    Returns
    -------
    torch.Tensor
        ``[B, order, n_freq, F]``: tap ``k`` at frame ``t`` is ``spec[..., t - k]``.

    Example
    -------
    >>> spec = torch.complex(torch.arange(4.0).reshape(1, 1, 4), torch.zeros(1, 1, 4))
    >>> past_frames(spec, 2).real[0, :, 0].tolist()
    [[0.0, 1.0, 2.0, 3.0], [0.0, 0.0, 1.0, 2.0]]
    """
    frames = spec.shape[-1]
    zeros = torch.zeros(*spec.shape[:-1], order - 1, dtype=spec.dtype, device=spec.device)
    padded = torch.cat([zeros, spec], dim=-1)
    return torch.stack([padded[..., order - 1 - k : order - 1 - k + frames] for k in range(order)], dim=1)


def expand_filter_taps(state, model):
    """Pads in place the output layer of every :class:`SpectralMaskHead` of ``model`` found with
    fewer filter taps in ``state`` (e.g. a checkpoint of filter order 1): the missing past taps
    get zero weights and biases, so the loaded model computes what the checkpoint computed.

    Arguments
    ---------
    state : dict
        A state dict of ``model`` (names as ``model.state_dict()`` has them).
    model : torch.nn.Module
        The module the state dict is for (a head, or a vocoder holding one).

    Returns
    -------
    list of str
        The names of the heads expanded.

    Example
    -------
    >>> one = SpectralMaskHead(in_channels=8, channels=8, num_blocks=1, gru_layers=0, filter_order=1)
    >>> three = SpectralMaskHead(in_channels=8, channels=8, num_blocks=1, gru_layers=0, filter_order=3)
    >>> state = one.state_dict()
    >>> expand_filter_taps(state, three)
    ['']
    >>> three.load_state_dict(state)
    <All keys matched successfully>
    >>> x, noisy = torch.randn(1, 11, 8), torch.randn(1, 1600)
    >>> torch.allclose(one(x, noisy), three(x, noisy), atol=1e-6)
    True
    """
    expanded = []
    for name, module in model.named_modules():
        if not isinstance(module, SpectralMaskHead):
            continue
        prefix = f"{name}." if name else ""
        weight, bias = state.get(f"{prefix}out.weight"), state.get(f"{prefix}out.bias")
        rows = module.out.weight.shape[0]
        if weight is None or bias is None or weight.shape[0] >= rows or weight.shape[0] % (2 * module.n_freq):
            continue
        pad = rows - weight.shape[0]
        state[f"{prefix}out.weight"] = torch.cat([weight, weight.new_zeros(pad, weight.shape[1])])
        state[f"{prefix}out.bias"] = torch.cat([bias, bias.new_zeros(pad)])
        expanded.append(name)
    return expanded


class SpectralMaskHead(nn.Module):
    """Bounded complex ratio mask on the noisy STFT, predicted from the fused features.

    ``features [B, F, in_channels]`` and ``noisy [B, T]`` give ``enhanced [B, T]`` with
    ``F = T // hop_length + 1`` (a centred STFT); fewer feature frames are padded by
    repetition, more are cropped.

    Arguments
    ---------
    in_channels : int
        Size of the fused features (the vocoder's ``d_model``).
    channels : int
        Width of the backbone.
    num_blocks : int
        ConvNeXt blocks.
    intermediate : int
        Hidden size of each block's MLP (default ``3 * channels``).
    kernel_size : int
        Depthwise kernel of the blocks.
    dilations : list of int, optional
        Dilation of each block (default all 1).
    gru_layers : int
        Bidirectional GRU layers after the blocks (0: none), for context beyond the kernels.
    n_fft, win_length, hop_length : int
        STFT of the noisy input (Hann window); ``hop_length`` must equal the feature hop.
    mask_bound : float
        Largest mask magnitude (see :func:`bounded_complex_mask`).
    mask_exponent : float
        Inference-time sharpening: the mask's magnitude is raised to this power, its phase
        kept (1: the trained mask; above 1 suppresses what the mask already attenuates
        more, and leaves bins near 1 nearly unchanged). Training uses 1; packaging may set
        a value chosen on the validation set (``tune_mask_exponent.py`` of the DNS recipe).
        With a filter, it applies to the current frame's tap only.
    filter_order : int
        Taps of the complex filter over the current and previous noisy frames (1: a mask,
        the current frame alone; DeepFilterNet uses 5). Each tap is bounded by ``mask_bound``.

    Example
    -------
    >>> head = SpectralMaskHead(in_channels=32, channels=32, num_blocks=2, gru_layers=1)
    >>> noisy = torch.randn(2, 16000)
    >>> head(torch.randn(2, 101, 32), noisy).shape
    torch.Size([2, 16000])
    >>> head.hop_length
    160
    >>> SpectralMaskHead(in_channels=32, channels=32, num_blocks=2, filter_order=3)(
    ...     torch.randn(2, 101, 32), noisy).shape
    torch.Size([2, 16000])
    """

    needs_noisy = True

    def __init__(
        self,
        in_channels,
        channels=256,
        num_blocks=4,
        intermediate=None,
        kernel_size=7,
        dilations=None,
        gru_layers=1,
        n_fft=512,
        win_length=400,
        hop_length=160,
        mask_bound=1.2,
        mask_exponent=1.0,
        filter_order=1,
    ):
        super().__init__()
        if win_length > n_fft:
            raise ValueError(f"win_length ({win_length}) must not exceed n_fft ({n_fft})")
        dilations = list(dilations or [1] * num_blocks)
        if len(dilations) != num_blocks:
            raise ValueError(f"{num_blocks} blocks but {len(dilations)} dilations")
        if filter_order < 1:
            raise ValueError(f"filter_order must be 1 or more, got {filter_order}")
        intermediate = intermediate or 3 * channels
        self.filter_order = int(filter_order)
        self.in_channels = in_channels
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        self.n_freq = n_fft // 2 + 1
        self.mask_bound = mask_bound
        self.mask_exponent = mask_exponent
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        self.in_proj = nn.Conv1d(in_channels, channels, 1)
        self.blocks = nn.ModuleList(
            [ConvNeXtBlock(channels, intermediate, kernel_size, d) for d in dilations]
        )
        self.gru = (
            nn.GRU(channels, channels // 2, num_layers=gru_layers, batch_first=True, bidirectional=True)
            if gru_layers
            else None
        )
        self.norm = nn.LayerNorm(channels)
        # Tap-major: the first 2 * n_freq outputs are the current frame's mask (as with order 1).
        self.out = nn.Linear(channels, 2 * self.n_freq * self.filter_order)
        # Start near the identity mask (real part ~1, imaginary ~0, past taps 0): training
        # begins from the noisy input rather than from silence.
        nn.init.zeros_(self.out.weight)
        with torch.no_grad():
            self.out.bias.zero_()
            self.out.bias[0 : 2 * self.n_freq : 2] = 1.0

    def stft(self, wav):
        """Complex STFT ``[B, T] -> [B, n_freq, T // hop + 1]``."""
        return torch.stft(
            wav.float(),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )

    def istft(self, spec, num_samples):
        """Inverse of :meth:`stft`: ``[B, n_freq, F] -> [B, num_samples]``."""
        return torch.istft(
            spec,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            length=num_samples,
        )

    def mask(self, features):
        """The complex mask ``[B, n_freq, F]`` of ``[B, F, in_channels]`` features (the
        filter ``[B, filter_order, n_freq, F]`` when ``filter_order`` > 1)."""
        x = self.in_proj(features.transpose(1, 2))
        for block in self.blocks:
            x = block(x)
        x = x.transpose(1, 2)
        if self.gru is not None:
            x, _ = self.gru(x)
        raw = self.out(self.norm(x))  # [B, F, 2 * n_freq * filter_order]
        if self.filter_order == 1:
            raw = raw.reshape(raw.shape[0], raw.shape[1], self.n_freq, 2)
            return self._sharpen(bounded_complex_mask(raw, self.mask_bound).transpose(1, 2))
        raw = raw.reshape(raw.shape[0], raw.shape[1], self.filter_order, self.n_freq, 2)
        taps = bounded_complex_mask(raw, self.mask_bound).permute(0, 2, 3, 1)  # [B, K, n_freq, F]
        return torch.cat([self._sharpen(taps[:, :1]), taps[:, 1:]], dim=1)

    def _sharpen(self, mask):
        """``mask`` with its magnitude raised to ``mask_exponent`` (phase kept)."""
        if self.mask_exponent != 1.0:
            mask = mask * mask.abs().clamp_min(1e-12) ** (self.mask_exponent - 1.0)
        return mask

    def forward(self, features, noisy):
        """Masks the noisy STFT.

        Arguments
        ---------
        features : torch.Tensor
            ``[B, F, in_channels]`` fused features on the STFT's frame grid.
        noisy : torch.Tensor
            ``[B, T]`` noisy waveform.

        Returns
        -------
        torch.Tensor
            ``[B, T]`` enhanced waveform.
        """
        spec = self.stft(noisy)
        frames = spec.shape[-1]
        if features.shape[1] < frames:
            missing = frames - features.shape[1]
            features = torch.cat([features, features[:, -1:].expand(-1, missing, -1)], dim=1)
        mask = self.mask(features[:, :frames])
        if self.filter_order == 1:
            return self.istft(spec * mask, noisy.shape[1]).to(noisy.dtype)
        filtered = (mask * past_frames(spec, self.filter_order)).sum(dim=1)
        return self.istft(filtered, noisy.shape[1]).to(noisy.dtype)
