"""SpeechBrain's HiFi-GAN generator rebuilt on prepacked oneDNN convolutions, for CPU inference.

:class:`FastHifiganGenerator` folds the weights once (weight norm, and the
``1 / num_kernels`` average of the multi-receptive-field blocks) and prepacks them;
activations stay channels-last (``[B, C, 1, T]`` in memory as ``[B, T, C]``, no layout
reorders between layers), leaky ReLU and residual additions are fused into the
convolutions, reflect padding and leaky ReLU are done in one pass, and the
upsampling transposed convolutions are computed as polyphase convolutions. In fp32
it is the same computation as the eager generator (differences ~1e-7); in bf16 it
uses the CPU's native bf16 dot products (``avx512_bf16`` / AMX).

It calls torch's private oneDNN operators: :class:`~speechbrain_sslse.fast.FastVocoder`
uses it only on the torch versions it was tested with (:mod:`speechbrain_sslse.fast.version`).

Authors
 * speechbrain-sslse contributors
"""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FastHifiganGenerator"]

_LRELU_SLOPE = 0.1  # SpeechBrain's HiFi-GAN slope (the last activation uses 0.01)


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
    the prepacked weights are oneDNN tensors of ``dtype``. Built directly, it does
    not check the torch version (:class:`~speechbrain_sslse.fast.FastVocoder` does).

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
