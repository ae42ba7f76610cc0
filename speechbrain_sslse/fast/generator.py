"""The fast inference path of the spectrum-aware denoising vocoder.

:class:`FastVocoder` runs a trained :class:`~speechbrain_sslse.lobes.SpectrumAwareVocoder`
for inference only, with the same inputs and outputs:

- **Generator on CPU** (:class:`FastHifiganGenerator`): SpeechBrain's
  ``HifiganGenerator`` rebuilt on oneDNN convolutions with weights folded (weight
  norm, and the ``1 / num_kernels`` average of the multi-receptive-field blocks) and
  prepacked once, activations kept channels-last (``[B, C, 1, T]`` in memory as
  ``[B, T, C]``, no layout reorders between layers), leaky ReLU and residual additions
  fused into the convolutions, reflect padding and leaky ReLU done in one pass, and
  the upsampling transposed convolutions computed as polyphase convolutions. In fp32
  it is the same computation as the eager generator (differences ~1e-7); in bf16
  it uses the CPU's native bf16 dot products (``avx512_bf16`` / AMX).
- **SSL encoder and fusion**: ``torch.inference_mode``, s3prl's TERA/Mockingjay
  self-attention computed by :func:`torch.nn.functional.scaled_dot_product_attention`
  (:func:`sdpa_attention`; same math, no ``[heads, F, F]`` score tensors), and, in
  bf16, CPU autocast.
- **On CUDA** (and PyTorch builds without oneDNN): the vocoder's own generator and
  encoder under autocast (bf16 or fp16), with the same attention.

Precisions: ``fp32``, ``bf16``, ``fp16`` (CUDA only) or ``auto`` (:func:`default_precision`:
bf16 on CPUs with native bf16 instructions and on CUDA devices that support it, fp32
otherwise).

Authors
 * speechbrain-sslse contributors
"""

import contextlib
import functools
import logging
import types

import torch
import torch.nn.functional as F
from torch import nn

from .audio import fit_length
from .lobes.vocoder import enhance_by_length

__all__ = [
    "FastVocoder",
    "FastHifiganGenerator",
    "PRECISIONS",
    "default_precision",
    "resolve_precision",
    "check_inference_options",
    "check_device",
    "InferenceOptionError",
    "native_cpu_bf16",
    "sdpa_attention",
]

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_LRELU_SLOPE = 0.1  # SpeechBrain's HiFi-GAN slope (the last activation uses 0.01)


# ---------------------------------------------------------------------------
# Precision
# ---------------------------------------------------------------------------
class InferenceOptionError(ValueError):
    """An inference option (device, precision, fast path, threads) that cannot be used."""


@functools.cache
def native_cpu_bf16():
    """Whether this CPU has bf16 dot-product instructions (``avx512_bf16`` or AMX) usable by oneDNN.

    Without them oneDNN emulates bf16, which is slower than fp32.

    Example
    -------
    >>> native_cpu_bf16() in (True, False)
    True
    """
    if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def default_precision(device="cpu"):
    """The precision ``auto`` stands for on ``device``.

    bf16 on CPUs with native bf16 instructions (:func:`native_cpu_bf16`) and on CUDA
    devices that support bf16; fp32 everywhere else.

    Example
    -------
    >>> default_precision("cpu") in ("fp32", "bf16")
    True
    """
    device = torch.device(device)
    if device.type == "cpu":
        return "bf16" if native_cpu_bf16() else "fp32"
    if device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def resolve_precision(precision, device="cpu"):
    """Checks a precision name and resolves ``auto`` (and None) for ``device``.

    Raises
    ------
    ValueError
        For an unknown name, or fp16 on a CPU.

    Example
    -------
    >>> resolve_precision("fp32")
    'fp32'
    >>> resolve_precision("fp64")
    Traceback (most recent call last):
    ...
    speechbrain_sslse.fast.InferenceOptionError: unknown precision 'fp64': expected one of auto, fp32, ...
    """
    if precision is None:
        precision = "auto"
    if precision not in PRECISIONS:
        expected = ", ".join(PRECISIONS)
        raise InferenceOptionError(f"unknown precision {precision!r}: expected one of {expected}")
    if precision == "auto":
        return default_precision(device)
    if precision == "fp16" and torch.device(device).type != "cuda":
        raise InferenceOptionError(
            "precision fp16 (--precision, precision=): fp16 is for CUDA devices; elsewhere use bf16 (or fp32)"
        )
    if precision == "bf16" and torch.device(device).type == "cpu" and not native_cpu_bf16():
        logger.warning("this CPU has no native bf16 instructions: bf16 inference will be slower than fp32")
    return precision


