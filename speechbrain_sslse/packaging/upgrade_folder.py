"""Upgrading a model folder packaged in a former form: :func:`upgrade_model_folder`.

The folder's ``hyperparams.yaml`` is written again from the inference template, with the
same parts, sizes and inference settings; its checkpoints and model card are not touched,
so it enhances exactly as before.

Authors
 * speechbrain-sslse contributors
"""

import io
import os
from pathlib import Path

from hyperpyyaml import load_hyperpyyaml

from ..upgrade import upgrade_vocoder_yaml
from .hparams import INFERENCE_DEFAULTS, model_hyperparams, run_tree, top_key, vocoder_parts

__all__ = ["upgrade_model_folder"]


def upgrade_model_folder(folder):
    """Rewrites the ``hyperparams.yaml`` of a model folder packaged in the former settings form.

    Model folders packaged before the vocoder's parts were built in the yaml name them in
    the vocoder's settings (``fusion: "cross_attention"``, ``d_model``, ...). This writes
    the folder's ``hyperparams.yaml`` from the inference template instead, with the same
    parts, sizes and inference settings; the checkpoints and the model card are not
    touched, so the folder enhances exactly as before. The former file is checked by the
    restricted loader first and its SSL checkpoint is read weights-only.

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
    if text is None:
        return False
    check_hparams(former, str(path))
    overrides = {"model_dir": str(folder.resolve())}
    with model_folder_trust(False):
        hparams = load_hyperpyyaml(io.StringIO(text), overrides)
    tree = run_tree(text, overrides)
    vocoder_key = top_key(tree["modules"]["vocoder"], tree)
    parts = vocoder_parts(tree, hparams, vocoder_key)
    inference = {key: hparams[key] for key in INFERENCE_DEFAULTS if key in hparams}
    header = (former.splitlines() or [""])[1]
    source = header.split(" from ", 1)[1].rstrip(".") if " from " in header else str(folder)
    new = model_hyperparams(parts, hparams[vocoder_key].encoder.name, f"from {source}", inference)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)
    return True
