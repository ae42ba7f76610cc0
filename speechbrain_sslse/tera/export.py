"""Export of pretrained TERA models in s3prl's checkpoint format, and the shipped small TERA.

:func:`export_tera` writes ``states-<step>.ckpt`` files that s3prl's ``tera_local``
(and therefore :class:`speechbrain_sslse.lobes.SSLEncoder`) loads unchanged; the
format itself is written by :func:`speechbrain_sslse.tera.checkpoint.write_tera_checkpoint`.
:func:`default_tera_checkpoint` is the small TERA shipped in the package, pretrained
by ``recipes/LibriSpeech/tera_pretraining`` (see its ``MODEL_CARD.md``).

Authors
 * speechbrain-sslse contributors
"""

import copy
from pathlib import Path

import torch

from speechbrain_sslse.audio import atomic_path

from .checkpoint import write_tera_checkpoint

__all__ = ["tera_config", "export_tera", "default_tera_checkpoint", "DEFAULT_TERA_CKPT"]

DEFAULT_TERA_CKPT = Path(__file__).resolve().parents[1] / "assets" / "tera_small" / "tera_small.ckpt"


def tera_config(transformer, task, audio):
    """The ``Upstream_Config`` of a TERA checkpoint from its three s3prl sections.

    ``task["position_encoding_size"]`` is set to the hidden size (s3prl requires it).

    Example
    -------
    >>> from speechbrain_sslse.tera import tera_base_config
    >>> base = tera_base_config()
    >>> cfg = tera_config(base["transformer"], dict(base["task"], position_encoding_size=1), base["audio"])
    >>> sorted(cfg), cfg["task"]["position_encoding_size"]
    (['audio', 'task', 'transformer'], 768)
    """
    config = {
        "transformer": copy.deepcopy(dict(transformer)),
        "task": copy.deepcopy(dict(task)),
        "audio": copy.deepcopy(dict(audio)),
    }
    config["task"]["position_encoding_size"] = int(config["transformer"]["hidden_size"])
    return config


def export_tera(model, config, path, step, dtype=torch.float32):
    """Writes a trained :class:`~speechbrain_sslse.tera.MaskedAcousticModel` as an s3prl TERA checkpoint.

    Arguments
    ---------
    model : speechbrain_sslse.tera.MaskedAcousticModel
        The trained model (its ``transformer`` and ``spec_head``).
    config : dict
        Its ``transformer``, ``task`` and ``audio`` sections (see :func:`tera_config`).
    path : str or Path
        Output file, conventionally ``states-<step>.ckpt``; written atomically.
    step : int
        Number of optimizer steps, stored as ``Step``.
    dtype : torch.dtype
        Storage type of the weights: ``torch.float16`` halves the file; s3prl casts
        them back to float32 when it loads them.

    Returns
    -------
    Path
        ``path``.

    Example
    -------
    >>> import tempfile, os
    >>> from speechbrain_sslse.tera import tera_tiny_config
    >>> from speechbrain_sslse.tera import MaskedAcousticModel
    >>> cfg = tera_tiny_config(hidden_size=16, num_layers=1)
    >>> model = MaskedAcousticModel(cfg["transformer"], cfg["audio"])
    >>> path = export_tera(model, cfg, os.path.join(tempfile.mkdtemp(), "states-3.ckpt"), 3, torch.float16)
    >>> states = torch.load(path, weights_only=True)
    >>> states["Step"], states["Transformer"]["input_representations.spec_transform.weight"].dtype
    (3, torch.float16)
    """
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"unsupported storage dtype {dtype}: use torch.float32, float16 or bfloat16")
    config = tera_config(config["transformer"], config["task"], config["audio"])
    path = Path(path)
    with atomic_path(path) as tmp:
        write_tera_checkpoint(
            tmp,
            config,
            state_dict=model.transformer.state_dict(),
            spec_head_state_dict=model.spec_head.state_dict(),
            step=int(step),
        )
        if dtype != torch.float32:
            states = torch.load(tmp, map_location="cpu", weights_only=True)
            for key in ("Transformer", "SpecHead"):
                states[key] = {
                    name: value.to(dtype) if value.is_floating_point() else value
                    for name, value in states[key].items()
                }
            torch.save(states, tmp)
    return path


def default_tera_checkpoint():
    """The small TERA shipped in the package (s3prl format), the default encoder of mini-corpus runs.

    It was pretrained by ``recipes/LibriSpeech/tera_pretraining`` (``hparams/tera_small.yaml``);
    ``speechbrain_sslse/assets/tera_small/MODEL_CARD.md`` says on what and for how long.

    Returns
    -------
    Path
        Path of ``tera_small.ckpt``.

    Raises
    ------
    FileNotFoundError
        If the file is not installed.

    Example
    -------
    >>> default_tera_checkpoint().name
    'tera_small.ckpt'
    """
    if not DEFAULT_TERA_CKPT.is_file():
        raise FileNotFoundError(
            f"the shipped small TERA checkpoint is missing: {DEFAULT_TERA_CKPT}. Reinstall speechbrain-sslse "
            f"(the wheel ships speechbrain_sslse/assets/tera_small/tera_small.ckpt), or pretrain one with "
            f"recipes/LibriSpeech/tera_pretraining/train.py hparams/tera_small.yaml and pass its "
            f"<output_folder>/s3prl/states-<step>.ckpt instead."
        )
    return DEFAULT_TERA_CKPT
