"""Torch modules of the spectrum-aware denoising vocoder (no file I/O).

- :mod:`.ssl_encoder`: :class:`SSLEncoder` (any s3prl upstream, frozen, all hidden
  states) and :class:`LayerCombination`.
- :mod:`.spectrum`: :class:`NoisySpectrum` on the SSL frame grid.
- :mod:`.fusion`: the fusions of SSL embeddings and spectrum, by name (:func:`build_fusion`).
- :mod:`.vocoder`: :class:`SpectrumAwareVocoder` (encoder + spectrum + fusion + HiFi-GAN).
- :mod:`.discriminator`: HiFi-GAN's MPD + MSD with a width multiplier (:class:`HifiganDiscriminator`).
"""

from .discriminator import HifiganDiscriminator
from .fusion import (
    FUSIONS,
    AdditiveFusion,
    CrossAttentionBySpectrumFusion,
    CrossAttentionFusion,
    FiLMFusion,
    SSLOnlyFusion,
    build_fusion,
)
from .mask_head import ConvNeXtBlock, SpectralMaskHead
from .spectrum import NoisySpectrum
from .ssl_encoder import (
    CheckpointError,
    LayerCombination,
    SSLEncoder,
    UpstreamUnavailableError,
    list_upstreams,
    resolve_upstream,
    upstream_kind,
)
from .vocoder import SpectrumAwareVocoder

__all__ = [
    "SSLEncoder",
    "LayerCombination",
    "NoisySpectrum",
    "FUSIONS",
    "build_fusion",
    "CrossAttentionFusion",
    "CrossAttentionBySpectrumFusion",
    "AdditiveFusion",
    "FiLMFusion",
    "SSLOnlyFusion",
    "SpectrumAwareVocoder",
    "HifiganDiscriminator",
    "SpectralMaskHead",
    "ConvNeXtBlock",
    "list_upstreams",
    "resolve_upstream",
    "upstream_kind",
    "CheckpointError",
    "UpstreamUnavailableError",
]