def check_device(device):
    """Checks that ``device`` names a torch device this machine has.

    Raises
    ------
    InferenceOptionError
        An unknown device name, or a device (CUDA, MPS ...) that is not available here.

    Example
    -------
    >>> check_device("cpu")
    >>> check_device("bogus")
    Traceback (most recent call last):
    ...
    speechbrain_sslse.fast.InferenceOptionError: device 'bogus' (--device, ...): not a torch device; ...
    """
    where = f'device {str(device)!r} (--device, run_opts["device"])'
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InferenceOptionError(f"{where}: not a torch device; use cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InferenceOptionError(
                f"{where}: CUDA is not available here (torch.cuda.is_available() is False); use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise InferenceOptionError(f"{where}: this machine has {count} CUDA device(s)")
        return
    try:
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError) as err:
        raise InferenceOptionError(f"{where}: not available here ({err}); use --device cpu") from None


def check_inference_options(fast=True, precision="auto", device="cpu", num_threads=None):
    """Checks the inference options of the enhancer and the CLI; returns the precision to run.

    Raises
    ------
    InferenceOptionError
        (a ``ValueError``) An unknown or unavailable device (:func:`check_device`), a
        reduced precision with the eager path, an unknown precision or fp16 on a CPU
        (:func:`resolve_precision`), or fewer than 1 thread.

    Example
    -------
    >>> check_inference_options(fast=False, precision="auto")
    'fp32'
    >>> check_inference_options(fast=False, precision="bf16")
    Traceback (most recent call last):
    ...
    speechbrain_sslse.fast.InferenceOptionError: precision 'bf16' needs the fast path: the eager path ...
    """
    check_device(device)
    if not fast and precision not in (None, "auto", "fp32"):
        raise InferenceOptionError(
            f"precision {precision!r} needs the fast path: the eager path (--eager, fast=False) runs in fp32"
        )
    if num_threads is not None and int(num_threads) < 1:
        raise InferenceOptionError(f"num_threads (--threads) must be >= 1, got {num_threads}")
    return resolve_precision(precision, device) if fast else "fp32"


# ---------------------------------------------------------------------------
# Attention of s3prl's TERA / Mockingjay / Audio ALBERT transformers
# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
# Generator on oneDNN
# ---------------------------------------------------------------------------
def _reflect_pad(x, pad, slope=None):
    """``leaky_relu(x)`` (or ``x``) reflect-padded by ``pad`` on both sides, in one pass.

    ``x`` is a channels-last ``[B, C, 1, T]`` tensor; so is the result,
    ``[B, C, 1, T + 2 pad]``. ``T`` must exceed ``pad`` (as for torch's reflect padding,
    whose error this raises): shorter inputs would read memory never written.
    """
    batch, channels, _, length = x.shape
    if pad >= length:
        raise RuntimeError(
            f"Padding size should be less than the corresponding input dimension, but got: padding "
            f"({pad}, {pad}) at dimension 2 of input {list(x.shape)} (too short for the generator)"
        )
    out = x.new_empty(batch, 1, length + 2 * pad, channels)
    body = out[:, :, pad : pad + length]
    source = x.permute(0, 2, 3, 1)
    if slope is None:
        body.copy_(source)
    else:
        torch.ops.aten.leaky_relu.out(source, slope, out=body)
    if pad:
        out[:, :, :pad] = out[:, :, pad + 1 : 2 * pad + 1].flip(2)
        out[:, :, pad + length :] = out[:, :, length - 1 : pad + length - 1].flip(2)
    return out.permute(0, 3, 1, 2)


