"""Embeddings for the probes: the log-mel reference encoder, batched extraction, segment pooling.

Every encoder used by the probes has the interface of
:class:`speechbrain_sslse.lobes.ssl_encoder.SSLEncoder`: ``encoder(wavs, wav_lens)``
returns ``[L, B, F, D]`` hidden states (zero beyond each item's frame count) and
``[B]`` frame counts, and the encoder has ``num_layers``, ``hidden_size`` and
``hop_length`` (samples per frame at 16 kHz). :class:`LogMelEncoder`, the non-SSL
reference row of every table, is such an encoder with one "layer".

Authors
 * speechbrain-sslse contributors
"""

import math

import torch
from torch import nn
from tqdm.auto import tqdm

from speechbrain_sslse.lobes.spectrum import NoisySpectrum
from speechbrain_sslse.lobes.ssl_encoder import absolute_lengths

__all__ = ["LogMelEncoder", "encode_batches", "segment_frames", "pool_segments"]


class LogMelEncoder(nn.Module):
    """Log-mel features with the interface of an SSL encoder (one hidden state).

    The features are ``log(clamp(M |X|, eps))`` of a centred, zero-padded STFT
    (Hann window ``win_length``, ``hop_length``; see
    :class:`speechbrain_sslse.lobes.spectrum.NoisySpectrum`), so a waveform of ``T``
    samples gives ``T // hop_length + 1`` frames, the grid of TERA. Zero padding
    makes a padded batch give the same valid frames as each item alone.

    Arguments
    ---------
    n_mels : int
        Number of mel bands ``D``.
    n_fft : int
        FFT size.
    win_length : int
        Window length in samples.
    hop_length : int
        Hop in samples (160 = 10 ms at 16 kHz).
    eps : float
        Floor before the logarithm.

    Attributes
    ----------
    num_layers : int
        1.
    hidden_size : int
        ``n_mels``.
    hop_length : int
        Samples per frame.
    name : str
        ``"log-mel"``.

    Example
    -------
    >>> encoder = LogMelEncoder()
    >>> hidden, frame_lens = encoder(torch.randn(2, 8000), torch.tensor([1.0, 0.5]))
    >>> tuple(hidden.shape), frame_lens.tolist(), encoder.hop_length
    ((1, 2, 51, 80), [51, 26], 160)
    >>> bool(hidden[0, 1, 26:].eq(0).all())
    True
    """

    def __init__(self, n_mels=80, n_fft=512, win_length=400, hop_length=160, eps=1e-5):
        super().__init__()
        self.spectrum = NoisySpectrum(
            "mel", n_fft=n_fft, win_length=win_length, hop_length=hop_length, n_mels=n_mels, eps=eps
        )
        self.num_layers = 1
        self.hidden_size = n_mels
        self.hop_length = hop_length
        self.name = "log-mel"

    @torch.no_grad()
    def forward(self, wavs, wav_lens=None):
        """Computes the features of a padded batch.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, T]`` waveforms at 16 kHz.
        wav_lens : torch.Tensor, optional
            ``[B]`` SpeechBrain relative lengths in (0, 1].

        Returns
        -------
        hidden : torch.Tensor
            ``[1, B, F, n_mels]``, zero beyond each item's frame count.
        frame_lens : torch.Tensor
            ``[B]`` long, ``length // hop_length + 1``.
        """
        if wavs.dim() != 2:
            raise ValueError(f"wavs must have shape [B, T], got {tuple(wavs.shape)}")
        batch, max_len = wavs.shape
        lengths = absolute_lengths(wav_lens, max_len, batch, wavs.device)
        rel = None if wav_lens is None else lengths.double() / max_len
        feats = self.spectrum(wavs, rel)
        frame_lens = lengths // self.hop_length + 1
        valid = torch.arange(feats.shape[1], device=wavs.device)[None, :] < frame_lens[:, None]
        return (feats * valid[..., None]).unsqueeze(0), frame_lens


