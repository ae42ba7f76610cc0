"""Pretrained interface of the spectrum-aware denoising vocoder.

A model folder (written by :func:`speechbrain_sslse.packaging.package_model`, or the
``sslse-package`` command) holds ``hyperparams.yaml`` (architecture, inference
settings, a pretrainer), ``vocoder.ckpt`` (trained weights) and ``ssl.ckpt`` (the
SSL encoder's checkpoint in s3prl's format). ``hyperparams.yaml`` refers to the
folder through ``model_dir``, which :meth:`SpectrumAwareEnhancer.from_hparams` fills
in; with SpeechBrain's ``foreign_class`` pass ``overrides={"model_dir": folder}``.

Example
-------
>>> enhancer = SpectrumAwareEnhancer.from_hparams(source=default_model_dir())  # the shipped model
>>> noisy = 0.1 * torch.randn(2, 16000)  # [B, T] at 16 kHz
>>> enhancer.enhance_batch(noisy, torch.tensor([1.0, 0.5])).shape
torch.Size([2, 16000])

Files: ``enhancer.enhance_file("noisy.wav", output_filename="enhanced.wav")`` (any rate and
channel count in, 16 kHz mono out; the keyword names are those of SpeechBrain's
``SpectralMaskEnhancement.enhance_file``).

Authors
 * speechbrain-sslse contributors
"""

import warnings
from pathlib import Path

import torch
from speechbrain.inference.interfaces import Pretrained

from .audio import SAMPLE_RATE, as_lengths, as_waveforms, read_audio, write_audio
from .chunking import overlap_add
from .lobes.ssl_encoder import CheckpointError

__all__ = ["SpectrumAwareEnhancer", "default_model_dir", "ModelFolderError", "FormerModelFolderError"]

DEFAULT_MODEL_DIR = Path(__file__).parent / "assets" / "default_model"
REQUIRED_FILES = ("hyperparams.yaml", "vocoder.ckpt", "ssl.ckpt")
# Keyword names of enhance_file before it took SpeechBrain's (accepted, with a DeprecationWarning,
# until the next release).
RENAMED_KEYWORDS = {"path": "filename", "output_path": "output_filename"}


class ModelFolderError(FileNotFoundError):
    """A folder that is not a packaged model."""


class FormerModelFolderError(ValueError):
    """A model folder whose ``hyperparams.yaml`` has the former settings form (the message names the fix)."""


def check_current_form(hparams_path):
    """Raises :class:`FormerModelFolderError` for a ``hyperparams.yaml`` in the former settings form.

    Folders packaged before the vocoder's parts were written as modules name them in the
    vocoder's settings; :func:`speechbrain_sslse.packaging.upgrade_model_folder` rewrites them.
    """
    from ruamel.yaml import YAMLError

    from .upgrade import upgrade_vocoder_yaml

    path = Path(hparams_path)
    try:
        former = path.is_file() and upgrade_vocoder_yaml(path.read_text(encoding="utf-8")) is not None
    except (YAMLError, ValueError):  # a damaged file: loading it names it (ModelFolderError)
        return
    if former:
        raise FormerModelFolderError(
            f"{path}: this model folder was packaged before the vocoder's parts were written as modules; "
            f"rewrite its hyperparams.yaml once with speechbrain_sslse.packaging.upgrade_model_folder"
            f"({str(path.parent)!r}) (the checkpoints are unchanged and it enhances as before)"
        )


def default_model_dir():
    """The model shipped inside the package (the default of ``sslse-enhance``).

    Raises
    ------
    ModelFolderError
        When the package holds no default model.
    """
    missing = [name for name in REQUIRED_FILES if not (DEFAULT_MODEL_DIR / name).is_file()]
    if missing:
        raise ModelFolderError(
            f"this installation has no default model ({DEFAULT_MODEL_DIR} lacks {', '.join(missing)}). "
            "Pass --model DIR with a model folder packaged by `sslse-package` from a training run."
        )
    return DEFAULT_MODEL_DIR


def _load_error(folder, hparams_file, err):
    """A :class:`ModelFolderError` naming the damaged file(s) of a model folder that failed to load."""
    from .checkpointing import damaged_files

    damaged = [p.name for p in damaged_files(folder)]
    what = ", ".join(damaged) if damaged else f"{hparams_file} (or a file it refers to)"
    return ModelFolderError(
        f"{folder}: cannot load the model: {what} is damaged or incomplete ({type(err).__name__}: {err}). "
        "Copy the model folder again, or package it again with `sslse-package RUN_FOLDER -o MODEL_DIR`."
    )


