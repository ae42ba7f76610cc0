"""Torch modules of the spectrum-aware denoising vocoder (no file I/O).

- :mod:`.upstreams`: the registry of s3prl upstream names (:func:`list_upstreams`, :func:`resolve_upstream`).
- :mod:`.ssl_encoder`: :class:`SSLEncoder` (any s3prl upstream, frozen, all hidden states).
- :mod:`.upstream_architecture`: TERA built from its architecture, its weights loaded later.
- :mod:`.layer_combination`: :class:`LayerCombination` of the hidden states.
- :mod:`.lengths`: relative lengths to samples, equal-length groups of a padded batch.
- :mod:`.spectrum`: :class:`NoisySpectrum` on the SSL frame grid.
- :mod:`.fusion`: the fusions of SSL embeddings and spectrum (:data:`FUSIONS` names them).
- :mod:`.hifigan`: HiFi-GAN presets v1/v2/v3 as a factory (:func:`hifigan_generator`).
- :mod:`.mask_head`: the spectrum-aware mask head, a generator family (:class:`SpectralMaskHead`).
- :mod:`.vocoder`: :class:`SpectrumAwareVocoder`, assembled from the modules above (built in a
  recipe yaml with ``!new:``), and :func:`spectrum_aware_vocoder` (the same from names, in Python).
- :mod:`.discriminator`: HiFi-GAN's MPD + MSD with a width multiplier (:class:`HifiganDiscriminator`)
  and a multi-resolution spectrogram discriminator (:class:`MultiResolutionSpectrogramDiscriminator`).
"""

from .discriminator import HifiganDiscriminator, MultiResolutionSpectrogramDiscriminator
from .fusion import (
    FUSIONS,
    AdditiveFusion,
    CrossAttentionBySpectrumFusion,
    CrossAttentionFusion,
    FiLMBySpectrumFusion,
    FiLMFusion,
    SpectrumOnlyFusion,
    SSLOnlyFusion,
)
from .hifigan import HIFIGAN_PRESETS, hifigan_generator
from .layer_combination import LayerCombination
from .mask_head import ConvNeXtBlock, SpectralMaskHead
from .spectrum import NoisySpectrum
from .ssl_encoder import CheckpointError, SSLEncoder
from .upstreams import UpstreamUnavailableError, list_upstreams, resolve_upstream, upstream_kind
from .vocoder import SpectrumAwareVocoder, spectrum_aware_vocoder

__all__ = [
    "SSLEncoder",
    "LayerCombination",
    "NoisySpectrum",
    "FUSIONS",
    "CrossAttentionFusion",
    "CrossAttentionBySpectrumFusion",
    "AdditiveFusion",
    "FiLMFusion",
    "FiLMBySpectrumFusion",
    "SSLOnlyFusion",
    "SpectrumOnlyFusion",
    "HIFIGAN_PRESETS",
    "hifigan_generator",
    "SpectrumAwareVocoder",
    "spectrum_aware_vocoder",
    "HifiganDiscriminator",
    "MultiResolutionSpectrogramDiscriminator",
    "SpectralMaskHead",
    "ConvNeXtBlock",
    "list_upstreams",
    "resolve_upstream",
    "upstream_kind",
    "CheckpointError",
    "UpstreamUnavailableError",
]
