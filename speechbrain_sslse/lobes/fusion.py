"""Fusions of the combined SSL embedding with the noisy spectrum.

Every fusion maps an SSL stream ``[B, F, D_ssl]`` and a spectrum stream
``[B, F, D_spec]`` on the same frame grid to ``[B, F, d_model]``, the input of the
generator. One class per fusion, built in a recipe yaml with ``!new:`` (:data:`FUSIONS`
names them for scripts and tests):

- ``cross_attention`` (proposed): the spectrum is conditioned by the SSL embedding
  (query = projected spectrum, key/value = projected SSL embedding);
- ``cross_attention_by_spectrum``: the other way round (query = SSL, key/value = spectrum);
- ``additive``: projected spectrum + projected SSL embedding;
- ``film``: projected spectrum modulated by ``gamma(SSL)`` and ``beta(SSL)``;
- ``film_by_spectrum``: the other way round, projected SSL embedding modulated by
  ``gamma(spectrum)`` and ``beta(spectrum)`` (variant 7, our reading of the paper's Q4);
- ``ssl_only``: the projected SSL embedding alone (the denoising vocoder of Irvin et al.,
  ICASSP 2023); the spectrum is not used.

Authors
 * speechbrain-sslse contributors
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FUSIONS",
    "CrossAttentionFusion",
    "CrossAttentionBySpectrumFusion",
    "AdditiveFusion",
    "FiLMFusion",
    "FiLMBySpectrumFusion",
    "SSLOnlyFusion",
    "SpectrumOnlyFusion",
    "sinusoidal_positions",
]


def sinusoidal_positions(num_frames, dim, device=None, dtype=torch.float32):
    """Transformer sinusoidal position table.

    Arguments
    ---------
    num_frames : int
        Number of positions F.
    dim : int
        Feature size D (even).
    device : torch.device, optional
        Device of the table.
    dtype : torch.dtype
        Type of the table.

    Returns
    -------
    torch.Tensor
        ``[F, D]``; row ``t`` is ``sin/cos(t / 10000^(2i/D))``.

    Example
    -------
    >>> table = sinusoidal_positions(5, 8)
    >>> table.shape, float(table[0, 1])
    (torch.Size([5, 8]), 1.0)
    """
    position = torch.arange(num_frames, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(num_frames, dim, device=device)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div[: dim // 2])
    return table.to(dtype)


class _Fusion(nn.Module):
    """Shared checks of the fusion modules."""

    uses_spectrum = True
    uses_ssl = True

    def __init__(self, ssl_dim, spec_dim, d_model):
        super().__init__()
        self.ssl_dim = ssl_dim
        self.spec_dim = spec_dim
        self.d_model = d_model

    def _check(self, ssl, spec):
        if ssl.dim() != 3 or ssl.shape[-1] != self.ssl_dim:
            raise ValueError(f"expected SSL features [B, F, {self.ssl_dim}], got {tuple(ssl.shape)}")
        if not self.uses_spectrum:
            return
        if spec is None:
            raise ValueError(f"{type(self).__name__} needs the spectrum stream")
        if spec.dim() != 3 or spec.shape[-1] != self.spec_dim or spec.shape[:2] != ssl.shape[:2]:
            raise ValueError(
                f"expected spectrum [B, F, {self.spec_dim}] on the SSL grid {tuple(ssl.shape[:2])}, "
                f"got {tuple(spec.shape)}"
            )


class _AttentionBlock(nn.Module):
    """Cross attention + residual + LayerNorm, then feed-forward + residual + LayerNorm.

    With ``window`` set, each query frame attends only to key frames at most
    ``window`` frames away (local attention); by default it attends to all of them.
    """

    def __init__(self, d_model, num_heads, ffn_dim, dropout, positional, window):
        super().__init__()
        self.positional = positional
        self.window = window
        self.attention = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, ffn_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn_dim, d_model)
        )
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def _attend(self, query, key, value, mask):
        """``self.attention``'s computation, from its own weights, on ``[B, F, D]`` inputs.

        The same math as ``nn.MultiheadAttention`` (``need_weights=False``), but the
        projections run on the contiguous batch-first inputs and the attention in
        :func:`torch.nn.functional.scaled_dot_product_attention`: given separate key and
        value tensors, ``nn.MultiheadAttention`` projects transposed (non-contiguous)
        views, which the CPU computes as a broadcast batched matmul over a copied
        ``[F, D, D]`` weight, several times slower. ``mask`` is ``[F, F]`` bool, True
        where attention is not allowed (``nn.MultiheadAttention``'s convention).
        """
        attention = self.attention
        batch, frames, dim = query.shape
        heads = attention.num_heads
        weights = attention.in_proj_weight.chunk(3)
        biases = (None,) * 3 if attention.in_proj_bias is None else attention.in_proj_bias.chunk(3)

        def split(x, weight, bias):
            return F.linear(x, weight, bias).view(batch, x.shape[1], heads, dim // heads).transpose(1, 2)

        attended = F.scaled_dot_product_attention(
            split(query, weights[0], biases[0]),
            split(key, weights[1], biases[1]),
            split(value, weights[2], biases[2]),
            attn_mask=None if mask is None else ~mask,
            dropout_p=attention.dropout if self.training else 0.0,
        )
        return attention.out_proj(attended.transpose(1, 2).reshape(batch, frames, dim))

    def forward(self, query, memory):
        frames = query.shape[1]
        q, k = query, memory
        if self.positional:
            pos = sinusoidal_positions(frames, query.shape[-1], query.device, query.dtype)
            q, k = q + pos, k + pos
        mask = None
        if self.window is not None:
            index = torch.arange(frames, device=query.device)
            mask = (index[:, None] - index[None, :]).abs() > self.window
        x = self.norm1(query + self.dropout(self._attend(q, k, memory, mask)))
        return self.norm2(x + self.dropout(self.ffn(x)))


class CrossAttentionFusion(_Fusion):
    """Spectrum conditioned by SSL embeddings through cross attention (the proposed fusion).

    query = ``Linear(spectrum)``, key = value = ``Linear(SSL)``; then residual,
    LayerNorm and a feed-forward block with residual and LayerNorm. Sinusoidal
    positions are added to query and key (``positional=True``) so that attention can
    favour nearby frames.

    Arguments
    ---------
    ssl_dim : int
        Size of the combined SSL embedding.
    spec_dim : int
        Number of spectrum bins.
    d_model : int
        Attention width and output size.
    num_heads : int
        Attention heads.
    ffn_dim : int
        Hidden size of the feed-forward block.
    dropout : float
        Dropout in attention and feed-forward.
    positional : bool
        Add sinusoidal positions to query and key.
    window : int or None
        Attend only to frames at most this far away (None: all frames).

    Example
    -------
    >>> fusion = CrossAttentionFusion(ssl_dim=32, spec_dim=257, d_model=64, num_heads=4)
    >>> fusion(torch.randn(2, 50, 32), torch.randn(2, 50, 257)).shape
    torch.Size([2, 50, 64])
    """

    def __init__(
        self,
        ssl_dim,
        spec_dim,
        d_model=256,
        num_heads=4,
        ffn_dim=1024,
        dropout=0.0,
        positional=True,
        window=None,
    ):
        super().__init__(ssl_dim, spec_dim, d_model)
        self.spec_proj = nn.Linear(spec_dim, d_model)
        self.ssl_proj = nn.Linear(ssl_dim, d_model)
        self.block = _AttentionBlock(d_model, num_heads, ffn_dim, dropout, positional, window)

    def forward(self, ssl, spec):
        """Fuses the streams.

        Arguments
        ---------
        ssl : torch.Tensor
            ``[B, F, ssl_dim]`` combined SSL embedding.
        spec : torch.Tensor
            ``[B, F, spec_dim]`` noisy spectrum.

        Returns
        -------
        torch.Tensor
            ``[B, F, d_model]``.
        """
        self._check(ssl, spec)
        return self.block(self.spec_proj(spec), self.ssl_proj(ssl))


class CrossAttentionBySpectrumFusion(CrossAttentionFusion):
    """SSL embeddings conditioned by the spectrum (query = SSL, key/value = spectrum).

    Same block and arguments as :class:`CrossAttentionFusion`, with the roles of
    the two streams swapped.

    Example
    -------
    >>> fusion = CrossAttentionBySpectrumFusion(ssl_dim=32, spec_dim=257, d_model=64, num_heads=4)
    >>> fusion(torch.randn(2, 50, 32), torch.randn(2, 50, 257)).shape
    torch.Size([2, 50, 64])
    """

    def forward(self, ssl, spec):
        """``[B, F, ssl_dim]``, ``[B, F, spec_dim]`` -> ``[B, F, d_model]``."""
        self._check(ssl, spec)
        return self.block(self.ssl_proj(ssl), self.spec_proj(spec))


class AdditiveFusion(_Fusion):
    """Sum of the projected spectrum and the projected SSL embedding.

    Arguments
    ---------
    ssl_dim : int
        Size of the combined SSL embedding.
    spec_dim : int
        Number of spectrum bins.
    d_model : int
        Output size.

    Example
    -------
    >>> fusion = AdditiveFusion(ssl_dim=32, spec_dim=257, d_model=64)
    >>> fusion(torch.randn(2, 50, 32), torch.randn(2, 50, 257)).shape
    torch.Size([2, 50, 64])
    """

    def __init__(self, ssl_dim, spec_dim, d_model=256):
        super().__init__(ssl_dim, spec_dim, d_model)
        self.spec_proj = nn.Linear(spec_dim, d_model)
        self.ssl_proj = nn.Linear(ssl_dim, d_model)

    def forward(self, ssl, spec):
        """``[B, F, ssl_dim]``, ``[B, F, spec_dim]`` -> ``[B, F, d_model]``."""
        self._check(ssl, spec)
        return self.spec_proj(spec) + self.ssl_proj(ssl)


class FiLMFusion(_Fusion):
    """Feature-wise linear modulation of the spectrum by the SSL embedding.

    ``out = gamma(SSL) * Linear(spectrum) + beta(SSL)``, with ``gamma`` starting
    around 1 (its bias is initialised to one).

    Arguments
    ---------
    ssl_dim : int
        Size of the combined SSL embedding.
    spec_dim : int
        Number of spectrum bins.
    d_model : int
        Output size.

    Example
    -------
    >>> fusion = FiLMFusion(ssl_dim=32, spec_dim=257, d_model=64)
    >>> fusion(torch.randn(2, 50, 32), torch.randn(2, 50, 257)).shape
    torch.Size([2, 50, 64])
    """

    def __init__(self, ssl_dim, spec_dim, d_model=256):
        super().__init__(ssl_dim, spec_dim, d_model)
        self.spec_proj = nn.Linear(spec_dim, d_model)
        self.gamma = nn.Linear(ssl_dim, d_model)
        self.beta = nn.Linear(ssl_dim, d_model)
        nn.init.ones_(self.gamma.bias)

    def forward(self, ssl, spec):
        """``[B, F, ssl_dim]``, ``[B, F, spec_dim]`` -> ``[B, F, d_model]``."""
        self._check(ssl, spec)
        return self.gamma(ssl) * self.spec_proj(spec) + self.beta(ssl)


class FiLMBySpectrumFusion(_Fusion):
    """Feature-wise linear modulation of the SSL embedding by the spectrum (FiLM the other way round).

    ``out = gamma(spectrum) * Linear(SSL) + beta(spectrum)``, ``[gamma, beta]`` being one
    linear projection of the spectrum (``spec_proj``), ``gamma`` starting around 1. The
    slides' question Q4 asks which stream should condition the other
    "for cross attention and FiLM"; :class:`CrossAttentionBySpectrumFusion` is the
    swapped attention (variant 6) and this is the swapped FiLM (variant 7, the number
    the slides' tables skip: our reading).

    Arguments
    ---------
    ssl_dim : int
        Size of the combined SSL embedding.
    spec_dim : int
        Number of spectrum bins.
    d_model : int
        Output size.

    Example
    -------
    >>> fusion = FiLMBySpectrumFusion(ssl_dim=32, spec_dim=257, d_model=64)
    >>> fusion(torch.randn(2, 50, 32), torch.randn(2, 50, 257)).shape
    torch.Size([2, 50, 64])
    """

    def __init__(self, ssl_dim, spec_dim, d_model=256):
        super().__init__(ssl_dim, spec_dim, d_model)
        self.ssl_proj = nn.Linear(ssl_dim, d_model)
        self.spec_proj = nn.Linear(spec_dim, 2 * d_model)  # gamma, beta
        with torch.no_grad():
            self.spec_proj.bias[:d_model].fill_(1.0)

    def forward(self, ssl, spec):
        """``[B, F, ssl_dim]``, ``[B, F, spec_dim]`` -> ``[B, F, d_model]``."""
        self._check(ssl, spec)
        gamma, beta = self.spec_proj(spec).chunk(2, dim=-1)
        return gamma * self.ssl_proj(ssl) + beta


class SSLOnlyFusion(_Fusion):
    """The projected SSL embedding alone: the baseline denoising vocoder (no spectrum).

    Arguments
    ---------
    ssl_dim : int
        Size of the combined SSL embedding.
    spec_dim : int
        Ignored (kept for a uniform constructor).
    d_model : int
        Output size.

    Example
    -------
    >>> fusion = SSLOnlyFusion(ssl_dim=32, spec_dim=257, d_model=64)
    >>> fusion(torch.randn(2, 50, 32), None).shape
    torch.Size([2, 50, 64])
    """

    uses_spectrum = False

    def __init__(self, ssl_dim, spec_dim=None, d_model=256):
        super().__init__(ssl_dim, spec_dim, d_model)
        self.ssl_proj = nn.Linear(ssl_dim, d_model)

    def forward(self, ssl, spec=None):
        """``[B, F, ssl_dim]`` -> ``[B, F, d_model]``; ``spec`` is ignored."""
        self._check(ssl, spec)
        return self.ssl_proj(ssl)


class SpectrumOnlyFusion(_Fusion):
    """The control without SSL: the projected spectrum attends to itself (no SSL stream).

    The same attention block as :class:`CrossAttentionFusion` with the spectrum as query,
    key and value, so that the control differs from the proposed fusion only by the SSL
    features; the vocoder does not run the SSL encoder for it (``uses_ssl = False``).

    Arguments
    ---------
    ssl_dim : int
        Ignored (kept for a uniform constructor).
    spec_dim : int
        Number of spectrum bins.
    d_model, num_heads, ffn_dim, dropout, positional, window
        As in :class:`CrossAttentionFusion`.

    Example
    -------
    >>> fusion = SpectrumOnlyFusion(ssl_dim=32, spec_dim=257, d_model=64, num_heads=4)
    >>> fusion(None, torch.randn(2, 50, 257)).shape
    torch.Size([2, 50, 64])
    """

    uses_ssl = False

    def __init__(
        self,
        ssl_dim,
        spec_dim,
        d_model=256,
        num_heads=4,
        ffn_dim=1024,
        dropout=0.0,
        positional=True,
        window=None,
    ):
        super().__init__(ssl_dim, spec_dim, d_model)
        self.spec_proj = nn.Linear(spec_dim, d_model)
        self.block = _AttentionBlock(d_model, num_heads, ffn_dim, dropout, positional, window)

    def forward(self, ssl, spec):
        """``[B, F, spec_dim]`` -> ``[B, F, d_model]``; ``ssl`` is ignored."""
        if spec is None or spec.dim() != 3 or spec.shape[-1] != self.spec_dim:
            got = None if spec is None else tuple(spec.shape)
            raise ValueError(f"expected spectrum [B, F, {self.spec_dim}], got {got}")
        x = self.spec_proj(spec)
        return self.block(x, x)


# The fusions by the names the ablations and the model cards use.
FUSIONS = {
    "cross_attention": CrossAttentionFusion,
    "cross_attention_by_spectrum": CrossAttentionBySpectrumFusion,
    "additive": AdditiveFusion,
    "film": FiLMFusion,
    "film_by_spectrum": FiLMBySpectrumFusion,
    "ssl_only": SSLOnlyFusion,
    "spectrum_only": SpectrumOnlyFusion,
}
