"""The spectrum-aware denoising vocoder: SSL encoder + noisy spectrum + fusion + generator.

:class:`SpectrumAwareVocoder` is assembled from modules passed in (built with ``!new:`` in a
recipe yaml, the yaml being the wiring diagram); :func:`spectrum_aware_vocoder` builds one
from names and sizes in Python (tests, benchmarks), as torchaudio's ``wav2vec2_model`` does.

Authors
 * speechbrain-sslse contributors
"""

import torch
import torch.nn.functional as F
from speechbrain.lobes.models.HifiGAN import HifiganGenerator
from torch import nn

from ..audio import fit_length
from .fusion import FUSIONS
from .hifigan import UPSAMPLE_KERNELS_BEFORE, hifigan_generator, upsampling_factor
from .layer_combination import LayerCombination
from .lengths import absolute_lengths, length_groups
from .spectrum import NoisySpectrum

__all__ = ["SpectrumAwareVocoder", "spectrum_aware_vocoder", "enhance_by_length"]


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


def _in_channels(generator):
    """Input channels of a generator (None when it does not say)."""
    if isinstance(generator, HifiganGenerator):
        return generator.conv_pre.conv.in_channels
    return getattr(generator, "in_channels", None)


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
    2. a :class:`~speechbrain_sslse.lobes.LayerCombination` combines them into ``[B, F, D]``;
       an encoder with a coarser hop (e.g. 320 samples for HuBERT) is repeated onto the
       spectrum grid;
    3. a :class:`~speechbrain_sslse.lobes.NoisySpectrum` computes the noisy spectrum
       ``[B, F', n_freq]`` at the generator's hop (160 samples); both streams are cropped
       to the shorter frame count (aligned at the start);
    4. a fusion (:mod:`speechbrain_sslse.lobes.fusion`) gives ``[B, F, d_model]``;
    5. the generator synthesises the waveform, cropped (or zero-padded) to exactly ``T``
       samples: SpeechBrain's :class:`HifiganGenerator` (``[B, d_model, F] -> [B, 1, hop F]``),
       or a generator family that filters the noisy input (``needs_noisy = True``, e.g.
       :class:`~speechbrain_sslse.lobes.SpectralMaskHead`:
       ``forward(features [b, F, d_model], noisy [b, t]) -> [b, t]``).

    Each part is built outside (``!new:`` in a recipe yaml) and passed in; the vocoder
    checks that their sizes fit. Waveforms of equal length are processed together and
    those of different lengths separately, so an item of a padded batch gets exactly the
    output it gets alone.

    Arguments
    ---------
    encoder : speechbrain_sslse.lobes.SSLEncoder
        The (frozen) SSL encoder; anything with ``num_layers``, ``hidden_size``,
        ``hop_length`` and ``forward(wavs, wav_lens) -> (hidden [L, B, F, D], frame_lens)``.
    layer_combination : speechbrain_sslse.lobes.LayerCombination
        The learned combination of the encoder's ``num_layers`` hidden states.
    spectrum : speechbrain_sslse.lobes.NoisySpectrum or None
        The noisy spectrum, with the generator's hop; None (or ignored) for a fusion
        without the spectrum stream (``uses_spectrum = False``, the baseline).
    fusion : torch.nn.Module
        A fusion of :mod:`speechbrain_sslse.lobes.fusion` (``ssl_dim``, ``spec_dim``,
        ``d_model``, ``uses_ssl``, ``uses_spectrum``, ``forward(ssl, spec) -> [B, F, d_model]``).
    generator : torch.nn.Module
        A :class:`HifiganGenerator` (e.g. from :func:`~speechbrain_sslse.lobes.hifigan_generator`)
        or a generator family with ``hop_length`` and ``needs_noisy = True``.
    clean_embedding : bool
        Oracle mode: the SSL stream is computed from the clean waveform passed as
        ``clean`` to :meth:`forward` (the spectrum stays the noisy one).

    Example
    -------
    >>> import tempfile, os
    >>> from speechbrain_sslse.testing import write_tiny_tera
    >>> from speechbrain_sslse.lobes import (
    ...     CrossAttentionFusion, LayerCombination, NoisySpectrum, SSLEncoder, hifigan_generator)
    >>> encoder = SSLEncoder("tera", ckpt=write_tiny_tera(os.path.join(tempfile.mkdtemp(), "t.ckpt")))
    >>> spectrum = NoisySpectrum("log")
    >>> vocoder = SpectrumAwareVocoder(
    ...     encoder,
    ...     LayerCombination(encoder.num_layers),
    ...     spectrum,
    ...     CrossAttentionFusion(encoder.hidden_size, spectrum.n_freq, d_model=32, num_heads=2, ffn_dim=64),
    ...     hifigan_generator("v1", in_channels=32, upsample_initial_channel=16,
    ...                       resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3, 5]]),
    ... )
    >>> noisy = torch.randn(2, 8000)
    >>> vocoder(noisy, torch.tensor([1.0, 0.6])).shape
    torch.Size([2, 8000])
    >>> vocoder.layer_weights.shape, vocoder.family, vocoder.hop_length
    (torch.Size([3]), 'hifigan', 160)
    """

    def __init__(self, encoder, layer_combination, spectrum, fusion, generator, clean_embedding=False):
        super().__init__()
        self.encoder = encoder
        self.clean_embedding = clean_embedding
        self.combination = layer_combination
        self.hop_length = upsampling_factor(generator)
        if encoder.hop_length % self.hop_length:
            raise ValueError(
                f"the SSL encoder's hop ({encoder.hop_length} samples) must be a multiple of the "
                f"generator's upsampling product ({self.hop_length})"
            )
        self.ssl_repeat = encoder.hop_length // self.hop_length
        uses_ssl = getattr(fusion, "uses_ssl", True)
        uses_spectrum = getattr(fusion, "uses_spectrum", True)
        if uses_ssl and layer_combination.num_layers != encoder.num_layers:
            raise ValueError(
                f"the layer combination takes {layer_combination.num_layers} hidden states, "
                f"the SSL encoder gives {encoder.num_layers}"
            )
        if uses_ssl and fusion.ssl_dim != encoder.hidden_size:
            raise ValueError(
                f"the fusion takes SSL features of size {fusion.ssl_dim}, "
                f"the encoder gives {encoder.hidden_size}"
            )
        if uses_spectrum:
            if spectrum is None:
                raise ValueError(f"{type(fusion).__name__} needs the noisy spectrum")
            if spectrum.hop_length != self.hop_length:
                raise ValueError(
                    f"spectrum hop_length {spectrum.hop_length} differs from the generator's "
                    f"upsampling product {self.hop_length}"
                )
            if fusion.spec_dim != spectrum.n_freq:
                raise ValueError(
                    f"the fusion takes {fusion.spec_dim} spectrum bins, the spectrum has {spectrum.n_freq}"
                )
        # The baseline denoising vocoder never computes the spectrum.
        self.spectrum = spectrum if uses_spectrum else None
        self.fusion = fusion
        in_channels = _in_channels(generator)
        if in_channels is not None and in_channels != fusion.d_model:
            raise ValueError(
                f"the generator takes {in_channels} input channels "
                f"but the fusion gives d_model={fusion.d_model}"
            )
        self.generator = generator
        if isinstance(generator, HifiganGenerator):
            self._register_load_state_dict_pre_hook(self._check_upsampling_kernels, with_module=False)
        self.needs_noisy = bool(getattr(self.generator, "needs_noisy", False))

    def _check_upsampling_kernels(self, state_dict, prefix, *args):
        """Names the setting to use when a checkpoint's upsampling kernels differ from this generator's."""
        own = [int(up.conv.kernel_size[0]) for up in self.generator.ups]
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
                f"generator with upsample_kernel_sizes={saved} (in a recipe yaml, "
                f"upsample_kernel_sizes: {saved} under the HiFi-GAN generator's arguments)"
            )

    @property
    def d_model(self):
        """Size of the fused features (the generator's input channels)."""
        return self.fusion.d_model

    @property
    def layer_weights(self):
        """Effective weights of the SSL hidden states, ``[L]`` (the layer-weight table)."""
        return self.combination.weights

    @property
    def family(self):
        """``"hifigan"`` (SpeechBrain's HifiganGenerator) or the class path of the generator family."""
        return "hifigan" if isinstance(self.generator, HifiganGenerator) else _class_path(self.generator)

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


def spectrum_aware_vocoder(
    encoder,
    fusion="cross_attention",
    spectrum="log",
    d_model=256,
    fusion_options=None,
    spectrum_options=None,
    layer_combination=None,
    generator="v1",
    clean_embedding=False,
):
    """A :class:`SpectrumAwareVocoder` from names and sizes (a shortcut for Python code).

    Recipes build the parts in their yaml; this factory builds the same parts from the
    settings a script or a test states, like torchaudio's ``wav2vec2_model``.

    Arguments
    ---------
    encoder : speechbrain_sslse.lobes.SSLEncoder
        The (frozen) SSL encoder.
    fusion : str
        A key of :data:`~speechbrain_sslse.lobes.fusion.FUSIONS` (``cross_attention``: proposed).
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
    generator : str, dict or torch.nn.Module
        A HiFi-GAN preset name (``v1``, ``v2``, ``v3``), a dict of
        :func:`~speechbrain_sslse.lobes.hifigan_generator` arguments (``preset`` names the
        base), or a generator module (a generator family such as the mask head).
    clean_embedding : bool
        Oracle mode (see :class:`SpectrumAwareVocoder`).

    Returns
    -------
    SpectrumAwareVocoder

    Example
    -------
    >>> import tempfile, os
    >>> from speechbrain_sslse.testing import write_tiny_tera
    >>> from speechbrain_sslse.lobes import SSLEncoder
    >>> encoder = SSLEncoder("tera", ckpt=write_tiny_tera(os.path.join(tempfile.mkdtemp(), "t.ckpt")))
    >>> vocoder = spectrum_aware_vocoder(encoder, "additive", d_model=16,
    ...                                  generator={"preset": "v3", "upsample_initial_channel": 16})
    >>> type(vocoder.fusion).__name__, vocoder(torch.randn(1, 4000)).shape
    ('AdditiveFusion', torch.Size([1, 4000]))
    """
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}: expected one of {', '.join(FUSIONS)}")
    if not isinstance(generator, nn.Module):
        settings = {"preset": generator} if isinstance(generator, str) else dict(generator or {})
        generator = hifigan_generator(in_channels=d_model, **settings)
    noisy_spectrum = NoisySpectrum(
        spectrum, **{"hop_length": upsampling_factor(generator), **dict(spectrum_options or {})}
    )
    fusion_module = FUSIONS[fusion](
        encoder.hidden_size, noisy_spectrum.n_freq, d_model=d_model, **dict(fusion_options or {})
    )
    return SpectrumAwareVocoder(
        encoder,
        LayerCombination(encoder.num_layers, **dict(layer_combination or {})),
        noisy_spectrum,
        fusion_module,
        generator,
        clean_embedding=clean_embedding,
    )
