"""Upgrading a model folder packaged in a former form: :func:`upgrade_model_folder`.

The folder's ``hyperparams.yaml`` is written again from the inference template, with the
same parts, sizes and inference settings (and, for TERA, the SSL encoder built from its
architecture); its checkpoints and model card are not touched, so it enhances exactly as
before.

Authors
 * speechbrain-sslse contributors
"""

import io
import os
from pathlib import Path

from hyperpyyaml import load_hyperpyyaml

from ..upgrade import upgrade_vocoder_yaml
from .hparams import INFERENCE_DEFAULTS, model_hyperparams, run_tree, ssl_architecture, top_key, vocoder_parts

__all__ = ["upgrade_model_folder"]


def _source(former, folder):
    """Where a model folder was packaged from, as its former ``hyperparams.yaml`` says."""
    for line in former.splitlines():
        if line.startswith("#") and "packaged by speechbrain-sslse" in line.lower() and " from " in line:
            return line.split(" from ", 1)[1].rstrip(".")
    return str(folder)


def upgrade_model_folder(folder):
    """Rewrites the ``hyperparams.yaml`` of a model folder packaged in a former form.

    Two former forms are upgraded. Model folders packaged before the vocoder's parts were
    built in the yaml name them in the vocoder's settings (``fusion: "cross_attention"``,
    ``d_model``, ...). Model folders packaged before the SSL encoder was built from its
    architecture build it from ``ckpt: !ref <model_dir>/ssl.ckpt``, which opens the file
    while the yaml loads; a TERA encoder is now built from its architecture (read from
    ``ssl.ckpt``) and the pretrainer loads ``ssl.ckpt``. This writes the folder's
    ``hyperparams.yaml`` from the inference template, with the same parts, sizes and
    inference settings; the checkpoints and the model card are not touched, so the folder
    enhances exactly as before. The former file is checked by the restricted loader first
    and its SSL checkpoint is read weights-only.

    Arguments
    ---------
    folder : str or Path
        The model folder.

    Returns
    -------
    bool
        True when the file was rewritten, False when it was already in the current form.
    """
    from ..trust import check_hparams, model_folder_trust

    folder = Path(folder)
    path = folder / "hyperparams.yaml"
    former = path.read_text(encoding="utf-8")
    text = upgrade_vocoder_yaml(former)
    overrides = {"model_dir": str(folder.resolve())}
    tree = run_tree(text or former, overrides)
    vocoder_key = top_key(tree["modules"]["vocoder"], tree)
    if text is None and "ckpt" not in tree[vocoder_key]["encoder"]:
        return False  # the parts built in the yaml, the encoder from its architecture
    check_hparams(former, str(path))
    with model_folder_trust(False):
        hparams = load_hyperpyyaml(io.StringIO(text or former), overrides)
    encoder = hparams[vocoder_key].encoder.name
    architecture = ssl_architecture(encoder, folder / "ssl.ckpt")
    if text is None and architecture is None:
        return False  # an encoder that loads its checkpoint as it is built (not TERA)
    parts = vocoder_parts(tree, hparams, vocoder_key)
    inference = {key: hparams[key] for key in INFERENCE_DEFAULTS if key in hparams}
    new = model_hyperparams(parts, encoder, f"from {_source(former, folder)}", inference, architecture)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)
    return True
