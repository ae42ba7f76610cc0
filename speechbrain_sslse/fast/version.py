"""The torch versions the packed oneDNN generator was written and tested for.

:class:`~speechbrain_sslse.fast.FastHifiganGenerator` calls torch's private oneDNN
operators (``torch.ops.mkldnn._convolution_pointwise``, its in-place binary form,
``_reorder_convolution_weight`` ...), whose signatures and semantics are no public
API and may change in any torch release. It was written and tested for torch 2.9.x
(``constraints.txt`` pins 2.9.1, ``setup.py`` asks for ``>=2.9.1,<2.10``).

On another torch (major.minor outside :data:`TESTED_TORCH`),
:class:`~speechbrain_sslse.fast.FastVocoder` does not build the packed generator: it
runs the vocoder's own (eager, weight norm folded by the enhancer) generator, as it
does on CUDA and on builds without oneDNN, and says so once with an
:class:`UntestedTorchWarning`. The SSL encoder still gets SDPA attention and, in
bf16, autocast.

Authors
 * speechbrain-sslse contributors
"""

import re
import warnings

import torch

__all__ = [
    "TESTED_TORCH",
    "TORCH_VERSION",
    "UntestedTorchWarning",
    "major_minor",
    "tested_torch",
    "packed_generator_allowed",
]

# The first and last torch (major, minor) the packed generator was tested on, inclusive.
# Widen it only together with a run of tests/test_fast_inference.py on that torch.
TESTED_TORCH = ((2, 9), (2, 9))

# The installed torch, as the guard reads it (a module attribute, so that tests can set it).
TORCH_VERSION = torch.__version__


class UntestedTorchWarning(UserWarning):
    """The fast path falls back to the eager generator on a torch it was not tested with."""


def major_minor(version):
    """``(major, minor)`` of a torch version string, or None if it has none.

    Example
    -------
    >>> major_minor("2.9.1+cu128"), major_minor("2.10.0a0"), major_minor("nightly")
    ((2, 9), (2, 10), None)
    """
    match = re.match(r"\s*(\d+)\.(\d+)", str(version))
    return None if match is None else (int(match.group(1)), int(match.group(2)))


def _tested_range():
    (lo_major, lo_minor), (hi_major, hi_minor) = TESTED_TORCH
    if (lo_major, lo_minor) == (hi_major, hi_minor):
        return f"{lo_major}.{lo_minor}.x"
    return f"{lo_major}.{lo_minor}.x to {hi_major}.{hi_minor}.x"


def tested_torch(version=None):
    """Whether ``version`` (default: the installed torch) is in :data:`TESTED_TORCH`.

    Example
    -------
    >>> tested_torch("2.9.1"), tested_torch("2.10.0"), tested_torch("2.8.0+cpu")
    (True, False, False)
    """
    found = major_minor(TORCH_VERSION if version is None else version)
    return found is not None and TESTED_TORCH[0] <= found <= TESTED_TORCH[1]


def packed_generator_allowed():
    """Whether the packed oneDNN generator may be used with the installed torch; warns if not.

    Returns
    -------
    bool
        True on a tested torch (:func:`tested_torch`). Otherwise False, after one
        :class:`UntestedTorchWarning` naming the torch found, the tested one and the
        eager path used instead.

    Example
    -------
    >>> packed_generator_allowed() == tested_torch()
    True
    """
    if tested_torch():
        return True
    warnings.warn(
        UntestedTorchWarning(
            f"speechbrain_sslse.fast: torch {TORCH_VERSION} found, but the packed oneDNN generator was "
            f"written and tested for torch {_tested_range()} (constraints.txt); FastVocoder uses the "
            f"eager (folded weight-norm) generator instead (fp32 output equal to float rounding, "
            f"slower on CPU)"
        ),
        stacklevel=3,
    )
    return False
