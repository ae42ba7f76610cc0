"""Packaging a training run of the DNS recipe as a model folder: :func:`package_model`.

It reads the run (:mod:`.run`), picks and loads the checkpoint (:mod:`.checkpoints`), and
writes the folder's ``hyperparams.yaml`` (:mod:`.hparams`), weights, ``custom_interface.py``
and model card (:mod:`.model_card`) into a staging folder beside the destination, renamed
into place at the end: an interrupted packaging never leaves a half-written model folder.

Authors
 * speechbrain-sslse contributors
"""

import io
import os
import shutil
import tempfile
from pathlib import Path

import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.checkpoints import Checkpointer

from ..files import sha256_file
from ..upgrade import upgrade_vocoder_yaml
from .checkpoints import calibrate_output_level, find_checkpoint
from .errors import PackagingError
from .hparams import model_hyperparams, run_tree, set_generator_settings, ssl_architecture, vocoder_parts
from .model_card import model_card
from .run import recorded_settings, run_path, training_folder

__all__ = ["package_model", "MODEL_FILES", "CUSTOM_INTERFACE"]

MODEL_FILES = ("hyperparams.yaml", "vocoder.ckpt", "ssl.ckpt", "custom_interface.py", "README.md")

CUSTOM_INTERFACE = '''"""Interface of this model folder, for SpeechBrain's ``foreign_class``."""

from speechbrain_sslse.inference import SpectrumAwareEnhancer  # noqa: F401
'''


