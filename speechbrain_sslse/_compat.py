"""Every compatibility patch of s3prl 0.4.18 (and of the torchaudio it runs on), in one place.

Each patch changes a name in someone else's module, so each is applied here only, once
per process, and only adds or replaces what it names; each says which upstream issue it
works around.

:func:`install` (called before any s3prl upstream module is imported):

- ``torchaudio.set_audio_backend``: removed in torchaudio 2.9, still called at import
  time by ``s3prl.upstream.byol_s`` (s3prl/s3prl#575, "Issues with deprecated api in
  torchaudio"). Audio backends no longer exist in torchaudio, so the call has nothing
  left to select: a no-op stand-in.
- ``torchaudio.sox_effects``: removed in torchaudio 2.9; ``s3prl.upstream.mos_prediction.expert``
  imports ``apply_effects_tensor`` from it but never calls it (the same s3prl issue). A
  stand-in module whose function raises a clear error if it ever is called.

:func:`install_tera` (called where TERA, Mockingjay or Audio ALBERT is built or pretrained):

- ``s3prl.upstream.mockingjay.builder.get_sinusoid_table`` and
  ``s3prl.pretrain.mockingjay.task.get_sinusoid_table``: s3prl computes the
  ``24000 x hidden_size`` sinusoid position table element by element in Python (about
  30 s for TERA base, 1 s for a 32-wide test model, once per process; not reported
  upstream). The replacement evaluates the same float64 expression on arrays, in
  milliseconds, and caches it per hidden size as s3prl's ``builder`` does.

The project never reads audio through torchaudio; nothing here changes a result.
"""

import functools
import importlib
import sys
import types

import numpy as np
import torch
import torchaudio

__all__ = ["install", "install_tera", "sinusoid_table"]

_APPLIED = set()


def _set_audio_backend(backend=None):
    """No-op stand-in for the removed ``torchaudio.set_audio_backend``."""
    return None


def _apply_effects_tensor(*args, **kwargs):
    raise RuntimeError(
        "torchaudio.sox_effects was removed in torchaudio 2.9 and is not available; "
        "apply the effect with another library (e.g. scipy or librosa)"
    )


def _once(name):
    """True the first time a patch ``name`` is asked for in this process (and marks it applied)."""
    if name in _APPLIED:
        return False
    _APPLIED.add(name)
    return True


def install():
    """Adds the torchaudio names that s3prl's upstream modules expect, when missing.

    Example
    -------
    >>> install()
    >>> import torchaudio
    >>> torchaudio.set_audio_backend("sox_io") is None
    True
    """
    if not _once("torchaudio"):
        return
    # s3prl/s3prl#575: s3prl.upstream.byol_s calls it at import time.
    if not hasattr(torchaudio, "set_audio_backend"):
        torchaudio.set_audio_backend = _set_audio_backend
    # s3prl/s3prl#575: s3prl.upstream.mos_prediction.expert imports from it, never calls it.
    if "torchaudio.sox_effects" not in sys.modules:
        try:
            importlib.import_module("torchaudio.sox_effects")
        except ImportError:
            module = types.ModuleType("torchaudio.sox_effects")
            module.apply_effects_tensor = _apply_effects_tensor
            module.__doc__ = "Stand-in for a module removed in torchaudio 2.9 (speechbrain_sslse._compat)."
            sys.modules["torchaudio.sox_effects"] = module
            torchaudio.sox_effects = module


def sinusoid_table(hidden_size, max_len):
    """s3prl's TERA/Mockingjay sinusoid position table, vectorised (same float64 formula).

    Arguments
    ---------
    hidden_size : int
        Width of the table.
    max_len : int
        Number of positions.

    Returns
    -------
    torch.Tensor
        ``[max_len, hidden_size]`` float32.

    Example
    -------
    >>> table = sinusoid_table(4, 3)
    >>> tuple(table.shape), table[0].tolist()
    ((3, 4), [0.0, 1.0, 0.0, 1.0])
    """
    position = np.arange(max_len, dtype=np.float64)[:, None]
    index = np.arange(hidden_size)[None, :]
    table = position / np.power(10000, 2 * (index // 2) / hidden_size)
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    return torch.FloatTensor(table)


def _vectorise_table_of(module):
    """Replaces ``module.get_sinusoid_table`` by the cached vectorised :func:`sinusoid_table`."""
    max_len = module.MAX_SEQLEN

    @functools.lru_cache(maxsize=16)
    def get_sinusoid_table(hidden_size):
        return sinusoid_table(hidden_size, max_len)

    get_sinusoid_table._sslse_vectorised = True
    module.get_sinusoid_table = get_sinusoid_table


def install_tera():
    """Replaces s3prl's element-by-element TERA position tables by the vectorised one (once).

    Both the upstream's (``s3prl.upstream.mockingjay.builder``, used by ``tera_local``)
    and pretraining's (``s3prl.pretrain.mockingjay.task``) are replaced; s3prl looks the
    function up in its module at each call, so modules imported earlier get it too.

    Example
    -------
    >>> install_tera()
    >>> from s3prl.upstream.mockingjay import builder
    >>> builder.get_sinusoid_table._sslse_vectorised
    True
    """
    install()
    if not _once("tera"):
        return
    from s3prl.pretrain.mockingjay import task
    from s3prl.upstream.mockingjay import builder

    # Not reported upstream: s3prl builds the 24000-row table in a Python loop.
    _vectorise_table_of(builder)
    _vectorise_table_of(task)
