"""Waveforms and lengths given by callers, checked and brought to the shape the models take.

:func:`as_waveforms` and :func:`as_lengths` check what the enhancer's callers pass
(tensors, numpy arrays, lists; int16 / int32 PCM scaled to [-1, 1]); :func:`fit_length`
pads or crops waveforms to a length.
"""

import numpy as np
import torch

__all__ = ["fit_length", "as_waveforms", "as_lengths"]


def fit_length(wav, num_samples):
    """Waveforms zero-padded or cropped at the end to ``num_samples`` (last dimension).

    (Noise that should repeat instead is fitted by
    :func:`speechbrain_sslse.data.mixing.loop_to_length`.)

    Arguments
    ---------
    wav : torch.Tensor
        ``[..., T]`` waveforms (``[T]``, ``[B, T]`` ...).
    num_samples : int
        The wanted length.

    Returns
    -------
    torch.Tensor
        ``[..., num_samples]``.

    Example
    -------
    >>> fit_length(torch.ones(2, 5), 3).shape, fit_length(torch.ones(2, 5), 7)[0, -1].item()
    (torch.Size([2, 3]), 0.0)
    >>> fit_length(torch.ones(2), 4).tolist()
    [1.0, 1.0, 0.0, 0.0]
    """
    if wav.shape[-1] < num_samples:
        wav = torch.nn.functional.pad(wav, (0, num_samples - wav.shape[-1]))
    return wav[..., :num_samples]


def as_waveforms(x, name="noisy", ndim=None):
    """Waveforms given as a tensor or numpy array, as float32 in [-1, 1], checked.

    Floats of any precision are cast; int16 and int32 PCM are scaled by 2**15 and
    2**31; booleans, complex numbers and other integer types are refused, as are
    NaN and Inf samples (like files holding them).

    Arguments
    ---------
    x : torch.Tensor, numpy.ndarray or list
        Samples.
    name : str
        The argument's name, for messages.
    ndim : int, optional
        The number of dimensions wanted (``1``: ``[T]``, ``2``: ``[B, T]``).

    Returns
    -------
    torch.Tensor
        float32, same shape.

    Example
    -------
    >>> as_waveforms(np.array([[16384, -32768]], dtype=np.int16), ndim=2)
    tensor([[ 0.5000, -1.0000]])
    >>> as_waveforms(torch.tensor([0.0, float("nan")]))
    Traceback (most recent call last):
    ...
    ValueError: noisy holds NaN or Inf samples; clean or drop them first
    """
    if isinstance(x, (np.ndarray, list, tuple)):
        x = torch.as_tensor(np.asarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or a numpy array, got {type(x).__name__}")
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"{name} is {x.dtype}: pass float samples in [-1, 1] (or int16 / int32 PCM)")
    if x.dtype == torch.int16:
        x = x.float() / 32768.0
    elif x.dtype == torch.int32:
        x = (x.double() / 2147483648.0).float()
    elif not x.is_floating_point():
        raise TypeError(f"{name} is {x.dtype}: pass float samples in [-1, 1] (or int16 / int32 PCM)")
    x = x.float()
    if ndim is not None and x.dim() != ndim:
        shape = "[T] (one waveform)" if ndim == 1 else "[B, T] (a batch; one waveform: wav[None])"
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} holds no samples (shape {tuple(x.shape)})")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} holds NaN or Inf samples; clean or drop them first")
    return x


def as_lengths(lengths, batch):
    """SpeechBrain relative lengths given as a tensor, numpy array or list, checked: ``[batch]`` in (0, 1].

    Example
    -------
    >>> as_lengths([1.0, 0.5], 2)
    tensor([1.0000, 0.5000], dtype=torch.float64)
    >>> as_lengths([1.0, 0.0], 2)
    Traceback (most recent call last):
    ...
    ValueError: lengths must be SpeechBrain relative lengths in (0, 1], got [1.0, 0.0]
    """
    if isinstance(lengths, (np.ndarray, list, tuple, int, float)):
        lengths = torch.as_tensor(np.asarray(lengths, dtype=np.float64))
    if not isinstance(lengths, torch.Tensor):
        raise TypeError(f"lengths must be a tensor, numpy array or list, got {type(lengths).__name__}")
    if lengths.dtype == torch.bool or lengths.is_complex():
        raise TypeError(f"lengths must be real numbers in (0, 1], got {lengths.dtype}")
    lengths = lengths.double().reshape(-1) if lengths.dim() == 0 else lengths.double()
    if tuple(lengths.shape) != (batch,):
        raise ValueError(f"lengths must have shape [{batch}] (one per item), got {tuple(lengths.shape)}")
    if not bool(((lengths > 0) & (lengths <= 1 + 1e-6)).all()):  # (NaN fails both)
        raise ValueError(f"lengths must be SpeechBrain relative lengths in (0, 1], got {lengths.tolist()}")
    return lengths
