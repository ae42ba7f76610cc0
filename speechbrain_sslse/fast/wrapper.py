"""The fast path's wrapper of the vocoder, and SDPA attention for s3prl's TERA family.

:class:`FastVocoder` runs a trained :class:`~speechbrain_sslse.lobes.SpectrumAwareVocoder`
for inference only, with the same inputs and outputs: the SSL encoder and fusion
under ``torch.inference_mode`` with s3prl's TERA/Mockingjay self-attention computed by
:func:`torch.nn.functional.scaled_dot_product_attention` (:func:`sdpa_attention`),
in bf16 under CPU autocast; the generator on CPU rebuilt on oneDNN
(:class:`~speechbrain_sslse.fast.generator.FastHifiganGenerator`) where torch is a
tested version (:mod:`speechbrain_sslse.fast.version`), the vocoder's own generator
everywhere else.

Authors
 * speechbrain-sslse contributors
"""

import contextlib
import types

import torch
import torch.nn.functional as F
from torch import nn

from ..audio import fit_length
from ..lobes.vocoder import enhance_by_length
from .generator import FastHifiganGenerator
from .precision import DTYPES, resolve_precision
from .version import packed_generator_allowed

__all__ = ["FastVocoder", "functional_gelu", "sdpa_attention"]


def _sdpa_self_attention(self, hidden_states, attention_mask, head_mask=None):
    """s3prl's ``TransformerSelfAttention.forward`` computed with ``scaled_dot_product_attention``."""
    if head_mask is not None or self.output_attentions or self.keep_multihead_output or self.training:
        return type(self).forward(self, hidden_states, attention_mask, head_mask)
    batch, frames, _ = hidden_states.shape

    def heads(projection):
        shape = (batch, frames, self.num_attention_heads, self.attention_head_size)
        return projection(hidden_states).view(shape).transpose(1, 2)

    query, key, value = heads(self.query), heads(self.key), heads(self.value)
    mask = None if attention_mask is None else attention_mask.to(query.dtype)
    context = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
    return context.transpose(1, 2).reshape(batch, frames, self.all_head_size)


@contextlib.contextmanager
def sdpa_attention(module):
    """Within the block, s3prl's TERA-family self-attention layers in ``module`` use SDPA.

    Same math as s3prl's own (matmul, additive mask, softmax, matmul): the
    ``[B, heads, F, F]`` scores are never materialised, which matters for long
    inputs. Modules of other upstreams are left alone; nothing changes outside
    the block.

    Arguments
    ---------
    module : torch.nn.Module
        Any module (e.g. an :class:`~speechbrain_sslse.lobes.SSLEncoder`).

    Example
    -------
    >>> import tempfile, os
    >>> from speechbrain_sslse.testing import write_tiny_tera
    >>> from speechbrain_sslse.lobes import SSLEncoder
    >>> encoder = SSLEncoder("tera", ckpt=write_tiny_tera(os.path.join(tempfile.mkdtemp(), "t.ckpt")))
    >>> x = torch.randn(1, 8000)
    >>> with torch.no_grad(), sdpa_attention(encoder):
    ...     fast, _ = encoder(x)
    >>> with torch.no_grad():
    ...     plain, _ = encoder(x)
    >>> bool((fast - plain).abs().max() < 1e-4)
    True
    """
    try:
        from s3prl.upstream.mockingjay.model import TransformerSelfAttention
    except ImportError:  # pragma: no cover - s3prl is a dependency
        yield
        return
    patched = [m for m in module.modules() if type(m) is TransformerSelfAttention]
    for layer in patched:
        layer.forward = types.MethodType(_sdpa_self_attention, layer)
    try:
        yield
    finally:
        for layer in patched:  # (a concurrent call that finds s3prl's forward again gets the same result)
            layer.__dict__.pop("forward", None)


@contextlib.contextmanager
def functional_gelu(module):
    """Within the block, s3prl's TERA-family feed-forward layers in ``module`` use ``F.gelu``.

    s3prl's ``gelu`` is ``x * 0.5 * (1 + erf(x / sqrt(2)))`` written as five elementwise
    operations, each a pass over the ``[B, F, intermediate]`` activations;
    :func:`torch.nn.functional.gelu` computes the same exact (erf) GELU in one. Layers with
    another activation are left alone; nothing changes outside the block.

    Arguments
    ---------
    module : torch.nn.Module
        Any module (e.g. an :class:`~speechbrain_sslse.lobes.SSLEncoder`).

    Example
    -------
    >>> import tempfile, os
    >>> from speechbrain_sslse.testing import write_tiny_tera
    >>> from speechbrain_sslse.lobes import SSLEncoder
    >>> encoder = SSLEncoder("tera", ckpt=write_tiny_tera(os.path.join(tempfile.mkdtemp(), "t.ckpt")))
    >>> x = torch.randn(1, 8000)
    >>> with torch.no_grad(), functional_gelu(encoder):
    ...     fast, _ = encoder(x)
    >>> with torch.no_grad():
    ...     plain, _ = encoder(x)
    >>> bool((fast - plain).abs().max() < 1e-5)
    True
    """
    try:
        from s3prl.upstream.mockingjay import model as mockingjay
    except ImportError:  # pragma: no cover - s3prl is a dependency
        yield
        return
    patched = [
        m
        for m in module.modules()
        if type(m) is mockingjay.TransformerIntermediate and m.intermediate_act_fn is mockingjay.gelu
    ]
    for layer in patched:
        layer.intermediate_act_fn = F.gelu
    try:
        yield
    finally:
        for layer in patched:
            layer.intermediate_act_fn = mockingjay.gelu