def _batches(lengths, batch_size):
    """Lists of indices of equal length, at most ``batch_size`` each, in order of first appearance."""
    groups = {}
    for index, length in enumerate(lengths):
        groups.setdefault(int(length), []).append(index)
    out = []
    for indices in groups.values():
        out.extend(indices[i : i + batch_size] for i in range(0, len(indices), batch_size))
    return out


@torch.no_grad()
def encode_batches(encoder, wavs, batch_size=8, device="cpu", progress=False, desc="embeddings"):
    """Encodes waveforms, batching those of equal length; yields one result per waveform.

    Arguments
    ---------
    encoder : torch.nn.Module
        An encoder with the interface of ``SSLEncoder`` (see the module docstring).
    wavs : list of torch.Tensor
        ``[T_i]`` waveforms at 16 kHz.
    batch_size : int
        Most waveforms encoded together (only equal lengths are batched).
    device : str or torch.device
        Where the encoder runs.
    progress : bool
        Show a tqdm progress bar (one step per waveform).
    desc : str
        Label of the progress bar.

    Yields
    ------
    index : int
        Position of the waveform in ``wavs``.
    hidden : torch.Tensor
        ``[L, F_i, D]`` hidden states of that waveform (float32, on the CPU).

    Example
    -------
    >>> out = dict(encode_batches(LogMelEncoder(), [torch.randn(1600), torch.randn(3200), torch.randn(1600)]))
    >>> sorted(out), tuple(out[1].shape)
    ([0, 1, 2], (1, 21, 80))
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batches = _batches([w.shape[-1] for w in wavs], batch_size)
    bar = tqdm(total=len(wavs), desc=desc, disable=not progress, leave=False)
    try:
        for indices in batches:
            batch = torch.stack([wavs[i] for i in indices]).float().to(device)
            hidden, frame_lens = encoder(batch)
            hidden = hidden.float().cpu()
            for k, index in enumerate(indices):
                yield index, hidden[:, k, : int(frame_lens[k])]
            bar.update(len(indices))
    finally:
        bar.close()


def segment_frames(start, end, hop_length, num_frames):
    """Frame range ``[first, last)`` covering the samples ``[start, end)``.

    ``first = floor(start / hop)``, ``last = ceil(end / hop)``, clipped to the
    utterance's ``num_frames``; the range always holds at least one frame.

    Arguments
    ---------
    start, end : int
        Sample offsets at 16 kHz, ``end > start``.
    hop_length : int
        Samples per frame of the model.
    num_frames : int
        Frames of the utterance.

    Returns
    -------
    tuple of int

    Example
    -------
    >>> segment_frames(480, 1000, 160, 100), segment_frames(480, 1000, 320, 100)
    ((3, 7), (1, 4))
    >>> segment_frames(15900, 16400, 320, 50)  # past the last frame: the last frame
    (49, 50)
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if end <= start:
        raise ValueError(f"empty segment [{start}, {end})")
    first = min(max(int(start) // int(hop_length), 0), num_frames - 1)
    last = min(math.ceil(int(end) / int(hop_length)), num_frames)
    return first, max(last, first + 1)


def pool_segments(hidden, segments, hop_length):
    """Mean-pools hidden states over sample segments.

    Arguments
    ---------
    hidden : torch.Tensor
        ``[L, F, D]`` hidden states of one utterance.
    segments : list of (int, int)
        ``(start, end)`` sample offsets at 16 kHz.
    hop_length : int
        Samples per frame.

    Returns
    -------
    torch.Tensor
        ``[len(segments), L, D]``.

    Example
    -------
    >>> hidden = torch.arange(10.0).reshape(1, 10, 1).expand(2, 10, 3)
    >>> pool_segments(hidden, [(0, 320), (320, 800)], 160)[:, 0, 0].tolist()
    [0.5, 3.0]
    """
    num_frames = hidden.shape[1]
    pooled = []
    for start, end in segments:
        first, last = segment_frames(start, end, hop_length, num_frames)
        pooled.append(hidden[:, first:last].mean(dim=1))
    if not pooled:
        return hidden.new_zeros(0, hidden.shape[0], hidden.shape[2])
    return torch.stack(pooled)
