"""The spectrum-aware denoising vocoder: SSL encoder + noisy spectrum + fusion + HiFi-GAN.

Authors
 * speechbrain-sslse contributors
"""

import copy
import math

import torch
import torch.nn.functional as F
from speechbrain.lobes.models.HifiGAN import HifiganGenerator
from torch import nn

from ..audio import fit_length
from .fusion import build_fusion
from .spectrum import NoisySpectrum
from .ssl_encoder import LayerCombination, absolute_lengths, length_groups

__all__ = ["SpectrumAwareVocoder", "GENERATOR_CONFIGS", "enhance_by_length"]

# HiFi-GAN generator sizes (Kong et al., 2020) with upsampling factors whose product
# is 160, the 10 ms hop of TERA and of the noisy spectrum. HiFi-GAN's kernel is twice
# the factor; for the odd factor 5, kernel 10 (SpeechBrain's padding (k - u) // 2 = 2)
# gives 5 L + 1 samples, off the frame grid by half a sample, and kernel 11 (padding 3)
# gives exactly 5 L, centred on each frame. So a generator turns F frames into exactly
# 160 F samples. Checkpoints trained with kernel 10 load with
# ``upsample_kernel_sizes: [10, 8, 8, 4]`` in the generator's settings (packaged model
# folders record their kernels, so they load as they are).
UPSAMPLE_KERNELS_BEFORE = [10, 8, 8, 4]
_UPSAMPLING_160 = {"upsample_factors": [5, 4, 4, 2], "upsample_kernel_sizes": [11, 8, 8, 4]}
GENERATOR_CONFIGS = {
    "v1": {
        "resblock_type": "1",
        "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "upsample_initial_channel": 512,
        **_UPSAMPLING_160,
    },
    "v2": {
        "resblock_type": "1",
        "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "upsample_initial_channel": 128,
        **_UPSAMPLING_160,
    },
    "v3": {
        "resblock_type": "2",
        "resblock_kernel_sizes": [3, 5, 7],
        "resblock_dilation_sizes": [[1, 2], [2, 6], [3, 12]],
        "upsample_initial_channel": 256,
        **_UPSAMPLING_160,
    },
}


def _generator_config(generator):
    """A full HifiganGenerator configuration from a preset name or a (partial) dict."""
    if generator is None:
        generator = "v1"
    if isinstance(generator, str):
        if generator not in GENERATOR_CONFIGS:
            raise ValueError(
                f"unknown generator preset {generator!r}: expected one of {list(GENERATOR_CONFIGS)}"
            )
        return copy.deepcopy(GENERATOR_CONFIGS[generator])
    config = {key: value for key, value in dict(generator).items() if value is not None}
    preset = config.pop("preset", "v1")
    return {**_generator_config(preset), **config}


def _class_path(module):
    """``package.Class`` of a module, under the public name its package exports when it has one."""
    cls = type(module)
    package = cls.__module__.rsplit(".", 1)[0]
    try:
        import importlib

        if getattr(importlib.import_module(package), cls.__name__, None) is cls:
            return f"{package}.{cls.__name__}"
    except ImportError:
        pass
    return f"{cls.__module__}.{cls.__name__}"


