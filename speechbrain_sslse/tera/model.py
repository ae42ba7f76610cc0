"""TERA pretraining modules built from s3prl's own classes.

- :class:`TeraFeatures`: the on-the-fly features of a TERA checkpoint (s3prl's
  ``OnlinePreprocessor`` from ``get_preprocessor``), after s3prl's per-utterance level
  normalisation (``target_level``, -25 dB), so that pretraining sees exactly what
  ``tera_local`` computes at inference.
- :class:`MaskedAcousticModel`: s3prl's ``TransformerModel`` with its
  ``TransformerSpecPredictionHead``, initialised as s3prl's
  ``TransformerForMaskedAcousticModel`` (``pretrain/mockingjay/pretrain_expert.py``) does.

Authors
 * speechbrain-sslse contributors
"""

import copy

import torch
from torch import nn

from .checkpoint import feature_dims

__all__ = ["TeraFeatures", "MaskedAcousticModel", "normalize_level"]


def normalize_level(wav, target_level=-25):
    """Scales a waveform to ``target_level`` dB RMS (s3prl's ``_normalize_wav_decibel``).

    Arguments
    ---------
    wav : torch.Tensor
        ``[T]`` waveform (one utterance).
    target_level : float or str
        Target level in dB; ``"None"`` leaves the waveform unchanged (as s3prl does).

    Returns
    -------
    torch.Tensor
        ``[T]``.

    Example
    -------
    >>> wav = normalize_level(0.5 * torch.randn(16000), -25)
    >>> round(20 * torch.log10(wav.pow(2).mean().sqrt()).item(), 3)
    -25.0
    """
    if target_level == "None" or target_level is None:
        return wav
    rms = wav.pow(2).mean().pow(0.5)
    return wav * ((10 ** (float(target_level) / 20)) / (rms + 1e-10))


class TeraFeatures(nn.Module):
    """TERA's input and target frames of a waveform batch (s3prl's online preprocessor).

    Arguments
    ---------
    audio_config : dict
        s3prl's ``audio`` section (``win_ms``, ``hop_ms``, ``n_freq``, ``n_mels``, ``input``,
        ``target``, ...). The level normalisation is applied by the data pipeline
        (:func:`normalize_level`), on whole utterances, as s3prl does.

    Attributes
    ----------
    input_dim, target_dim : int
        Feature sizes.
    hop_length : int
        Samples per frame.

    Example
    -------
    >>> from speechbrain_sslse.tera import tera_base_config
    >>> features = TeraFeatures(tera_base_config()["audio"])
    >>> inputs, targets, frame_lens = features(torch.randn(2, 16000), torch.tensor([16000, 8000]))
    >>> tuple(inputs.shape), tuple(targets.shape), frame_lens.tolist()
    ((2, 101, 80), (2, 101, 80), [101, 50])
    >>> float(inputs[1, 50:].abs().sum())  # padding frames are zero
    0.0
    """

    def __init__(self, audio_config):
        super().__init__()
        from s3prl.upstream.baseline.preprocessor import get_preprocessor

        if "kaldi" in audio_config:
            raise ValueError("Kaldi-feature TERA is not supported: use on-the-fly 'input'/'target' features")
        self.audio_config = copy.deepcopy(dict(audio_config))
        self.preprocessor, self.input_dim, self.target_dim = get_preprocessor(
            copy.deepcopy(self.audio_config)
        )
        self.hop_length = round(self.audio_config.get("hop_ms", 10) * 16000 / 1000)

    def forward(self, wavs, lengths=None):
        """Computes the frames.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, T]`` waveforms (16 kHz), padded with zeros.
        lengths : torch.Tensor, optional
            ``[B]`` sample counts (default: all ``T``).

        Returns
        -------
        inputs : torch.Tensor
            ``[B, F, D_in]``, zero beyond each item's frames.
        targets : torch.Tensor
            ``[B, F, D_out]``.
        frame_lens : torch.Tensor
            ``[B]`` long frame counts.
        """
        if wavs.dim() != 2:
            raise ValueError(f"wavs must have shape [B, T], got {tuple(wavs.shape)}")
        if lengths is None:
            lengths = torch.full((wavs.shape[0],), wavs.shape[1], dtype=torch.long)
        lengths = [int(n) for n in torch.as_tensor(lengths).tolist()]
        inputs, targets = self.preprocessor(wavs.unsqueeze(1), wavs_len=lengths)
        # s3prl's own rule for the frame count of each item (used for its CMVN too).
        rate = wavs.shape[-1] / inputs.shape[1]
        frame_lens = torch.tensor([round(n / rate) for n in lengths], dtype=torch.long)
        frames = torch.arange(inputs.shape[1])
        padding = (frames[None, :] >= frame_lens[:, None]).to(inputs.device)
        inputs = inputs.masked_fill(padding[..., None], 0.0)
        targets = targets.masked_fill(padding[..., None], 0.0)
        return inputs, targets, frame_lens.to(wavs.device)


