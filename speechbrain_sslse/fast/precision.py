"""Precision policy and option checks of the fast inference path.

Which precision ``auto`` stands for (:func:`default_precision`: bf16 on CPUs with
native bf16 instructions and on CUDA devices that support it, fp32 otherwise), and
the checks of the inference options the enhancer and the CLI take (device,
precision, fast path, threads), each failing with an :class:`InferenceOptionError`
that names the option.

Authors
 * speechbrain-sslse contributors
"""

import functools
import logging

import torch

__all__ = [
    "PRECISIONS",
    "DTYPES",
    "InferenceOptionError",
    "native_cpu_bf16",
    "default_precision",
    "resolve_precision",
    "check_device",
    "check_inference_options",
]

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class InferenceOptionError(ValueError):
    """An inference option (device, precision, fast path, threads) that cannot be used."""


@functools.cache
def native_cpu_bf16():
    """Whether this CPU has bf16 dot-product instructions (``avx512_bf16`` or AMX) usable by oneDNN.

    Without them oneDNN emulates bf16, which is slower than fp32.

    Example
    -------
    >>> native_cpu_bf16() in (True, False)
    True
    """
    if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def default_precision(device="cpu"):
    """The precision ``auto`` stands for on ``device``.

    bf16 on CPUs with native bf16 instructions (:func:`native_cpu_bf16`) and on CUDA
    devices that support bf16; fp32 everywhere else.

    Example
    -------
    >>> default_precision("cpu") in ("fp32", "bf16")
    True
    """
    device = torch.device(device)
    if device.type == "cpu":
        return "bf16" if native_cpu_bf16() else "fp32"
    if device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def resolve_precision(precision, device="cpu"):
    """Checks a precision name and resolves ``auto`` (and None) for ``device``.

    Raises
    ------
    ValueError
        For an unknown name, or fp16 on a CPU.

    Example
    -------
    >>> resolve_precision("fp32")
    'fp32'
    >>> resolve_precision("fp64")
    Traceback (most recent call last):
    ...
    speechbrain_sslse.fast.precision.InferenceOptionError: unknown precision 'fp64': expected one of auto, ...
    """
    if precision is None:
        precision = "auto"
    if precision not in PRECISIONS:
        expected = ", ".join(PRECISIONS)
        raise InferenceOptionError(f"unknown precision {precision!r}: expected one of {expected}")
    if precision == "auto":
        return default_precision(device)
    if precision == "fp16" and torch.device(device).type != "cuda":
        raise InferenceOptionError(
            "precision fp16 (--precision, precision=): fp16 is for CUDA devices; elsewhere use bf16 (or fp32)"
        )
    if precision == "bf16" and torch.device(device).type == "cpu" and not native_cpu_bf16():
        logger.warning("this CPU has no native bf16 instructions: bf16 inference will be slower than fp32")
    return precision


def check_device(device):
    """Checks that ``device`` names a torch device this machine has.

    Raises
    ------
    InferenceOptionError
        An unknown device name, or a device (CUDA, MPS ...) that is not available here.

    Example
    -------
    >>> check_device("cpu")
    >>> check_device("bogus")
    Traceback (most recent call last):
    ...
    speechbrain_sslse.fast.precision.InferenceOptionError: device 'bogus' (--device, ...): not a torch ...
    """
    where = f'device {str(device)!r} (--device, run_opts["device"])'
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InferenceOptionError(f"{where}: not a torch device; use cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InferenceOptionError(
                f"{where}: CUDA is not available here (torch.cuda.is_available() is False); use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise InferenceOptionError(f"{where}: this machine has {count} CUDA device(s)")
        return
    try:
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError) as err:
        raise InferenceOptionError(f"{where}: not available here ({err}); use --device cpu") from None


def check_inference_options(fast=True, precision="auto", device="cpu", num_threads=None):
    """Checks the inference options of the enhancer and the CLI; returns the precision to run.

    Raises
    ------
    InferenceOptionError
        (a ``ValueError``) An unknown or unavailable device (:func:`check_device`), a
        reduced precision with the eager path, an unknown precision or fp16 on a CPU
        (:func:`resolve_precision`), or fewer than 1 thread.

    Example
    -------
    >>> check_inference_options(fast=False, precision="auto")
    'fp32'
    >>> check_inference_options(fast=False, precision="bf16")
    Traceback (most recent call last):
    ...
    speechbrain_sslse.fast.precision.InferenceOptionError: precision 'bf16' needs the fast path: ...
    """
    check_device(device)
    if not fast and precision not in (None, "auto", "fp32"):
        raise InferenceOptionError(
            f"precision {precision!r} needs the fast path: the eager path (--eager, fast=False) runs in fp32"
        )
    if num_threads is not None and int(num_threads) < 1:
        raise InferenceOptionError(f"num_threads (--threads) must be >= 1, got {num_threads}")
    return resolve_precision(precision, device) if fast else "fp32"