def check_model_folder(folder):
    """Raises :class:`ModelFolderError` naming what is missing when ``folder`` is not a model folder.

    Example
    -------
    >>> check_model_folder("/nonexistent")
    Traceback (most recent call last):
    ...
    speechbrain_sslse.inference.ModelFolderError: /nonexistent: not a model folder (no such folder). ...
    """
    folder = Path(folder).expanduser()
    fix = (
        "A model folder holds hyperparams.yaml, vocoder.ckpt and ssl.ckpt: package a training run "
        "with `sslse-package RUN_FOLDER -o MODEL_DIR`."
    )
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: not a model folder (no such folder). {fix}")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(f"{folder}: not a model folder (missing {', '.join(missing)}). {fix}")
    return folder


class SpectrumAwareEnhancer(Pretrained):
    """Enhances noisy, reverberant speech with a trained spectrum-aware vocoder.

    Any sample rate and channel count in; 16 kHz mono out. Inputs longer than
    ``chunk_seconds`` are cut into chunks overlapping by ``overlap_seconds``, enhanced
    ``chunk_batch_size`` at a time and cross-faded (see
    :func:`speechbrain_sslse.chunking.overlap_add`), so memory stays bounded whatever
    the length. The generator's weight normalisation is folded into its weights at load.

    Inference runs on the fast path by default (:class:`speechbrain_sslse.fast.FastVocoder`:
    prepacked oneDNN generator, fused activations, SDPA attention and, where the hardware
    has native bf16, bf16 computation); ``fast=False`` gives the plain eager fp32 vocoder.
    The choice is made with the keyword arguments below (passed through
    ``from_hparams`` or ``foreign_class``), with :meth:`configure_inference`, or with the
    optional ``fast``, ``precision`` and ``num_threads`` keys of ``hyperparams.yaml``.

    Hyperparameters read from ``hyperparams.yaml``: ``modules.vocoder``
    (:class:`speechbrain_sslse.lobes.SpectrumAwareVocoder`), ``chunk_seconds``,
    ``overlap_seconds``, ``chunk_batch_size``; optional: ``fast`` (default true),
    ``precision`` (default ``auto``), ``num_threads`` (default: leave torch's setting).

    Arguments
    ---------
    *args, **kwargs
        SpeechBrain's ``Pretrained`` arguments (``modules``, ``hparams``, ``run_opts``, ...).
    fast : bool, optional
        Use the fast inference path (default: the ``fast`` hparam, else True).
    precision : str, optional
        ``auto``, ``fp32``, ``bf16`` or ``fp16`` (CUDA) for the fast path (see
        :func:`speechbrain_sslse.fast.resolve_precision`); default: the ``precision``
        hparam, else ``auto`` (bf16 on CPUs with native bf16, fp32 otherwise).
    num_threads : int, optional
        CPU threads of torch for the whole process (``torch.set_num_threads``).
    """

    MODULES_NEEDED = ["vocoder"]
    HPARAMS_NEEDED = ["chunk_seconds", "overlap_seconds", "chunk_batch_size"]

    @classmethod
    def from_hparams(
        cls, source, hparams_file="hyperparams.yaml", overrides=None, trust_model_code=False, **kwargs
    ):
        """Loads a model folder (``source``); ``model_dir`` is filled in with it.

        The folder is loaded by the restricted loader (:mod:`speechbrain_sslse.trust`):
        ``hyperparams.yaml`` may build objects of speechbrain, speechbrain_sslse and torch
        only (no ``!!python`` tags, no commands, downloads or file writes), and every
        checkpoint (``vocoder.ckpt``, ``ssl.ckpt``) is read with ``weights_only=True``.

        Arguments
        ---------
        source : str or Path
            A local model folder.
        hparams_file : str
            Name of the hyperparameters file in it.
        overrides : dict, optional
            Overrides of the hyperparameters (e.g. ``chunk_seconds``).
        trust_model_code : bool
            Load the folder as SpeechBrain would, without the restrictions: its YAML may
            import and run any code and ``ssl.ckpt`` may be unpickled. Only for folders
            from a source you trust.
        **kwargs
            Passed to the constructor (``run_opts={"device": "cuda"}``, ``fast``,
            ``precision``, ``num_threads``, ``freeze_params``).

        Returns
        -------
        SpectrumAwareEnhancer

        Raises
        ------
        ModelFolderError
            A file of the folder is missing, damaged or incomplete (the message names it).
        speechbrain_sslse.lobes.ssl_encoder.CheckpointError
            ``ssl.ckpt`` cannot be loaded, holds pickled Python objects (without
            ``trust_model_code``), or is not the SSL encoder the vocoder was trained on.
        speechbrain_sslse.trust.ModelCodeError
            ``hyperparams.yaml`` asks for code the restricted loader refuses (file and line named).
        """
        from .fast import InferenceOptionError, check_inference_options
        from .trust import ModelCodeError, load_model_hparams, load_pretrained_weights

        folder = check_model_folder(source).resolve()
        device = (kwargs.get("run_opts") or {}).get("device", "cpu")
        fast = kwargs.get("fast")
        check_inference_options(  # before loading: an option error is not a damaged folder
            True if fast is None else fast,
            kwargs.get("precision") or "auto",
            device,
            kwargs.get("num_threads"),
        )
        overrides = {"model_dir": str(folder), **dict(overrides or {})}
        for name in ("savedir", "download_only", "local_strategy", "fetch_config"):  # nothing is fetched
            kwargs.pop(name, None)
        must_match = kwargs.pop("overrides_must_match", True)
        check_current_form(folder / hparams_file)
        try:
            hparams = load_model_hparams(folder / hparams_file, overrides, trust_model_code, must_match)
            hparams["savedir"] = str(folder)
            load_pretrained_weights(hparams["pretrainer"], folder, trust_model_code)
            return cls(modules=hparams["modules"], hparams=hparams, **kwargs)
        except (ModelCodeError, FormerModelFolderError, InferenceOptionError):
            raise
        except CheckpointError as err:
            raise CheckpointError(f"model folder {folder}: {err}") from err
        except Exception as err:  # torch, pickle and yaml raise many types for damaged files
            raise _load_error(folder, hparams_file, err) from err

    def __init__(self, *args, fast=None, precision=None, num_threads=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.mods.vocoder.remove_weight_norm()
        self.configure_inference(
            fast=getattr(self.hparams, "fast", True) if fast is None else fast,
            precision=getattr(self.hparams, "precision", "auto") if precision is None else precision,
            num_threads=getattr(self.hparams, "num_threads", None) if num_threads is None else num_threads,
        )

    def configure_inference(self, fast=True, precision="auto", num_threads=None):
        """Chooses the inference path: fast (default) or plain eager fp32.

        Arguments
        ---------
        fast : bool
            The fast path (:class:`speechbrain_sslse.fast.FastVocoder`), or the eager
            vocoder in fp32 when False.
        precision : str
            ``auto``, ``fp32``, ``bf16`` or ``fp16`` (CUDA only); fast path only.
        num_threads : int, optional
            Sets torch's CPU threads for the process (None leaves them as they are).

        Returns
        -------
        SpectrumAwareEnhancer
            ``self``.

        Raises
        ------
        speechbrain_sslse.fast.InferenceOptionError
            (a ``ValueError``) An unknown or unavailable device, an unknown precision, a
            reduced precision with ``fast=False``, or fewer than 1 thread.
        """
        from .fast import FastVocoder, check_inference_options

        self.precision = check_inference_options(fast, precision, self.device, num_threads)
        self.fast = bool(fast)
        if num_threads is not None:
            torch.set_num_threads(int(num_threads))
        # kept out of the module tree (it shares the vocoder's modules; no duplicate state_dict keys)
        model = FastVocoder(self.mods.vocoder, self.precision) if self.fast else self.mods.vocoder
        object.__setattr__(self, "_inference_model", model)
        return self

    @torch.inference_mode()
    def enhance_batch(self, noisy, lengths=None):
        """Enhances a batch of 16 kHz waveforms.

        Inputs of any length are accepted: one shorter than the shortest input the
        vocoder takes (its reflect paddings) is zero-padded up to it and the result cut
        back, the same way on the fast and the eager path.

        Arguments
        ---------
        noisy : torch.Tensor or numpy.ndarray
            ``[B, T]`` noisy speech at 16 kHz: float (any precision), or int16 / int32
            PCM (scaled to [-1, 1]).
        lengths : torch.Tensor, numpy.ndarray or list, optional
            ``[B]`` SpeechBrain relative lengths in (0, 1] (all 1 when None).

        Returns
        -------
        torch.Tensor
            ``[B, T]`` enhanced speech (zero beyond each length).

        Raises
        ------
        ValueError
            NaN or Inf samples, a wrong shape, or lengths outside (0, 1].
        TypeError
            Boolean, complex or other integer samples, or not an array.
        """
        noisy = as_waveforms(noisy, "noisy", ndim=2).to(self.device)
        if lengths is not None:
            lengths = as_lengths(lengths, noisy.shape[0]).to(self.device)
        return self._run(noisy, lengths)

    def _min_samples(self):
        """The shortest input (samples) the vocoder takes, found once by trying the eager vocoder."""
        cached = self.__dict__.get("_min_len")
        if cached is not None:
            return cached

        def works(n):
            try:
                self.mods.vocoder(torch.zeros(1, n, device=self.device))
                return True
            except (RuntimeError, ValueError, IndexError):
                return False

        low, high = 0, 64  # low fails (or is 0), high works
        while not works(high):
            low, high = high, 2 * high
            if high > 8 * SAMPLE_RATE:
                raise RuntimeError("the vocoder fails on every input up to 8 s: it cannot be used")
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (low, mid) if works(mid) else (mid, high)
        self.__dict__["_min_len"] = high
        return high

    def _run(self, noisy, lengths=None):
        """The inference model on ``[B, T]``; items shorter than :meth:`_min_samples` are padded first."""
        from .lobes.ssl_encoder import absolute_lengths

        batch, width = noisy.shape
        counts = absolute_lengths(lengths, width, batch, noisy.device)
        if int(counts.min()) >= SAMPLE_RATE or int(counts.min()) >= self._min_samples():
            return self._inference_model(noisy, lengths)
        minimum = self._min_samples()
        padded_width = max(width, minimum)
        keep = torch.arange(padded_width, device=noisy.device)[None, :] < counts[:, None]
        padded = torch.nn.functional.pad(noisy, (0, padded_width - width)) * keep
        padded_counts = counts.clamp(min=minimum)
        out = self._inference_model(padded, padded_counts.double() / padded_width)
        return out[:, :width] * keep[:, :width]

    @torch.inference_mode()
    def enhance_waveform(self, wav):
        """Enhances one 16 kHz waveform ``[T]`` of any length (in chunks when long).

        ``wav`` is a tensor or numpy array, float or int16 / int32 PCM (see :meth:`enhance_batch`).

        Returns
        -------
        torch.Tensor
            ``[T]`` on the model's device.
        """
        wav = as_waveforms(wav, "wav", ndim=1).to(self.device)
        return overlap_add(
            wav,
            self._run,
            chunk=int(self.hparams.chunk_seconds * SAMPLE_RATE),
            overlap=int(self.hparams.overlap_seconds * SAMPLE_RATE),
            batch_size=int(self.hparams.chunk_batch_size),
        )

    def enhance_file(self, filename=None, output_filename=None, **renamed):
        """Enhances an audio file of any sample rate and channel count.

        The keyword names are those of SpeechBrain's
        ``SpectralMaskEnhancement.enhance_file``. The old names ``path`` and
        ``output_path`` still work until the next release, with a ``DeprecationWarning``.

        Arguments
        ---------
        filename : str or Path
            Input audio file.
        output_filename : str or Path, optional
            Where to write the 16 kHz mono result (atomically); nothing is written if None.
        **renamed
            ``path`` / ``output_path``: the deprecated names of ``filename`` /
            ``output_filename``.

        Returns
        -------
        torch.Tensor
            ``[T]`` enhanced speech at 16 kHz, on the CPU.

        Raises
        ------
        speechbrain_sslse.audio.AudioError
            For a missing, unreadable, empty, too short (< 0.1 s) or non-finite file.
        TypeError
            For an unknown keyword, no ``filename``, or an argument given under both its
            new and its old name.
        """
        given = {"filename": filename, "output_filename": output_filename}
        for old, value in renamed.items():
            if old not in RENAMED_KEYWORDS:
                raise TypeError(f"enhance_file() got an unexpected keyword argument {old!r}")
            new = RENAMED_KEYWORDS[old]
            if given[new] is not None:
                raise TypeError(
                    f"enhance_file() got both {new!r} and its deprecated name {old!r}; pass {new!r} only"
                )
            warnings.warn(
                f"enhance_file(..., {old}=...) is deprecated and will be removed in the next release; "
                f"use {new}=... (SpeechBrain's name)",
                DeprecationWarning,
                stacklevel=2,
            )
            given[new] = value
        if given["filename"] is None:
            raise TypeError("enhance_file() missing 1 required argument: 'filename'")
        wav = read_audio(given["filename"], min_duration=0.1)
        enhanced = self.enhance_waveform(wav).cpu()
        if given["output_filename"] is not None:
            write_audio(given["output_filename"], enhanced, SAMPLE_RATE)
        return enhanced

    def forward(self, noisy, lengths=None):
        """Same as :meth:`enhance_batch`."""
        return self.enhance_batch(noisy, lengths)