def package_model(
    run_folder,
    output_dir,
    checkpoint=None,
    max_key=None,
    notes=(),
    overwrite=False,
    generator_settings=None,
    with_discriminator=False,
):
    """Turns a training run of the DNS recipe into a pretrained-model folder.

    Arguments
    ---------
    run_folder : str or Path
        The run's ``output_folder`` (with ``hyperparams.yaml`` and ``save/``).
    output_dir : str or Path
        The model folder to write.
    checkpoint : str or Path, optional
        A ``save/CKPT+...`` folder (default: the best by ``max_key``, else the latest).
    max_key : str, optional
        Validation metric that picks the best checkpoint (default: the run's
        ``selection_key``, the one its training kept checkpoints by; ``pesq`` if it has none).
    notes : iterable of str
        Extra markdown lines for the model card (e.g. a metrics table).
    overwrite : bool
        Replace an existing ``output_dir``.
    generator_settings : dict, optional
        Inference settings of a generator family that change no weight, written into the
        packaged ``hyperparams.yaml`` and the model card (e.g. ``{"mask_exponent": 1.5}``
        for :class:`~speechbrain_sslse.lobes.SpectralMaskHead`, chosen on the validation
        set by the DNS recipe's ``tune_mask_exponent.py``).
    with_discriminator : bool
        Also copy the checkpoint's ``discriminator.ckpt`` into the folder (inference never
        reads it): a GAN fine-tune started from the folder (the DNS recipe's ``init_from``)
        then continues with the discriminator the model was trained against instead of an
        untrained one, on any machine.

    Returns
    -------
    Path
        ``output_dir``.
    """
    run_folder, output_dir = Path(run_folder), Path(output_dir)
    hparams_path = run_folder / "hyperparams.yaml"
    if not hparams_path.is_file():
        raise PackagingError(f"{run_folder}: no hyperparams.yaml; pass the output_folder of a training run")
    if output_dir.exists() and not overwrite:
        raise PackagingError(f"{output_dir} exists; pass overwrite=True (--overwrite) to replace it")
    recorded = recorded_settings(hparams_path)
    if max_key is None:
        max_key = recorded.get("selection_key") or "pesq"
    # Relative paths of the run are relative to where it was trained, wherever this runs from.
    base = training_folder(run_folder, recorded.get("output_folder"))
    path_overrides = {"output_folder": str(run_folder)}
    if recorded.get("manifest_folder"):
        path_overrides["manifest_folder"] = run_path(recorded["manifest_folder"], base)
    if checkpoint is None:
        checkpoint = find_checkpoint(run_folder / "save", max_key)
    else:
        wanted = Path(checkpoint)
        found = [c for c in Checkpointer(wanted.parent).list_checkpoints() if c.path == wanted]
        if not found:
            raise PackagingError(f"{wanted}: not a checkpoint folder (CKPT+...) of a training run")
        checkpoint = found[0]
    weights = Path(checkpoint.path) / "generator.ckpt"
    if not weights.is_file():
        raise PackagingError(f"{checkpoint.path}: no generator.ckpt")
    discriminator = Path(checkpoint.path) / "discriminator.ckpt"
    if with_discriminator and not discriminator.is_file():
        raise PackagingError(
            f"{checkpoint.path}: no discriminator.ckpt to include; package without --with_discriminator, "
            "or average with a discriminator (average_checkpoints.py keeps the last epoch's)"
        )

    text = hparams_path.read_text(encoding="utf-8")
    text = upgrade_vocoder_yaml(text) or text  # a run trained before the parts were built in the yaml
    hparams = load_hyperpyyaml(io.StringIO(text), path_overrides)
    vocoder = hparams["generator"]
    if vocoder.clean_embedding:
        raise PackagingError(
            "the clean-embedding oracle needs the clean speech at inference and cannot be packaged"
        )
    parts = vocoder_parts(run_tree(text, path_overrides), hparams, "generator")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a damaged file
        raise PackagingError(
            f"{weights}: cannot be read, the checkpoint is damaged or incomplete ({type(err).__name__}: "
            f"{err}). Package another checkpoint (--checkpoint {Path(checkpoint.path).parent}/CKPT+...)."
        ) from err
    vocoder.load_state_dict(state)  # checks the SSL fingerprint and the architecture
    settings_notes = set_generator_settings(
        parts["generator"], generator_settings, vocoder.family, run_folder
    )
    ssl_ckpt = Path(vocoder.encoder._ckpt_path)
    level_db = checkpoint.meta.get("level_db")
    calibration = []
    if (
        hparams.get("calibrate_output_level")
        and vocoder.family == "hifigan"
        and isinstance(level_db, int | float)
        and level_db == level_db
    ):
        state, gain_db = calibrate_output_level(state, level_db)
        calibration = [
            f"Output level calibrated at packaging: the generator's output layer scaled by {gain_db:+.1f} dB "
            f"(the packaged checkpoint's output was {level_db:+.1f} dB from the clean speech's level, "
            "median over the validation mixtures).",
            "",
        ]

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes 0700: give the folder the usual permissions
    try:
        if calibration:
            torch.save(state, staging / "vocoder.ckpt")
        else:
            shutil.copyfile(weights, staging / "vocoder.ckpt")
        shutil.copyfile(ssl_ckpt, staging / "ssl.ckpt")
        shutil.copyfile(hparams_path, staging / "train_hyperparams.yaml")
        if with_discriminator:
            shutil.copyfile(discriminator, staging / "discriminator.ckpt")
        (staging / "custom_interface.py").write_text(CUSTOM_INTERFACE)
        (staging / "hyperparams.yaml").write_text(
            model_hyperparams(
                parts,
                vocoder.encoder.name,
                f"from {run_folder}",
                {
                    key: value
                    for key, value in (
                        ("chunk_seconds", hparams.get("inference_chunk_seconds")),
                        ("overlap_seconds", hparams.get("inference_overlap_seconds")),
                        ("chunk_batch_size", hparams.get("inference_chunk_batch_size")),
                    )
                    if value is not None
                },
                ssl_architecture(vocoder.encoder.name, ssl_ckpt),
            )
        )
        layer_weights = run_folder / "layer_weights.csv"
        if layer_weights.is_file():
            shutil.copyfile(layer_weights, staging / "layer_weights.csv")
        files = [(p.name, sha256_file(p)) for p in sorted(staging.iterdir()) if p.is_file()]
        (staging / "README.md").write_text(
            model_card(
                run_folder,
                hparams["manifest_folder"],
                checkpoint,
                vocoder,
                parts,
                vocoder.encoder.name,
                files,
                [*calibration, *settings_notes, *_discriminator_note(with_discriminator), *notes],
            )
        )
        if output_dir.exists():
            shutil.rmtree(output_dir)
        staging.rename(output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output_dir


def _discriminator_note(included):
    """The model card's lines on ``discriminator.ckpt`` (none when it is not in the folder)."""
    if not included:
        return []
    return [
        "`discriminator.ckpt` is the GAN discriminator this model was trained against, for fine-tuning "
        "only (inference never reads it): the DNS recipe's `--init_from <this folder>` loads it with "
        "the generator, so an adversarial fine-tune continues from it instead of an untrained one.",
        "",
    ]
