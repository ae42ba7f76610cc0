"""Packaging a trained spectrum-aware vocoder as a pretrained-model folder.

A training run of ``recipes/DNS/enhancement/train.py`` becomes a folder that
:class:`speechbrain_sslse.inference.SpectrumAwareEnhancer` (and SpeechBrain's
``foreign_class``) loads:

- ``hyperparams.yaml``: the inference template (``assets/templates/inference.yaml``) with the
  vocoder's parts (layer combination, noisy spectrum, fusion, generator) filled in from the
  run's own yaml entries, inference settings and SpeechBrain's Pretrainer of ``vocoder.ckpt``;
- ``vocoder.ckpt``: the trained weights (the frozen SSL encoder's weights are not in
  it, only their fingerprint);
- ``ssl.ckpt``: the SSL encoder's checkpoint, in s3prl's format;
- ``custom_interface.py``: the interface module for ``foreign_class``;
- ``README.md``: the model card (training data, configuration, validation metrics).

The folder is assembled beside its destination and renamed into place at the end,
so an interrupted packaging never leaves a half-written model folder.

One module per concept:

- :mod:`.run`: reading a training run (its ``train_log.txt``, recorded settings and paths);
- :mod:`.checkpoints`: the checkpoint to package, and the output-level calibration of its weights;
- :mod:`.hparams`: the model folder's ``hyperparams.yaml``, from the run's yaml tree and the template;
- :mod:`.model_card`: the model folder's ``README.md``;
- :mod:`.package`: :func:`package_model`, which puts them together;
- :mod:`.upgrade_folder`: :func:`upgrade_model_folder`, for folders packaged in a former form.

Authors
 * speechbrain-sslse contributors
"""

from .checkpoints import MAX_CALIBRATION_DB, calibrate_output_level, find_checkpoint
from .errors import PackagingError
from .hparams import INFERENCE_DEFAULTS, INFERENCE_TEMPLATE
from .package import MODEL_FILES, package_model
from .run import parse_train_log, training_folder
from .upgrade_folder import upgrade_model_folder

__all__ = [
    "package_model",
    "upgrade_model_folder",
    "find_checkpoint",
    "PackagingError",
    "MODEL_FILES",
    "INFERENCE_DEFAULTS",
    "INFERENCE_TEMPLATE",
    "MAX_CALIBRATION_DB",
    "calibrate_output_level",
    "training_folder",
    "parse_train_log",
]
