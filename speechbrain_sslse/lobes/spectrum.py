"""The noisy spectrum on the SSL frame grid.

Authors
 * speechbrain-sslse contributors
"""

import torch
import torchaudio
from torch import nn

__all__ = ["NoisySpectrum"]


class NoisySpectrum(nn.Module):
    """Short-time spectrum of the noisy input, one frame per SSL frame (100 Hz by default).

    The STFT is centred (frame ``i`` is centred on sample ``i * hop_length``) with
    zero padding, so a waveform of ``T`` samples gives ``T // hop_length + 1`` frames,
    like TERA's own features, and a zero-padded batch gives the same frames as each
    item alone (up to its frame count).

    Cropping rule: when this spectrum and the SSL hidden states of the same waveform
    have different frame counts, the vocoder crops both streams to the shorter one
    (frames are aligned at the start).

    Kinds (``kind``):

    - ``"log"`` (proposed): ``log(clamp(|X|, eps))``;
    - ``"magnitude"``: ``|X|``;
    - ``"mel"``: ``log(clamp(M |X|, eps))`` with an ``n_mels`` HTK mel filterbank.

    Arguments
    ---------
    kind : str
        ``"log"``, ``"magnitude"`` or ``"mel"``.
    n_fft : int
        FFT size (``n_fft // 2 + 1`` frequency bins).
    win_length : int
        Hann window length in samples (400 = 25 ms at 16 kHz).
    hop_length : int
        Frame hop in samples (160 = 10 ms, TERA's grid).
    n_mels : int
        Number of mel bands for ``kind="mel"``.
    sample_rate : int
        Sampling rate (for the mel filterbank).
    eps : float
        Floor of the magnitude before the logarithm.

    Example
    -------
    >>> spectrum = NoisySpectrum()
    >>> spectrum(torch.randn(2, 16000)).shape
    torch.Size([2, 101, 257])
    >>> NoisySpectrum("mel", n_mels=80)(torch.randn(1, 1600)).shape
    torch.Size([1, 11, 80])
    >>> spectrum.num_frames(16000), spectrum.n_freq
    (101, 257)
    """

    KINDS = ("log", "magnitude", "mel")

    def __init__(
        self, kind="log", n_fft=512, win_length=400, hop_length=160, n_mels=80, sample_rate=16000, eps=1e-5
    ):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"unknown spectrum kind {kind!r}: expected one of {self.KINDS}")
        if win_length > n_fft:
            raise ValueError(f"win_length ({win_length}) must not exceed n_fft ({n_fft})")
        self.kind = kind
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.eps = eps
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        if kind == "mel":
            fbank = torchaudio.functional.melscale_fbanks(
                n_fft // 2 + 1, 0.0, sample_rate / 2, n_mels, sample_rate, norm=None, mel_scale="htk"
            )
            self.register_buffer("mel_fbank", fbank, persistent=False)
            self.n_freq = n_mels
        else:
            self.n_freq = n_fft // 2 + 1

    def num_frames(self, num_samples):
        """Frame count of a waveform of ``num_samples`` samples."""
        return num_samples // self.hop_length + 1

    def forward(self, wavs, wav_lens=None):
        """Computes the spectrum.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, T]`` waveforms.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths; samples beyond each length are zeroed first, so
            the valid frames do not depend on what the padding contained.

        Returns
        -------
        torch.Tensor
            ``[B, T // hop_length + 1, n_freq]``.
        """
        if wavs.dim() != 2:
            raise ValueError(f"wavs must have shape [B, T], got {tuple(wavs.shape)}")
        if wav_lens is not None:
            lengths = torch.round(wav_lens.to(wavs.device).double() * wavs.shape[1]).long()
            valid = torch.arange(wavs.shape[1], device=wavs.device)[None, :] < lengths[:, None]
            wavs = wavs * valid
        stft = torch.stft(
            wavs,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window.to(wavs.dtype),
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        magnitude = stft.abs().transpose(1, 2)  # [B, F, n_fft // 2 + 1]
        if self.kind == "magnitude":
            return magnitude
        if self.kind == "mel":
            magnitude = magnitude @ self.mel_fbank.to(magnitude.dtype)
        return torch.log(torch.clamp(magnitude, min=self.eps))
