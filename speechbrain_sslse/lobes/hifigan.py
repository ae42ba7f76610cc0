"""HiFi-GAN generator presets on the 10 ms grid, as factory functions.

The spectrum-aware vocoder's HiFi-GAN generator is SpeechBrain's
:class:`~speechbrain.lobes.models.HifiGAN.HifiganGenerator`; this module only names its
sizes. :func:`hifigan_generator` builds one from a preset (``v1``, ``v2``, ``v3`` of Kong
et al., 2020) with any argument overridden, the way torchaudio's ``wav2vec2_base`` builds
a ``Wav2Vec2Model``. In a recipe yaml::

    waveform_generator: !apply:speechbrain_sslse.lobes.hifigan_generator
        preset: v1
        in_channels: !ref <d_model>

Authors
 * speechbrain-sslse contributors
"""

import copy
import math

from speechbrain.lobes.models.HifiGAN import HifiganGenerator

__all__ = ["HIFIGAN_PRESETS", "UPSAMPLE_KERNELS_BEFORE", "hifigan_generator", "upsampling_factor"]

# Upsampling factors whose product is 160, the 10 ms hop of TERA and of the noisy spectrum.
# HiFi-GAN's kernel is twice the factor; for the odd factor 5, kernel 10 (SpeechBrain's
# padding (k - u) // 2 = 2) gives 5 L + 1 samples, off the frame grid by half a sample, and
# kernel 11 (padding 3) gives exactly 5 L, centred on each frame. So a generator turns F
# frames into exactly 160 F samples. Checkpoints trained with kernel 10 load with
# ``upsample_kernel_sizes: [10, 8, 8, 4]`` (packaged model folders record their kernels).
UPSAMPLE_KERNELS_BEFORE = [10, 8, 8, 4]
_UPSAMPLING_160 = {"upsample_factors": [5, 4, 4, 2], "upsample_kernel_sizes": [11, 8, 8, 4]}
HIFIGAN_PRESETS = {
    "v1": {
        "resblock_type": "1",
        "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "upsample_initial_channel": 512,
        **_UPSAMPLING_160,
    },
    "v2": {
        "resblock_type": "1",
        "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "upsample_initial_channel": 128,
        **_UPSAMPLING_160,
    },
    "v3": {
        "resblock_type": "2",
        "resblock_kernel_sizes": [3, 5, 7],
        "resblock_dilation_sizes": [[1, 2], [2, 6], [3, 12]],
        "upsample_initial_channel": 256,
        **_UPSAMPLING_160,
    },
}


def hifigan_generator(preset="v1", in_channels=256, out_channels=1, **overrides):
    """SpeechBrain's HiFi-GAN generator with the sizes of a preset.

    Arguments
    ---------
    preset : str
        ``v1`` (the paper's), ``v2`` or ``v3``: a key of :data:`HIFIGAN_PRESETS`.
    in_channels : int
        Size of the input features (the fusion's ``d_model``).
    out_channels : int
        Output channels (1: a waveform).
    **overrides
        Any other argument of :class:`~speechbrain.lobes.models.HifiGAN.HifiganGenerator`;
        a None value keeps the preset's (so a yaml can leave a size to the preset).

    Returns
    -------
    speechbrain.lobes.models.HifiGAN.HifiganGenerator
        ``[B, in_channels, F] -> [B, out_channels, 160 F]``.

    Example
    -------
    >>> import torch
    >>> generator = hifigan_generator("v3", in_channels=8, upsample_initial_channel=16)
    >>> generator(torch.randn(1, 8, 20)).shape
    torch.Size([1, 1, 3200])
    >>> upsampling_factor(generator)
    160
    >>> hifigan_generator("v9")
    Traceback (most recent call last):
    ...
    ValueError: unknown HiFi-GAN preset 'v9': expected one of ['v1', 'v2', 'v3']
    """
    if preset not in HIFIGAN_PRESETS:
        raise ValueError(f"unknown HiFi-GAN preset {preset!r}: expected one of {list(HIFIGAN_PRESETS)}")
    config = copy.deepcopy(HIFIGAN_PRESETS[preset])
    config.update({key: value for key, value in overrides.items() if value is not None})
    return HifiganGenerator(in_channels=in_channels, out_channels=out_channels, **config)


def upsampling_factor(generator):
    """Samples per input frame of a HiFi-GAN generator (the product of its upsampling strides).

    A generator of another family states it as ``hop_length``.

    Arguments
    ---------
    generator : torch.nn.Module
        A :class:`~speechbrain.lobes.models.HifiGAN.HifiganGenerator`, or a module with ``hop_length``.

    Returns
    -------
    int
    """
    if hasattr(generator, "hop_length"):
        return int(generator.hop_length)
    return math.prod(int(up.conv.stride[0]) for up in generator.ups)
