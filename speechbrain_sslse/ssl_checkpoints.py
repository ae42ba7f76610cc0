"""The recipes' SSL checkpoint policy: which checkpoint to use when none is given.

:func:`resolve_ssl_checkpoint` is what the DNS recipe's hparams files call
(``!apply:speechbrain_sslse.ssl_checkpoints.resolve_ssl_checkpoint``), and so do the
``train_hyperparams.yaml`` copies in model folders packaged from them; it stays here so
that those files keep loading.

The checkpoint writers that used to live here have their own homes: the TERA format in
:mod:`speechbrain_sslse.tera.checkpoint`, the tiny random checkpoints of tests and quick
schedules in :mod:`speechbrain_sslse.testing`. Their old names still resolve here, with a
``DeprecationWarning``.

Authors
 * speechbrain-sslse contributors
"""

import importlib
import logging
import warnings
from pathlib import Path

from speechbrain_sslse.tera.export import default_tera_checkpoint
from speechbrain_sslse.testing import write_tiny_tera

__all__ = ["resolve_ssl_checkpoint"]

logger = logging.getLogger(__name__)

# Old name -> the module that is its home now (kept for one release).
_MOVED = {
    "tera_base_config": "speechbrain_sslse.tera.checkpoint",
    "tera_tiny_config": "speechbrain_sslse.tera.checkpoint",
    "write_tera_checkpoint": "speechbrain_sslse.tera.checkpoint",
    "write_tiny_tera": "speechbrain_sslse.testing",
    "write_tiny_hubert": "speechbrain_sslse.testing",
    "write_tiny_wav2vec2": "speechbrain_sslse.testing",
    "write_tiny_wavlm": "speechbrain_sslse.testing",
}


def __getattr__(name):
    """The moved writers under their old module, with a ``DeprecationWarning``.

    Arguments
    ---------
    name : str
        An attribute of this module.

    Returns
    -------
    object

    Example
    -------
    >>> import warnings
    >>> from speechbrain_sslse import ssl_checkpoints
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     writer = ssl_checkpoints.write_tiny_hubert
    >>> writer.__module__, caught[0].category.__name__
    ('speechbrain_sslse.testing', 'DeprecationWarning')
    """
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"speechbrain_sslse.ssl_checkpoints.{name} moved to {_MOVED[name]}.{name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(_MOVED[name]), name)


def resolve_ssl_checkpoint(ckpt=None, workdir=".", upstream="tera"):
    """The SSL checkpoint a recipe should use when the user may not have given one.

    - ``ckpt`` given: returned unchanged;
    - otherwise, for TERA: the small TERA shipped in the package
      (:func:`speechbrain_sslse.tera.default_tera_checkpoint`) when installed, else a
      randomly initialised tiny TERA written to ``workdir/random_tiny_tera.ckpt``, with a
      warning (its features carry no pretrained knowledge).

    Arguments
    ---------
    ckpt : str or None
        A checkpoint path, or None.
    workdir : str
        Where a random fallback checkpoint is written.
    upstream : str
        The s3prl upstream name the checkpoint is for.

    Returns
    -------
    str

    Example
    -------
    >>> resolve_ssl_checkpoint("/models/tera/states-1000000.ckpt")
    '/models/tera/states-1000000.ckpt'
    """
    if ckpt not in (None, "", "null", "None"):
        return str(ckpt)
    if not str(upstream).startswith("tera"):
        raise ValueError(
            f"no checkpoint given for the s3prl upstream {upstream!r}: pass ssl_ckpt=/path/to/checkpoint"
        )
    try:
        path = default_tera_checkpoint()
        logger.info("SSL encoder: the small TERA shipped in the package (%s)", path)
        return str(path)
    except FileNotFoundError:
        path = Path(workdir) / "random_tiny_tera.ckpt"
        if not path.is_file():
            write_tiny_tera(path, hidden_size=64, num_layers=3, seed=0)
        logger.warning(
            "SSL encoder: no pretrained TERA available, using a RANDOMLY INITIALISED tiny TERA (%s). "
            "Pass ssl_ckpt=/path/to/tera.ckpt for a real one.",
            path,
        )
        return str(path)