def _effective(wrapper):
    """Weight and bias of a SpeechBrain conv wrapper (weight norm applied when present)."""
    conv = wrapper.conv
    bias = None if conv.bias is None else conv.bias.detach().float().clone()
    return conv.weight.detach().float().clone(), bias


class _PackedConv:
    """A stride-1 "valid" oneDNN convolution with prepacked weights on channels-last ``[B, C, 1, T]``.

    ``weight`` is ``[C_out, C_in, k]``; ``padding`` zeros on each side (done by oneDNN).
    """

    def __init__(self, weight, bias, dtype, dilation=1, padding=0):
        self.dilation = dilation
        self.out_channels, _, self.kernel_size = weight.shape
        self.args = ([0, padding], [1, 1], [1, dilation], 1)
        weight = weight.unsqueeze(2).to(dtype).contiguous(memory_format=torch.channels_last)
        self.weight = torch.ops.mkldnn._reorder_convolution_weight(weight, *self.args[:3], 1, None)
        self.bias = None if bias is None else bias.to(dtype)

    @property
    def reflect(self):
        """Reflect padding SpeechBrain's ``padding="same"`` adds on each side."""
        return self.dilation * (self.kernel_size - 1) // 2

    def __call__(self, x, attr="none", scalars=()):
        return torch.ops.mkldnn._convolution_pointwise(
            x, self.weight, self.bias, *self.args, attr, list(scalars), ""
        )

    def add(self, x, other, inplace=False):
        """``conv(x) + other``, in ``other``'s memory when ``inplace``."""
        if self.out_channels == 1:  # oneDNN's fused addition rejects single-channel tensors
            return other.add_(self(x)) if inplace else self(x).add_(other)
        if inplace:
            return torch.ops.mkldnn._convolution_pointwise_.binary(
                other, x, self.weight, self.bias, *self.args, "add", None, None, [], None
            )
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, other, self.weight, self.bias, *self.args, "add", None, None, [], None
        )


class _PolyphaseUpsample:
    """A transposed convolution of stride ``u`` and kernel ``2u`` as one ordinary convolution.

    Output sample ``n`` (``n + p = q u + r``) is ``x[q] W[r] + x[q-1] W[u+r]``: a kernel-2
    convolution from ``C_in`` to ``u * C_out`` channels over the input zero-padded by one
    on each side, whose channels-last output ``[B, L+1, u, C_out]`` is already the
    interleaved waveform; cropping ``p`` samples at each end gives the transposed
    convolution's output. oneDNN's strided deconvolution is several times slower in bf16.
    """

    def __init__(self, weight, bias, stride, padding, dtype):
        c_in, c_out, k = weight.shape
        self.stride, self.padding, self.c_out = stride, padding, c_out
        taps = weight.permute(2, 1, 0)  # [k, C_out, C_in]
        poly = torch.stack([taps[stride:], taps[:stride]], dim=-1).reshape(stride * c_out, c_in, 2)
        self.conv = _PackedConv(poly, None if bias is None else bias.repeat(stride), dtype, padding=1)

    def __call__(self, x):
        batch, _, _, length = x.shape
        y = self.conv(x).permute(0, 2, 3, 1).reshape(batch, 1, (length + 1) * self.stride, self.c_out)
        y = y[:, :, self.padding : (length + 1) * self.stride - self.padding].permute(0, 3, 1, 2)
        # oneDNN needs its own buffer (no storage offset) for the residual input of the blocks
        return y.clone(memory_format=torch.channels_last)


class _TransposedUpsample:
    """oneDNN transposed convolution with prepacked weights (kernels other than twice the stride)."""

    def __init__(self, weight, bias, stride, padding, dtype):
        self.args = ([0, padding], [0, 0], [1, stride], [1, 1], 1)
        self.weight = torch.ops.mkldnn._reorder_convolution_transpose_weight(
            weight.unsqueeze(2).to(dtype), *self.args, None
        )
        self.bias = None if bias is None else bias.to(dtype)

    def __call__(self, x):
        return torch.ops.mkldnn._convolution_transpose_pointwise(
            x, self.weight, self.bias, *self.args, "none", [], ""
        )