class FastVocoder(nn.Module):
    """Inference-only fast path of a :class:`~speechbrain_sslse.lobes.SpectrumAwareVocoder`.

    Same call and outputs as the vocoder (``noisy [B, T], wav_lens [B] -> [B, T]``,
    zero beyond each length, items of different lengths processed separately), so it
    plugs into :func:`speechbrain_sslse.chunking.overlap_add`. With the HiFi-GAN generator
    on a CPU the items of a batch run one after the other: batching 10 s chunks gave no
    speed-up there and multiplied the activation memory (peak RSS); a generator that
    filters the noisy input (the mask head) takes equal-length items as one batch, which
    is faster on its 2 s chunks (``benchmarks/bench_inference_paths.py``). The vocoder itself is
    left unchanged (it shares its encoder, spectrum and fusion modules; the CPU
    generator is rebuilt, see :class:`FastHifiganGenerator`, on the torch versions it
    was tested with; on another torch the vocoder's own generator runs, after an
    :class:`~speechbrain_sslse.fast.version.UntestedTorchWarning`).

    Arguments
    ---------
    vocoder : speechbrain_sslse.lobes.SpectrumAwareVocoder
        A trained vocoder in eval mode, on its inference device (its generator's
        weights are read once, here).
    precision : str
        ``auto`` (:func:`~speechbrain_sslse.fast.default_precision`), ``fp32``, ``bf16``
        or ``fp16`` (CUDA only).

    Example
    -------
    >>> import tempfile, os
    >>> from speechbrain_sslse.testing import write_tiny_tera
    >>> from speechbrain_sslse.lobes import SSLEncoder, spectrum_aware_vocoder
    >>> encoder = SSLEncoder("tera", ckpt=write_tiny_tera(os.path.join(tempfile.mkdtemp(), "t.ckpt")))
    >>> vocoder = spectrum_aware_vocoder(
    ...     encoder, d_model=32, fusion_options={"num_heads": 2, "ffn_dim": 64},
    ...     generator={"upsample_initial_channel": 16, "resblock_kernel_sizes": [3],
    ...                "resblock_dilation_sizes": [[1, 3, 5]]},
    ... ).eval()
    >>> fast = FastVocoder(vocoder, precision="fp32")
    >>> noisy, lens = torch.randn(2, 8000), torch.tensor([1.0, 0.6])
    >>> with torch.no_grad():
    ...     eager = vocoder(noisy, lens)
    >>> bool((fast(noisy, lens) - eager).abs().max() < 1e-4)
    True
    >>> FastVocoder(vocoder, precision="auto")(noisy, lens).dtype
    torch.float32
    """

    def __init__(self, vocoder, precision="auto"):
        super().__init__()
        self.vocoder = vocoder
        parameter = next(vocoder.parameters(), None)
        self.device = parameter.device if parameter is not None else torch.device("cpu")
        self.precision = resolve_precision(precision, self.device)
        self.dtype = DTYPES[self.precision]
        self.generator = None
        # A generator family that filters the noisy input (e.g. the mask head) runs as it is;
        # the prepacked oneDNN rebuild is for the HiFi-GAN generator.
        self.needs_noisy = bool(getattr(vocoder, "needs_noisy", False))
        # The HiFi-GAN generator on a CPU: one item at a time (see above); the mask head's
        # short chunks run faster batched.
        self.per_item = self.device.type == "cpu" and not self.needs_noisy
        onednn = self.device.type == "cpu" and torch.backends.mkldnn.is_available()
        if onednn and self.dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            onednn = False  # oneDNN's bf16 kernels need AVX-512 or AVX-NE-CONVERT: eager autocast instead
        # (the version check last: it warns only where the packed generator would be used)
        if not self.needs_noisy and onednn and packed_generator_allowed():
            self.generator = FastHifiganGenerator(vocoder.generator, self.dtype)
        # Elsewhere (CUDA, builds without oneDNN, an untested torch): the vocoder's own
        # generator, under autocast in bf16 / fp16.
        # Weight norm, if still there, is left in place: a deep copy of a parametrized module
        # shares its generated class, and folding the copy would break the original.

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _enhance(self, noisy):
        """Equal-length waveforms ``[b, t]`` -> ``[b, t]`` float32."""
        encoder = self.vocoder.encoder
        with sdpa_attention(encoder), functional_gelu(encoder), self._autocast():
            features = self.vocoder.features(noisy)
            if self.needs_noisy:
                return self.vocoder.synthesise(features, noisy.shape[1], noisy).float()
            if self.generator is None:
                wav = self.vocoder.generator(features.transpose(1, 2))[:, 0].float()
        if self.generator is not None:
            wav = self.generator(features)
        return fit_length(wav, noisy.shape[1])

    @torch.inference_mode()
    def forward(self, noisy, wav_lens=None):
        """Enhances a padded batch.

        Arguments
        ---------
        noisy : torch.Tensor
            ``[B, T]`` noisy speech at 16 kHz.
        wav_lens : torch.Tensor, optional
            ``[B]`` SpeechBrain relative lengths in (0, 1].

        Returns
        -------
        torch.Tensor
            ``[B, T]`` float32 enhanced speech; zero beyond each item's length.
        """
        noisy = noisy.float()
        return enhance_by_length(
            noisy,
            wav_lens,
            lambda index, length: self._enhance(noisy[index, :length]),
            per_item=self.per_item,
        )
