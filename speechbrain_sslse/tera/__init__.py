"""TERA pretraining: s3prl's objective and models, exported in s3prl's checkpoint format.

- :mod:`.masking`: TERA's alteration (time masking, frequency masking, magnitude
  alteration; s3prl's own function), the masked reconstruction loss and the
  copy-the-input baseline.
- :mod:`.model`: :class:`TeraFeatures` (s3prl's online log-Mel features) and
  :class:`MaskedAcousticModel` (s3prl's transformer + prediction head).
- :mod:`.checkpoint`: the s3prl checkpoint format (:func:`write_tera_checkpoint`,
  :func:`tera_base_config`, :func:`tera_tiny_config`, :func:`feature_dims`).
- :mod:`.export`: :func:`export_tera` (``states-<step>.ckpt`` for ``tera_local``) and
  :func:`default_tera_checkpoint` (the small TERA shipped in the package).

The recipe is ``recipes/LibriSpeech/tera_pretraining``.
"""

from .checkpoint import feature_dims, tera_base_config, tera_tiny_config, write_tera_checkpoint
from .export import DEFAULT_TERA_CKPT, default_tera_checkpoint, export_tera, tera_config
from .masking import AlteredBatch, alter_frames, copy_input_loss, reconstruction_loss, seed_of
from .model import MaskedAcousticModel, TeraFeatures, normalize_level

__all__ = [
    "AlteredBatch",
    "alter_frames",
    "copy_input_loss",
    "reconstruction_loss",
    "seed_of",
    "MaskedAcousticModel",
    "TeraFeatures",
    "feature_dims",
    "normalize_level",
    "export_tera",
    "tera_base_config",
    "tera_tiny_config",
    "write_tera_checkpoint",
    "tera_config",
    "default_tera_checkpoint",
    "DEFAULT_TERA_CKPT",
]