def enhance_by_length(noisy, wav_lens, enhance, per_item=False):
    """Runs ``enhance`` on each group of equal-length items of a padded batch.

    Items of equal length go through ``enhance`` together, without padding (so a
    padded batch gives what each item gives alone); the output is zero beyond each
    item's length. A batch without padding is one call on the whole batch.

    Arguments
    ---------
    noisy : torch.Tensor
        ``[B, T]`` padded waveforms.
    wav_lens : torch.Tensor or None
        ``[B]`` SpeechBrain relative lengths in (0, 1] (None: all 1).
    enhance : callable
        ``enhance(index, length) -> [b, length]`` for the items ``index`` (a ``LongTensor``,
        or ``slice(None)`` for the whole batch), cut to their common ``length``.
    per_item : bool
        One call per item instead of one per length.

    Returns
    -------
    torch.Tensor
        ``[B, T]``: ``enhance``'s output for a batch without padding, else a tensor of
        ``noisy``'s dtype.

    Example
    -------
    >>> noisy = torch.ones(2, 4)
    >>> enhance_by_length(noisy, torch.tensor([1.0, 0.5]), lambda index, length: 2 * noisy[index, :length])
    tensor([[2., 2., 2., 2.],
            [2., 2., 0., 0.]])
    """
    if noisy.dim() != 2:
        raise ValueError(f"noisy must have shape [B, T], got {tuple(noisy.shape)}")
    batch, max_len = noisy.shape
    lengths = absolute_lengths(wav_lens, max_len, batch, noisy.device)
    groups = length_groups(lengths)
    if per_item:
        groups = [(length, [i]) for length, indices in groups for i in indices]
    if len(groups) == 1 and groups[0][0] == max_len:
        return enhance(slice(None), max_len)
    out = noisy.new_zeros(batch, max_len)
    for length, indices in groups:
        index = torch.tensor(indices, device=noisy.device)
        out[index, :length] = enhance(index, length).to(out.dtype)
    return out


