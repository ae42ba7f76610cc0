"""Intrusive metrics (estimate against a clean reference): STOI and wide-band PESQ.

Both take 16 kHz waveforms; the two signals are cropped to their common length.
"""

import warnings

import numpy as np
from pesq import PesqError
from pesq import pesq as _pesq
from pystoi import stoi as _stoi

from ..audio import SAMPLE_RATE
from .base import MetricUnavailable, as_waveform, crop_pair


def stoi(estimate, reference, sample_rate=SAMPLE_RATE, extended=False):
    """Short-Time Objective Intelligibility (Taal et al., 2011) through ``pystoi``.

    Arguments
    ---------
    estimate : torch.Tensor, numpy.ndarray or path
        ``[T]`` enhanced (or distorted) speech.
    reference : torch.Tensor, numpy.ndarray or path
        ``[T]`` clean reference speech.
    sample_rate : int
        Rate of both waveforms (files are read at this rate).
    extended : bool
        Extended STOI (Jensen & Taal, 2016) instead of STOI.

    Returns
    -------
    float
        STOI in [0, 1] (1 for identical signals).

    Raises
    ------
    MetricUnavailable
        When the reference is all zeros, or too few frames remain after pystoi's
        silent-frame removal (pystoi would return 1e-5, which is not a score).

    Example
    -------
    >>> import torch
    >>> x = torch.randn(16000, generator=torch.Generator().manual_seed(0))
    >>> round(stoi(x, x), 4)
    1.0
    """
    est, ref = crop_pair(as_waveform(estimate, sample_rate), as_waveform(reference, sample_rate))
    if not np.any(ref):
        raise MetricUnavailable("STOI: the reference is silent (all zeros)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(_stoi(ref.astype(np.float64), est.astype(np.float64), sample_rate, extended=extended))
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        raise MetricUnavailable(
            "STOI: too few non-silent frames in the reference (shorter than ~0.4 s of speech)"
        )
    return value


def pesq_wb(estimate, reference, sample_rate=SAMPLE_RATE):
    """Wide-band PESQ (ITU-T P.862.2) through the ``pesq`` package.

    Arguments
    ---------
    estimate : torch.Tensor, numpy.ndarray or path
        ``[T]`` enhanced (or distorted) speech at 16 kHz.
    reference : torch.Tensor, numpy.ndarray or path
        ``[T]`` clean reference at 16 kHz.
    sample_rate : int
        Must be 16000 (wide band).

    Returns
    -------
    float
        MOS-LQO in [1.04, 4.64].

    Raises
    ------
    MetricUnavailable
        When PESQ finds no utterance in the reference, the signal is too short,
        or the ITU code reports another error.

    Example
    -------
    >>> import torch
    >>> x = torch.randn(32000, generator=torch.Generator().manual_seed(0)) * 0.1
    >>> pesq_wb(x, x) > 4.5
    True
    """
    if sample_rate != 16000:
        raise ValueError(f"wide-band PESQ needs 16 kHz audio, got {sample_rate} Hz")
    est, ref = crop_pair(as_waveform(estimate, sample_rate), as_waveform(reference, sample_rate))
    if not np.any(ref):
        raise MetricUnavailable("PESQ: NoUtterancesError (the reference is silent)")
    try:
        return float(_pesq(sample_rate, ref, est, "wb", on_error=PesqError.RAISE_EXCEPTION))
    except PesqError as err:
        raise MetricUnavailable(f"PESQ: {type(err).__name__} ({err})") from err
