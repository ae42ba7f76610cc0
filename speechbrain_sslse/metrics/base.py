"""Shared pieces of the metrics: the "missing" signal, input conversion, default paths.

A metric that cannot be computed (its model file is absent, the signal holds no
speech, ...) raises :class:`MetricUnavailable` with the reason. The evaluator turns
that into NaN values plus the reason, so a missing metric is never reported as 0.
"""

import os
from pathlib import Path

import numpy as np
import torch

from ..audio import SAMPLE_RATE, read_audio

REPO_ROOT = Path(__file__).resolve().parents[2]


class MetricUnavailable(RuntimeError):
    """A metric cannot be computed; ``reason`` says why (and how to fix it).

    Example
    -------
    >>> err = MetricUnavailable("NISQA weights not found")
    >>> err.reason
    'NISQA weights not found'
    """

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def as_waveform(x, sample_rate=SAMPLE_RATE):
    """Turns a path, tensor or array into a 16 kHz mono ``float32`` numpy waveform ``[T]``.

    Arguments
    ---------
    x : str, Path, torch.Tensor or numpy.ndarray
        An audio file (any rate, any channels; resampled on read) or a ``[T]``
        waveform already at ``sample_rate``.
    sample_rate : int
        Rate of the returned waveform (of ``x`` too when it is a waveform).

    Returns
    -------
    numpy.ndarray
        ``[T]`` float32.

    Example
    -------
    >>> as_waveform(torch.zeros(4)).dtype
    dtype('float32')
    """
    if isinstance(x, (str, Path)):
        x = read_audio(x, sample_rate=sample_rate)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().float().numpy()
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D waveform [T], got shape {x.shape}")
    return x


def crop_pair(estimate, reference):
    """Crops two waveforms ``[T1]``, ``[T2]`` to their common length ``min(T1, T2)``.

    Enhancement systems (vocoders above all) may return a few samples more or less
    than their input; intrusive metrics compare the overlapping part.

    Example
    -------
    >>> a, b = crop_pair(np.zeros(5), np.ones(3))
    >>> a.shape, b.shape
    ((3,), (3,))
    """
    n = min(len(estimate), len(reference))
    return estimate[:n], reference[:n]


def assets_dir():
    """The real assets folder: ``$SSLSE_ASSETS`` or ``../shared/assets`` beside the repository.

    Example
    -------
    >>> assets_dir().name
    'assets'
    """
    env = os.environ.get("SSLSE_ASSETS")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "assets"


def default_nisqa_path():
    """Default NISQA v2 weights: ``$SSLSE_NISQA`` or ``<assets>/nisqa/nisqa.tar``.

    The path is returned whether or not the file exists; :class:`~.nisqa.NISQA`
    reports a missing file.

    Example
    -------
    >>> default_nisqa_path().name
    'nisqa.tar'
    """
    env = os.environ.get("SSLSE_NISQA")
    return Path(env) if env else assets_dir() / "nisqa" / "nisqa.tar"
