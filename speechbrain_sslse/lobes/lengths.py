"""Lengths of padded batches: SpeechBrain relative lengths to samples, and equal-length groups.

Every model of the project runs the items of a padded batch in groups of equal length
(:func:`length_groups`), so that no item ever sees another item's padding.

Authors
 * speechbrain-sslse contributors
"""

import torch

__all__ = ["absolute_lengths", "length_groups"]


def absolute_lengths(wav_lens, max_len, batch_size=None, device=None):
    """SpeechBrain relative lengths in (0, 1] to sample counts (``round(rel * max_len)``).

    Arguments
    ---------
    wav_lens : torch.Tensor or None
        ``[B]`` relative lengths; ``None`` means every item fills ``max_len``.
    max_len : int
        Padded length ``T``.
    batch_size : int, optional
        ``B``, needed when ``wav_lens`` is None.
    device : torch.device, optional
        Device of the result when ``wav_lens`` is None.

    Returns
    -------
    torch.Tensor
        ``[B]`` long, each in ``[1, max_len]``.

    Example
    -------
    >>> absolute_lengths(torch.tensor([1.0, 0.5, 0.333]), 16000).tolist()
    [16000, 8000, 5328]
    """
    if wav_lens is None:
        return torch.full((batch_size,), max_len, dtype=torch.long, device=device)
    wav_lens = torch.as_tensor(wav_lens)
    if wav_lens.dim() != 1 or (batch_size is not None and wav_lens.numel() != batch_size):
        raise ValueError(f"wav_lens must have shape [B] = [{batch_size}], got {tuple(wav_lens.shape)}")
    if bool(((wav_lens <= 0) | (wav_lens > 1 + 1e-6)).any()):
        raise ValueError(f"wav_lens must be SpeechBrain relative lengths in (0, 1], got {wav_lens.tolist()}")
    return torch.round(wav_lens.double() * max_len).long().clamp(1, max_len)


def length_groups(lengths):
    """Groups batch indices by equal length, in order of first appearance.

    Items of equal length run together through a model; items of different
    lengths run separately, so that no model ever sees another item's padding.

    Arguments
    ---------
    lengths : torch.Tensor
        ``[B]`` integer lengths.

    Returns
    -------
    list of (int, list of int)
        ``(length, indices)`` pairs.

    Example
    -------
    >>> length_groups(torch.tensor([5, 3, 5, 2]))
    [(5, [0, 2]), (3, [1]), (2, [3])]
    """
    groups = {}
    for index, length in enumerate(lengths.tolist()):
        groups.setdefault(int(length), []).append(index)
    return list(groups.items())