def _check_same_reflect(wrapper, where):
    if getattr(wrapper, "padding", None) != "same" or getattr(wrapper, "padding_mode", None) != "reflect":
        raise ValueError(
            f"{where}: expected SpeechBrain's Conv1d with padding='same' and padding_mode='reflect'"
        )
    if wrapper.conv.stride[0] != 1 or wrapper.conv.groups != 1:
        raise ValueError(f"{where}: expected stride 1 and groups 1")


class FastHifiganGenerator(nn.Module):
    """SpeechBrain's ``HifiganGenerator`` for CPU inference on oneDNN (see the module docstring).

    Built from a generator (weight norm folded or not); later changes to that
    generator's weights are not seen (build a new one). It holds no parameters:
    the prepacked weights are oneDNN tensors of ``dtype``.

    Arguments
    ---------
    generator : speechbrain.lobes.models.HifiGAN.HifiganGenerator
        The trained generator (resblock type 1 or 2, no global conditioning).
    dtype : torch.dtype
        ``torch.float32`` (same results as the eager generator to ~1e-7) or
        ``torch.bfloat16`` (native bf16 convolutions, fp32 accumulation).

    Example
    -------
    >>> from speechbrain.lobes.models.HifiGAN import HifiganGenerator
    >>> generator = HifiganGenerator(
    ...     in_channels=16, out_channels=1, resblock_type="1", resblock_dilation_sizes=[[1, 3, 5]],
    ...     resblock_kernel_sizes=[3], upsample_kernel_sizes=[10, 8, 8, 4],
    ...     upsample_initial_channel=32, upsample_factors=[5, 4, 4, 2],
    ... ).eval()
    >>> features = torch.randn(2, 11, 16)           # [B, frames, channels]
    >>> fast = FastHifiganGenerator(generator)
    >>> out = fast(features)
    >>> out.shape                                    # [B, samples]
    torch.Size([2, 1792])
    >>> with torch.no_grad():
    ...     eager = generator(features.transpose(1, 2))[:, 0]
    >>> bool((out - eager).abs().max() < 1e-5)
    True
    """

    def __init__(self, generator, dtype=torch.float32):
        super().__init__()
        if not torch.backends.mkldnn.is_available():
            raise RuntimeError("FastHifiganGenerator needs PyTorch built with oneDNN (MKLDNN)")
        if dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"dtype must be torch.float32 or torch.bfloat16, got {dtype}")
        if hasattr(generator, "cond_layer"):
            raise ValueError("generators with global conditioning (cond_channels > 0) are not supported")
        self.dtype = dtype
        self.num_kernels = generator.num_kernels
        scale = 1.0 / self.num_kernels  # the MRF average, folded into the next layer's weights
        _check_same_reflect(generator.conv_pre, "conv_pre")
        self.conv_pre = _PackedConv(*_effective(generator.conv_pre), dtype)
        self.ups = []
        for i, wrapper in enumerate(generator.ups):
            weight, bias = _effective(wrapper)
            if i > 0:
                weight = weight * scale
            conv = wrapper.conv
            stride, padding = conv.stride[0], conv.padding[0]
            if conv.kernel_size[0] == 2 * stride and conv.dilation[0] == 1 and conv.output_padding[0] == 0:
                self.ups.append(_PolyphaseUpsample(weight, bias, stride, padding, dtype))
            else:
                self.ups.append(_TransposedUpsample(weight, bias, stride, padding, dtype))
        self.resblocks = []
        for b, block in enumerate(generator.resblocks):
            if hasattr(block, "convs1"):  # ResBlock1
                pairs = zip(block.convs1, block.convs2)
            else:  # ResBlock2
                pairs = ((conv, None) for conv in block.convs)
            steps = []
            for first, second in pairs:
                for wrapper in (first, second):
                    if wrapper is not None:
                        _check_same_reflect(wrapper, f"resblocks[{b}]")
                steps.append(
                    tuple(
                        None
                        if wrapper is None
                        else _PackedConv(*_effective(wrapper), dtype, dilation=wrapper.conv.dilation[0])
                        for wrapper in (first, second)
                    )
                )
            self.resblocks.append(steps)
        _check_same_reflect(generator.conv_post, "conv_post")
        weight, bias = _effective(generator.conv_post)
        self.conv_post = _PackedConv(weight * scale, bias, dtype)

    @staticmethod
    def _resblock(x, steps):
        """ResBlock1 (two convolutions per step) or ResBlock2 (one) on channels-last ``x``."""
        for i, (first, second) in enumerate(steps):
            h = _reflect_pad(x, first.reflect, _LRELU_SLOPE)
            if second is not None:
                h = first(h, "leaky_relu", [_LRELU_SLOPE])
                h = _reflect_pad(h, second.reflect)
                first = second
            # the block input is shared by all blocks of the stage: the first step writes anew
            x = first.add(h, x, inplace=i > 0)
        return x

    @torch.inference_mode()
    def forward(self, features):
        """Synthesises waveforms.

        Arguments
        ---------
        features : torch.Tensor
            ``[B, F, C]`` generator input (frames first, as the vocoder's fusion gives it).

        Returns
        -------
        torch.Tensor
            ``[B, F * hop + extra]`` float32, the same samples as
            ``generator(features.transpose(1, 2))[:, 0]``.
        """
        x = features.to(self.dtype).contiguous().unsqueeze(1).permute(0, 3, 1, 2)  # [B, C, 1, F]
        o = self.conv_pre(_reflect_pad(x, self.conv_pre.reflect))
        for i, up in enumerate(self.ups):
            o = up(F.leaky_relu(o, _LRELU_SLOPE))
            total = None
            for j in range(self.num_kernels):
                y = self._resblock(o, self.resblocks[i * self.num_kernels + j])
                total = y if total is None else total.add_(y)
            o = total
        o = self.conv_post(_reflect_pad(o, self.conv_post.reflect, 0.01), "tanh")
        return o.reshape(o.shape[0], -1).float()


