"""Compatibility of s3prl 0.4.18 with torchaudio >= 2.9.

torchaudio 2.9 removed ``torchaudio.set_audio_backend`` and ``torchaudio.sox_effects``.
Two s3prl upstream modules still touch them at import time, without needing them for
what this project does (it never reads audio through torchaudio):

- ``s3prl.upstream.byol_s`` calls ``torchaudio.set_audio_backend("sox_io")``: audio
  backends no longer exist in torchaudio, so the call has nothing left to select and
  becomes a no-op;
- ``s3prl.upstream.mos_prediction.expert`` imports ``apply_effects_tensor`` from
  ``torchaudio.sox_effects`` but never calls it: it is provided and raises a clear
  error if it ever is called.

:func:`install` adds only what is missing, so it does nothing on a torchaudio that
still has them.
"""

import importlib
import sys
import types

import torchaudio

__all__ = ["install"]


def _set_audio_backend(backend=None):
    """No-op stand-in for the removed ``torchaudio.set_audio_backend``."""
    return None


def _apply_effects_tensor(*args, **kwargs):
    raise RuntimeError(
        "torchaudio.sox_effects was removed in torchaudio 2.9 and is not available; "
        "apply the effect with another library (e.g. scipy or librosa)"
    )


def install():
    """Adds the torchaudio names that s3prl's upstream modules expect, when missing.

    Example
    -------
    >>> install()
    >>> import torchaudio
    >>> torchaudio.set_audio_backend("sox_io") is None
    True
    """
    if not hasattr(torchaudio, "set_audio_backend"):
        torchaudio.set_audio_backend = _set_audio_backend
    if "torchaudio.sox_effects" not in sys.modules:
        try:
            importlib.import_module("torchaudio.sox_effects")
        except ImportError:
            module = types.ModuleType("torchaudio.sox_effects")
            module.apply_effects_tensor = _apply_effects_tensor
            module.__doc__ = "Stand-in for a module removed in torchaudio 2.9 (speechbrain_sslse._compat)."
            sys.modules["torchaudio.sox_effects"] = module
            torchaudio.sox_effects = module