class SpectrumAwareVocoder(nn.Module):
    """Spectrum-aware denoising vocoder (Song, Kim, Kang, Madhu, EUSIPCO 2024).

    ``noisy [B, T] -> enhanced [B, T]`` at 16 kHz:

    1. a frozen SSL encoder gives hidden states ``[L, B, F, D]`` (of the noisy input,
       or of a clean waveform in the ``clean_embedding`` oracle);
    2. :class:`LayerCombination` combines them into ``[B, F, D]``; an encoder with a
       coarser hop (e.g. 320 samples for HuBERT) is repeated onto the spectrum grid;
    3. :class:`NoisySpectrum` computes the noisy spectrum ``[B, F', n_freq]`` at the
       generator's hop (160 samples); both streams are cropped to the shorter frame
       count (aligned at the start);
    4. a fusion (:func:`build_fusion`) gives ``[B, F, d_model]``;
    5. SpeechBrain's :class:`HifiganGenerator` synthesises the waveform, which is
       cropped (or zero-padded) to exactly ``T`` samples.

    Waveforms of equal length are processed together and those of different lengths
    separately, so an item of a padded batch gets exactly the output it gets alone.

    Arguments
    ---------
    encoder : speechbrain_sslse.lobes.SSLEncoder
        The (frozen) SSL encoder; anything with ``num_layers``, ``hidden_size``,
        ``hop_length`` and ``forward(wavs, wav_lens) -> (hidden [L, B, F, D], frame_lens)``.
    fusion : str
        ``cross_attention`` (proposed), ``cross_attention_by_spectrum``, ``additive``,
        ``film`` or ``ssl_only`` (baseline denoising vocoder).
    spectrum : str
        ``log`` (proposed), ``magnitude`` or ``mel`` (see :class:`NoisySpectrum`).
    d_model : int
        Size of the fused features (the generator's input channels).
    fusion_options : dict, optional
        Extra arguments of the fusion (e.g. ``num_heads``, ``ffn_dim``, ``window``).
    spectrum_options : dict, optional
        Extra arguments of :class:`NoisySpectrum` (``n_fft``, ``win_length``, ...).
    layer_combination : dict, optional
        Arguments of :class:`LayerCombination` (``mode``, ``layer_norm``, ``last_only``).
    generator : str, dict or torch.nn.Module, optional
        A preset of :data:`GENERATOR_CONFIGS` (``v1`` default, ``v2``, ``v3``), or a dict of
        :class:`HifiganGenerator` arguments (``preset`` names the base it overrides; None
        values keep the preset's); or a generator family built in the yaml (``!new:``), e.g.
        :class:`~speechbrain_sslse.lobes.SpectralMaskHead`: a module with ``hop_length``,
        ``config`` (its constructor arguments), ``needs_noisy = True`` and
        ``forward(features [b, F, d_model], noisy [b, t]) -> [b, t]``.
    clean_embedding : bool
        Oracle mode: the SSL stream is computed from the clean waveform passed as
        ``clean`` to :meth:`forward` (the spectrum stays the noisy one).

    Example
    -------
    >>> import tempfile, os
    >>> from speechbrain_sslse.testing import write_tiny_tera
    >>> from speechbrain_sslse.lobes import SSLEncoder
    >>> encoder = SSLEncoder("tera", ckpt=write_tiny_tera(os.path.join(tempfile.mkdtemp(), "t.ckpt")))
    >>> vocoder = SpectrumAwareVocoder(
    ...     encoder, fusion="cross_attention", d_model=32, fusion_options={"num_heads": 2, "ffn_dim": 64},
    ...     generator={"upsample_initial_channel": 16, "resblock_kernel_sizes": [3],
    ...                "resblock_dilation_sizes": [[1, 3, 5]]},
    ... )
    >>> noisy = torch.randn(2, 8000)
    >>> vocoder(noisy, torch.tensor([1.0, 0.6])).shape
    torch.Size([2, 8000])
    >>> vocoder.layer_weights.shape
    torch.Size([3])
    >>> vocoder.config["generator"]["upsample_initial_channel"]
    16
    """

    def __init__(
        self,
        encoder,
        fusion="cross_attention",
        spectrum="log",
        d_model=256,
        fusion_options=None,
        spectrum_options=None,
        layer_combination=None,
        generator=None,
        clean_embedding=False,
    ):
        super().__init__()
        self.encoder = encoder
        self.fusion_name = fusion
        # Everything but the encoder, as needed to build the same vocoder again.
        family = generator if isinstance(generator, nn.Module) else None
        if family is not None:
            generator_config = {"family": _class_path(family), **family.config}
            self.hop_length = family.hop_length
        else:
            generator_config = _generator_config(generator)
            self.hop_length = math.prod(generator_config["upsample_factors"])
        self.config = {
            "fusion": fusion,
            "spectrum": spectrum,
            "d_model": d_model,
            "fusion_options": dict(fusion_options or {}),
            "spectrum_options": dict(spectrum_options or {}),
            "layer_combination": dict(layer_combination or {}),
            "generator": copy.deepcopy(generator_config),
            "clean_embedding": clean_embedding,
        }
        self.clean_embedding = clean_embedding
        self.combination = LayerCombination(encoder.num_layers, **(layer_combination or {}))

        if encoder.hop_length % self.hop_length:
            raise ValueError(
                f"the SSL encoder's hop ({encoder.hop_length} samples) must be a multiple of the "
                f"generator's upsampling product ({self.hop_length})"
            )
        self.ssl_repeat = encoder.hop_length // self.hop_length

        spectrum_options = dict(spectrum_options or {})
        spectrum_options.setdefault("hop_length", self.hop_length)
        if spectrum_options["hop_length"] != self.hop_length:
            raise ValueError(
                f"spectrum hop_length {spectrum_options['hop_length']} differs from the generator's "
                f"upsampling product {self.hop_length}"
            )
        spectrum_module = NoisySpectrum(spectrum, **spectrum_options)
        self.fusion = build_fusion(
            fusion, encoder.hidden_size, spectrum_module.n_freq, d_model, **(fusion_options or {})
        )
        # The baseline denoising vocoder never computes the spectrum.
        self.spectrum = spectrum_module if self.fusion.uses_spectrum else None
        if family is not None:
            if family.config.get("in_channels", d_model) != d_model:
                raise ValueError(
                    f"the generator takes {family.config['in_channels']} input channels "
                    f"but d_model is {d_model}"
                )
            self.generator = family
        else:
            self.generator = HifiganGenerator(in_channels=d_model, out_channels=1, **generator_config)
            self._register_load_state_dict_pre_hook(self._check_upsampling_kernels, with_module=False)
        self.needs_noisy = bool(getattr(self.generator, "needs_noisy", False))

    def _check_upsampling_kernels(self, state_dict, prefix, *args):
        """Names the setting to use when a checkpoint's upsampling kernels differ from this generator's."""
        own = self.config["generator"]["upsample_kernel_sizes"]
        saved = []
        for i in range(len(own)):
            layer = f"{prefix}generator.ups.{i}."
            shapes = [v.shape for k, v in state_dict.items() if k.startswith(layer) and v.dim() == 3]
            if not shapes:
                return
            saved.append(int(max(shape[-1] for shape in shapes)))
        if saved != list(own):
            hint = " (the presets' kernels before they were made exact for factor 5)"
            raise ValueError(
                f"this checkpoint's HiFi-GAN upsampling kernels are {saved}"
                f"{hint if saved == UPSAMPLE_KERNELS_BEFORE else ''}, this vocoder's {list(own)}: build the "
                f"vocoder with generator={{..., 'upsample_kernel_sizes': {saved}}} (in a recipe yaml, "
                f"upsample_kernel_sizes: {saved} under the vocoder's generator settings)"
            )

    @property
    def layer_weights(self):
        """Effective weights of the SSL hidden states, ``[L]`` (the layer-weight table)."""
        return self.combination.weights

    @property
    def family(self):
        """``"hifigan"`` or the class path of the generator family."""
        return self.config["generator"].get("family", "hifigan")

    def remove_weight_norm(self):
        """Folds the generator's weight normalisation into its weights (for inference)."""
        if hasattr(self.generator, "remove_weight_norm"):
            self.generator.remove_weight_norm()

    def features(self, noisy, clean=None):
        """Fused features of equal-length waveforms.

        Arguments
        ---------
        noisy : torch.Tensor
            ``[b, t]`` noisy waveforms (no padding).
        clean : torch.Tensor, optional
            ``[b, t]`` clean waveforms (``clean_embedding`` mode only).

        Returns
        -------
        torch.Tensor
            ``[b, t // hop + 1, d_model]`` generator input (the frame grid of the output).
        """
        source = noisy
        if self.clean_embedding:
            if clean is None or clean.shape != noisy.shape:
                raise ValueError("clean_embedding mode needs the clean waveform, shaped like the noisy one")
            source = clean
        spec = self.spectrum(noisy) if self.spectrum is not None else None
        if getattr(self.fusion, "uses_ssl", True):
            hidden, _ = self.encoder(source)
            ssl = self.combination(hidden)
            if self.ssl_repeat > 1:
                ssl = ssl.repeat_interleave(self.ssl_repeat, dim=1)
            if spec is not None:
                frames = min(ssl.shape[1], spec.shape[1])
                ssl, spec = ssl[:, :frames], spec[:, :frames]
        else:  # the spectrum-only control never runs the SSL encoder
            ssl = None
        fused = self.fusion(ssl, spec)
        needed = noisy.shape[1] // self.hop_length + 1
        if fused.shape[1] < needed:  # coarser encoders may give fewer frames
            missing = needed - fused.shape[1]
            fused = F.pad(fused.transpose(1, 2), (0, missing), mode="replicate").transpose(1, 2)
        return fused[:, :needed]

    def synthesise(self, features, num_samples, noisy=None):
        """Generator output cropped to ``num_samples``: ``[b, F, d_model] -> [b, num_samples]``.

        A generator family that filters the noisy input (``needs_noisy``) also takes the
        ``[b, num_samples]`` noisy waveform.
        """
        if self.needs_noisy:
            if noisy is None:
                raise ValueError(f"{type(self.generator).__name__} needs the noisy waveform")
            return fit_length(self.generator(features, noisy), num_samples)
        return fit_length(self.generator(features.transpose(1, 2))[:, 0], num_samples)

    def forward(self, noisy, wav_lens=None, clean=None):
        """Enhances a padded batch.

        Arguments
        ---------
        noisy : torch.Tensor
            ``[B, T]`` noisy speech at 16 kHz.
        wav_lens : torch.Tensor, optional
            ``[B]`` SpeechBrain relative lengths in (0, 1].
        clean : torch.Tensor, optional
            ``[B, T]`` clean speech (``clean_embedding`` mode only).

        Returns
        -------
        torch.Tensor
            ``[B, T]`` enhanced speech; zero beyond each item's length.
        """

        def enhance(index, length):
            group_clean = None if clean is None else clean[index, :length]
            group = noisy[index, :length]
            return self.synthesise(self.features(group, group_clean), length, group)

        return enhance_by_length(noisy, wav_lens, enhance)
