"""Pretrained interface of the spectrum-aware denoising vocoder.

A model folder (written by :func:`speechbrain_sslse.packaging.package_model`, or the
``sslse-package`` command) holds ``hyperparams.yaml`` (architecture, inference
settings, a pretrainer), ``vocoder.ckpt`` (trained weights) and ``ssl.ckpt`` (the
SSL encoder's checkpoint in s3prl's format). ``hyperparams.yaml`` refers to the
folder through ``model_dir``, which :meth:`SpectrumAwareEnhancer.from_hparams` fills
in; with SpeechBrain's ``foreign_class`` pass ``overrides={"model_dir": folder}``.

Example
-------
>>> enhancer = SpectrumAwareEnhancer.from_hparams(source="path/to/model")  # doctest: +SKIP
>>> enhanced = enhancer.enhance_file("noisy.wav", output_path="enhanced.wav")  # doctest: +SKIP

Authors
 * speechbrain-sslse contributors
"""

from pathlib import Path

import torch
from speechbrain.inference.interfaces import Pretrained

from .audio import SAMPLE_RATE, read_audio, write_audio
from .chunking import overlap_add

__all__ = ["SpectrumAwareEnhancer", "default_model_dir", "ModelFolderError"]

DEFAULT_MODEL_DIR = Path(__file__).parent / "assets" / "default_model"
REQUIRED_FILES = ("hyperparams.yaml", "vocoder.ckpt", "ssl.ckpt")


class ModelFolderError(FileNotFoundError):
    """A folder that is not a packaged model."""


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

    Hyperparameters read from ``hyperparams.yaml``: ``modules.vocoder``
    (:class:`speechbrain_sslse.lobes.SpectrumAwareVocoder`), ``chunk_seconds``,
    ``overlap_seconds``, ``chunk_batch_size``.
    """

    MODULES_NEEDED = ["vocoder"]
    HPARAMS_NEEDED = ["chunk_seconds", "overlap_seconds", "chunk_batch_size"]

    @classmethod
    def from_hparams(cls, source, hparams_file="hyperparams.yaml", overrides=None, **kwargs):
        """Loads a model folder (``source``); ``model_dir`` is filled in with it.

        Arguments
        ---------
        source : str or Path
            A local model folder.
        hparams_file : str
            Name of the hyperparameters file in it.
        overrides : dict, optional
            Overrides of the hyperparameters (e.g. ``chunk_seconds``).
        **kwargs
            Passed to SpeechBrain's ``Pretrained.from_hparams`` (e.g. ``run_opts={"device": "cuda"}``).

        Returns
        -------
        SpectrumAwareEnhancer
        """
        folder = check_model_folder(source).resolve()
        overrides = {"model_dir": str(folder), **dict(overrides or {})}
        return super().from_hparams(
            source=str(folder), hparams_file=hparams_file, overrides=overrides, **kwargs
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mods.vocoder.remove_weight_norm()

    @torch.inference_mode()
    def enhance_batch(self, noisy, lengths=None):
        """Enhances a batch of 16 kHz waveforms.

        Arguments
        ---------
        noisy : torch.Tensor
            ``[B, T]`` noisy speech at 16 kHz.
        lengths : torch.Tensor, optional
            ``[B]`` SpeechBrain relative lengths (all 1 when None).

        Returns
        -------
        torch.Tensor
            ``[B, T]`` enhanced speech (zero beyond each length).
        """
        noisy = noisy.to(self.device, torch.float32)
        if lengths is not None:
            lengths = lengths.to(self.device)
        return self.mods.vocoder(noisy, lengths)

    @torch.inference_mode()
    def enhance_waveform(self, wav):
        """Enhances one 16 kHz waveform ``[T]`` of any length (in chunks when long).

        Returns
        -------
        torch.Tensor
            ``[T]`` on the model's device.
        """
        wav = wav.to(self.device, torch.float32)
        return overlap_add(
            wav,
            self.mods.vocoder,
            chunk=int(self.hparams.chunk_seconds * SAMPLE_RATE),
            overlap=int(self.hparams.overlap_seconds * SAMPLE_RATE),
            batch_size=int(self.hparams.chunk_batch_size),
        )

    def enhance_file(self, path, output_path=None):
        """Enhances an audio file of any sample rate and channel count.

        Arguments
        ---------
        path : str or Path
            Input audio file.
        output_path : str or Path, optional
            Where to write the 16 kHz mono result (atomically); nothing is written if None.

        Returns
        -------
        torch.Tensor
            ``[T]`` enhanced speech at 16 kHz, on the CPU.

        Raises
        ------
        speechbrain_sslse.audio.AudioError
            For a missing, unreadable, empty, too short (< 0.1 s) or non-finite file.
        """
        wav = read_audio(path, min_duration=0.1)
        enhanced = self.enhance_waveform(wav).cpu()
        if output_path is not None:
            write_audio(output_path, enhanced, SAMPLE_RATE)
        return enhanced

    def forward(self, noisy, lengths=None):
        """Same as :meth:`enhance_batch`."""
        return self.enhance_batch(noisy, lengths)
