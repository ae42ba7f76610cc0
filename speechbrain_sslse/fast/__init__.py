"""The fast inference path of the spectrum-aware denoising vocoder: an isolated backend.

:class:`FastVocoder` runs a trained :class:`~speechbrain_sslse.lobes.SpectrumAwareVocoder`
for inference only, with the same inputs and outputs:

- **Generator on CPU** (:class:`FastHifiganGenerator`, :mod:`.generator`): SpeechBrain's
  ``HifiganGenerator`` rebuilt on oneDNN convolutions with weights folded (weight
  norm, and the ``1 / num_kernels`` average of the multi-receptive-field blocks) and
  prepacked once, activations kept channels-last (``[B, C, 1, T]`` in memory as
  ``[B, T, C]``, no layout reorders between layers), leaky ReLU and residual additions
  fused into the convolutions, reflect padding and leaky ReLU done in one pass, and
  the upsampling transposed convolutions computed as polyphase convolutions. In fp32
  it is the same computation as the eager generator (differences ~1e-7); in bf16
  it uses the CPU's native bf16 dot products (``avx512_bf16`` / AMX).
- **SSL encoder and fusion** (:mod:`.wrapper`): ``torch.inference_mode``, s3prl's
  TERA/Mockingjay self-attention computed by
  :func:`torch.nn.functional.scaled_dot_product_attention` (:func:`sdpa_attention`;
  same math, no ``[heads, F, F]`` score tensors), and, in bf16, CPU autocast.
- **On CUDA** (and PyTorch builds without oneDNN): the vocoder's own generator and
  encoder under autocast (bf16 or fp16), with the same attention.
- **On a torch it was not tested with** (:mod:`.version`: the packed generator calls
  torch's private oneDNN operators and was written for torch 2.9.x): the vocoder's own
  (eager, weight norm folded) generator, after one :class:`UntestedTorchWarning`.

Precisions (:mod:`.precision`): ``fp32``, ``bf16``, ``fp16`` (CUDA only) or ``auto``
(:func:`default_precision`: bf16 on CPUs with native bf16 instructions and on CUDA
devices that support it, fp32 otherwise).

Authors
 * speechbrain-sslse contributors
"""

from .generator import FastHifiganGenerator
from .precision import (
    PRECISIONS,
    InferenceOptionError,
    check_device,
    check_inference_options,
    default_precision,
    native_cpu_bf16,
    resolve_precision,
)
from .version import TESTED_TORCH, UntestedTorchWarning, tested_torch
from .wrapper import FastVocoder, functional_gelu, sdpa_attention

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
    "functional_gelu",
    "TESTED_TORCH",
    "UntestedTorchWarning",
    "tested_torch",
]