class MaskedAcousticModel(nn.Module):
    """s3prl's TERA transformer with its spectrogram prediction head.

    Arguments
    ---------
    transformer_config : dict
        s3prl's ``transformer`` section (``hidden_size``, ``num_hidden_layers``, ...).
    audio_config : dict
        s3prl's ``audio`` section (gives the input and target sizes).
    loss : str
        ``"L1"`` (TERA) or ``"MSE"``; kept for reference by the recipe.

    Attributes
    ----------
    transformer : s3prl.upstream.mockingjay.model.TransformerModel
        The encoder, exported as ``Transformer`` in s3prl checkpoints.
    spec_head : s3prl.upstream.mockingjay.model.TransformerSpecPredictionHead
        The prediction head, exported as ``SpecHead``.

    Example
    -------
    >>> from speechbrain_sslse.tera import tera_tiny_config
    >>> cfg = tera_tiny_config(hidden_size=16, num_layers=2)
    >>> model = MaskedAcousticModel(cfg["transformer"], cfg["audio"])
    >>> frames, pos_enc = torch.randn(2, 30, 80), torch.randn(30, 16)
    >>> model(frames, pos_enc, torch.ones(2, 30)).shape
    torch.Size([2, 30, 80])
    >>> [tuple(h.shape) for h in model.hidden_states(frames, pos_enc)]
    [(2, 30, 16), (2, 30, 16), (2, 30, 16)]
    """

    def __init__(self, transformer_config, audio_config, loss="L1"):
        super().__init__()
        from s3prl.upstream.mockingjay.model import (
            TransformerConfig,
            TransformerModel,
            TransformerSpecPredictionHead,
        )

        self.config = TransformerConfig(dict(transformer_config))
        if self.config.hidden_size % self.config.num_attention_heads:
            raise ValueError(
                f"TERA hidden_size {self.config.hidden_size} is not a multiple of "
                f"num_attention_heads {self.config.num_attention_heads}"
            )
        self.input_dim, self.output_dim = feature_dims(audio_config)
        self.loss = loss
        self.transformer = TransformerModel(self.config, self.input_dim)
        self.spec_head = TransformerSpecPredictionHead(self.config, self.output_dim)
        # As TransformerForMaskedAcousticModel: s3prl's initialisation on every submodule.
        self.apply(self.transformer.init_Transformer_weights)

    @staticmethod
    def _attn_mask(frames, attn_mask):
        # s3prl's default (ones like the frames) has the wrong shape: one value per frame.
        return frames.new_ones(frames.shape[:2]) if attn_mask is None else attn_mask

    def _pos_enc(self, frames, pos_enc):
        if pos_enc.dim() == 2:
            pos_enc = pos_enc.to(frames.device).expand(frames.shape[0], *pos_enc.shape)
        return pos_enc

    def forward(self, frames, pos_enc, attn_mask=None):
        """Predicts the target frames.

        Arguments
        ---------
        frames : torch.Tensor
            ``[B, F, D_in]`` (altered) input frames.
        pos_enc : torch.Tensor
            ``[F, H]`` or ``[B, F, H]`` position encodings.
        attn_mask : torch.Tensor, optional
            ``[B, F]``, 1.0 on real frames and 0.0 on padding.

        Returns
        -------
        torch.Tensor
            ``[B, F, D_out]`` predicted frames.
        """
        hidden = self.transformer(
            frames,
            self._pos_enc(frames, pos_enc),
            self._attn_mask(frames, attn_mask),
            output_all_encoded_layers=False,
        )
        predicted, _ = self.spec_head(hidden)
        return predicted

    def hidden_states(self, frames, pos_enc, attn_mask=None):
        """All hidden states (input representation + each layer), as ``tera_local`` returns them.

        Returns
        -------
        list of torch.Tensor
            ``num_hidden_layers + 1`` tensors ``[B, F, H]``.
        """
        return list(
            self.transformer(
                frames,
                self._pos_enc(frames, pos_enc),
                self._attn_mask(frames, attn_mask),
                output_all_encoded_layers=True,
            )
        )
