"""Chunked processing of long waveforms with cross-faded overlap-add.

A length-preserving waveform model (``[B, T] -> [B, T]``) is run on overlapping
chunks, a few chunks per batch, so memory stays bounded whatever the input length.
Consecutive chunks overlap by ``overlap`` samples and are joined with a linear
cross-fade over the middle of the overlap; the ``context`` samples at each side of
the overlap are discarded, so that every output sample away from a seam was computed
with at least ``context`` samples of input around it.
"""

import math

import torch


def plan_chunks(length, chunk, overlap):
    """Start offsets of chunks of ``chunk`` samples overlapping by ``overlap``.

    Arguments
    ---------
    length : int
        Signal length in samples.
    chunk : int
        Chunk length in samples.
    overlap : int
        Overlap between consecutive chunks in samples (``< chunk``).

    Returns
    -------
    list of int
        Start offsets, ``chunk - overlap`` apart; the last chunk reaches or passes
        ``length`` (the signal is zero-padded up to its end).

    Example
    -------
    >>> plan_chunks(100, 40, 10)
    [0, 30, 60]
    >>> plan_chunks(101, 40, 10)
    [0, 30, 60, 90]
    >>> plan_chunks(30, 40, 10)
    [0]
    """
    if not 0 <= overlap < chunk:
        raise ValueError(f"overlap ({overlap}) must be in [0, chunk={chunk})")
    if length <= chunk:
        return [0]
    step = chunk - overlap
    n = math.ceil((length - chunk) / step) + 1
    return [i * step for i in range(n)]


def _crossfade(overlap, context, device):
    """Fade-in weights over an overlap: 0 for ``context`` samples, a linear ramp, 1 at the end."""
    ramp = max(overlap - 2 * context, 1)
    w = torch.zeros(overlap, device=device)
    w[context : context + ramp] = torch.linspace(0.0, 1.0, ramp + 2, device=device)[1:-1]
    w[context + ramp :] = 1.0
    return w


def overlap_add(wav, model, chunk, overlap, context=None, batch_size=4):
    """Runs ``model`` over ``wav`` in overlapping chunks and cross-fades the results.

    Arguments
    ---------
    wav : torch.Tensor
        ``[T]`` waveform.
    model : callable
        ``model(chunks [N, chunk], lens [N]) -> [N, chunk]`` (relative lengths, all 1.0).
    chunk : int
        Chunk length in samples.
    overlap : int
        Overlap in samples between consecutive chunks.
    context : int or None
        Samples discarded at each side of an overlap before the cross-fade
        (default: a quarter of the overlap).
    batch_size : int
        Chunks per model call (bounds memory).

    Returns
    -------
    torch.Tensor
        ``[T]`` output.

    Example
    -------
    >>> identity = lambda x, lens: x
    >>> x = torch.randn(1000)
    >>> y = overlap_add(x, identity, chunk=300, overlap=100)
    >>> torch.allclose(x, y, atol=1e-6)
    True
    """
    length = wav.shape[-1]
    if length <= chunk:
        return model(wav.unsqueeze(0), torch.ones(1, device=wav.device))[0]
    context = overlap // 4 if context is None else min(context, overlap // 2)
    starts = plan_chunks(length, chunk, overlap)
    total = starts[-1] + chunk
    padded = torch.nn.functional.pad(wav, (0, total - length))
    fade_in = _crossfade(overlap, context, wav.device).to(wav.dtype)
    out = torch.zeros(total, device=wav.device, dtype=wav.dtype)
    for b in range(0, len(starts), batch_size):
        group = starts[b : b + batch_size]
        chunks = torch.stack([padded[s : s + chunk] for s in group])
        enhanced = model(chunks, torch.ones(len(group), device=wav.device))
        for i, s in enumerate(group):
            k = b + i
            y = enhanced[i]
            if overlap and k > 0:
                y = torch.cat([y[:overlap] * fade_in, y[overlap:]])
            if overlap and k < len(starts) - 1:
                y = torch.cat([y[: chunk - overlap], y[chunk - overlap :] * (1.0 - fade_in)])
            out[s : s + chunk] += y
    return out[:length]