# ---------------------------------------------------------------------------
# The vocoder
# ---------------------------------------------------------------------------
class FastVocoder(nn.Module):
    """Inference-only fast path of a :class:`~speechbrain_sslse.lobes.SpectrumAwareVocoder`.

    Same call and outputs as the vocoder (``noisy [B, T], wav_lens [B] -> [B, T]``,
    zero beyond each length, items of different lengths processed separately), so it
    plugs into :func:`speechbrain_sslse.chunking.overlap_add`. On a CPU the items of a
    batch run one after the other: batching 10 s chunks gave no speed-up there and
    multiplied the activation memory (peak RSS). The vocoder itself is
    left unchanged (it shares its encoder, spectrum and fusion modules; the CPU
    generator is rebuilt, see :class:`FastHifiganGenerator`).

    Arguments
    ---------
    vocoder : speechbrain_sslse.lobes.SpectrumAwareVocoder
        A trained vocoder in eval mode, on its inference device (its generator's
        weights are read once, here).
    precision : str
        ``auto`` (:func:`default_precision`), ``fp32``, ``bf16`` or ``fp16`` (CUDA only).

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
        self.dtype = _DTYPES[self.precision]
        self.generator = None
        # A generator family that filters the noisy input (e.g. the mask head) runs as it is;
        # the prepacked oneDNN rebuild is for the HiFi-GAN generator.
        self.needs_noisy = bool(getattr(vocoder, "needs_noisy", False))
        onednn = self.device.type == "cpu" and torch.backends.mkldnn.is_available()
        if onednn and self.dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            onednn = False  # oneDNN's bf16 kernels need AVX-512 or AVX-NE-CONVERT: eager autocast instead
        if not self.needs_noisy and onednn:
            self.generator = FastHifiganGenerator(vocoder.generator, self.dtype)
        # Elsewhere (CUDA, builds without oneDNN): the vocoder's own generator under autocast.
        # Weight norm, if still there, is left in place: a deep copy of a parametrized module
        # shares its generated class, and folding the copy would break the original.

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _enhance(self, noisy):
        """Equal-length waveforms ``[b, t]`` -> ``[b, t]`` float32."""
        with sdpa_attention(self.vocoder.encoder), self._autocast():
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
            per_item=self.device.type == "cpu",
        )
