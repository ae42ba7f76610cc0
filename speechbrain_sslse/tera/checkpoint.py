"""The TERA checkpoint format: s3prl's ``tera_local`` dictionary, its configurations.

:func:`write_tera_checkpoint` builds TERA with s3prl's own classes and saves exactly
what ``s3prl.upstream.tera.hubconf.tera_local`` reads (``Transformer`` and ``SpecHead``
state dicts, ``Upstream_Config`` with the ``transformer`` / ``task`` / ``audio``
sections, the runner ``Config`` and ``Step``), so a file written here loads like a
downloaded one; :func:`speechbrain_sslse.tera.export_tera` uses it to export trained
weights and :func:`speechbrain_sslse.testing.write_tiny_tera` for small random ones.
Every file is written atomically and holds only tensors and plain Python values, so it
also loads with ``torch.load(..., weights_only=True)``.

Authors
 * speechbrain-sslse contributors
"""

import copy
from pathlib import Path

import torch

from speechbrain_sslse.audio import atomic_path

__all__ = [
    "TERA_SECTIONS",
    "feature_dims",
    "save_states",
    "state_on_cpu",
    "tera_base_config",
    "tera_tiny_config",
    "write_tera_checkpoint",
]

TERA_SECTIONS = ("transformer", "task", "audio")


def tera_base_config():
    """The upstream configuration of TERA base (logMelBase-T-F-M, 960 h, dropout 0.1).

    3 transformer layers x 768 (12 heads, feed-forward 3072), 80-dim log-Mel input
    with per-utterance CMVN at 100 Hz (25 ms window, 10 ms hop), utterances scaled
    to -25 dB first; this is s3prl's ``pretrain/tera/exp_model_config/logMelBase-T-F-M.yaml``
    with the 0.1 dropout of the ``tera`` default model (``..._960hr_drop1``).

    Returns
    -------
    dict
        A fresh nested dictionary (``transformer``, ``task``, ``audio``).

    Example
    -------
    >>> cfg = tera_base_config()
    >>> cfg["transformer"]["hidden_size"], cfg["transformer"]["num_hidden_layers"]
    (768, 3)
    >>> cfg["audio"]["input"]["feat_type"], cfg["audio"]["n_mels"]
    ('mel', 80)
    """
    return {
        "transformer": {
            "input_dim": -1,
            "hidden_size": 768,
            "num_hidden_layers": 3,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "initializer_range": 0.02,
            "layer_norm_eps": 1.0e-12,
            "share_layer": False,
            "pre_layer_norm": False,
        },
        "task": {
            "loss": "L1",
            "sequence_length": 1500,
            "position_encoding_size": 768,
            "mask_proportion": 0.15,
            "mask_consecutive_min": 7,
            "mask_consecutive_max": 7,
            "mask_allow_overlap": True,
            "mask_bucket_ratio": 1.5,
            "mask_frequency": 0.2,
            "noise_proportion": 0.15,
        },
        "audio": {
            "target_level": -25,
            "win_ms": 25,
            "hop_ms": 10,
            "n_freq": 201,
            "n_mels": 80,
            "n_mfcc": 13,
            "input": {"feat_type": "mel", "channel": 0, "log": True, "delta": 0, "cmvn": True},
            "target": {"feat_type": "mel", "channel": 1, "log": True, "delta": 0, "cmvn": True},
        },
    }


def tera_tiny_config(hidden_size=32, num_layers=2, **overrides):
    """A small TERA configuration (same input features as TERA base).

    Arguments
    ---------
    hidden_size : int
        Transformer width (also the position-encoding size).
    num_layers : int
        Number of transformer layers (s3prl returns ``num_layers + 1`` hidden states).
    **overrides
        Keys of the ``transformer`` section (e.g. ``num_attention_heads=4``), or whole
        sections (``task={...}``, ``audio={...}``) merged into the configuration.

    Returns
    -------
    dict

    Example
    -------
    >>> cfg = tera_tiny_config(hidden_size=16, num_layers=1, intermediate_size=24)
    >>> cfg["transformer"]["intermediate_size"], cfg["task"]["position_encoding_size"]
    (24, 16)
    """
    transformer = {
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": 2 if hidden_size % 2 == 0 else 1,
        "intermediate_size": 2 * hidden_size,
    }
    sections = {}
    for key, value in overrides.items():
        if key in TERA_SECTIONS:
            sections[key] = value
        elif key in tera_base_config()["transformer"]:
            transformer[key] = value
        else:
            raise ValueError(
                f"unknown TERA setting {key!r}: pass a key of the transformer section "
                f"({', '.join(tera_base_config()['transformer'])}) or a section dict "
                f"({', '.join(TERA_SECTIONS)})"
            )
    sections["transformer"] = {**transformer, **sections.get("transformer", {})}
    config = _merge(tera_base_config(), sections)
    config["task"]["position_encoding_size"] = config["transformer"]["hidden_size"]
    return config


def write_tera_checkpoint(
    path, config_overrides=None, state_dict=None, spec_head_state_dict=None, seed=0, step=0
):
    """Writes a TERA checkpoint that ``s3prl``'s ``tera_local`` loads.

    Without ``state_dict`` the transformer is randomly initialised (s3prl's own
    initialisation, seeded). To export trained weights, pass the state dict of an
    ``s3prl.upstream.mockingjay.model.TransformerModel`` built from the same
    configuration (and, optionally, of its ``TransformerSpecPredictionHead``); both
    are checked against the configuration before anything is written.

    Arguments
    ---------
    path : str or Path
        Where to write the checkpoint (conventionally ``states-<step>.ckpt``).
    config_overrides : dict, optional
        Nested overrides merged into :func:`tera_base_config`
        (e.g. ``{"transformer": {"hidden_size": 256}}``).
    state_dict : dict, optional
        Transformer weights (keys as in s3prl's ``TransformerModel``).
    spec_head_state_dict : dict, optional
        Weights of the spectrogram prediction head used in pretraining.
    seed : int
        Seed of the random initialisation of what is not given.
    step : int
        Training step recorded in the checkpoint.

    Returns
    -------
    Path
        ``path``.

    Example
    -------
    >>> import tempfile, os, torch
    >>> ckpt = write_tera_checkpoint(
    ...     os.path.join(tempfile.mkdtemp(), "states-0.ckpt"),
    ...     {"transformer": {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
    ...                      "intermediate_size": 32}},
    ... )
    >>> states = torch.load(ckpt, weights_only=True)
    >>> sorted(states)
    ['Config', 'SpecHead', 'Step', 'Transformer', 'Upstream_Config']
    >>> states["Transformer"]["input_representations.spec_transform.weight"].shape
    torch.Size([16, 80])
    """
    from s3prl.upstream.mockingjay.model import (
        TransformerConfig,
        TransformerModel,
        TransformerSpecPredictionHead,
    )

    config = _merge(tera_base_config(), config_overrides or {})
    transformer_cfg = config["transformer"]
    # s3prl adds a sinusoidal table of this size to the projected input.
    config["task"]["position_encoding_size"] = transformer_cfg["hidden_size"]
    try:
        model_config = TransformerConfig(transformer_cfg)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"invalid TERA transformer configuration {transformer_cfg}: {err}") from err
    if model_config.hidden_size % model_config.num_attention_heads:
        raise ValueError(
            f"TERA hidden_size {model_config.hidden_size} is not a multiple of "
            f"num_attention_heads {model_config.num_attention_heads}"
        )
    input_dim, target_dim = feature_dims(config["audio"])

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = TransformerModel(model_config, input_dim)
        spec_head = TransformerSpecPredictionHead(model_config, target_dim)
    _load_checked(transformer, state_dict, "TERA transformer")
    _load_checked(spec_head, spec_head_state_dict, "TERA spectrogram head")

    states = {
        # The runner configuration of a pretraining run; it has no "transformer" key,
        # which is how s3prl recognises the current checkpoint layout.
        "Config": {"runner": {"total_steps": int(step)}},
        "Upstream_Config": config,
        "Transformer": state_on_cpu(transformer),
        "SpecHead": state_on_cpu(spec_head),
        "Step": int(step),
    }
    return save_states(states, path)


def feature_dims(audio_config):
    """Input and target feature sizes of an s3prl ``audio`` section, as s3prl computes them.

    Arguments
    ---------
    audio_config : dict
        The ``audio`` section of a TERA configuration.

    Returns
    -------
    tuple of int
        ``(input_dim, target_dim)``.

    Example
    -------
    >>> feature_dims(tera_base_config()["audio"])
    (80, 80)
    """
    from s3prl.upstream.baseline.preprocessor import get_preprocessor

    audio_config = dict(audio_config)
    if "kaldi" in audio_config:
        raise ValueError("Kaldi-feature TERA checkpoints are not supported; use on-the-fly 'input' features")
    _, input_dim, target_dim = get_preprocessor(copy.deepcopy(audio_config), process_input_only=True)
    return input_dim, target_dim


def _load_checked(module, state_dict, what):
    """Loads ``state_dict`` into ``module`` strictly, with a clear error."""
    if state_dict is None:
        return
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        raise ValueError(f"the {what} weights do not match the configuration: {err}") from err


def state_on_cpu(module):
    """A detached CPU copy of a module's state dict (what a checkpoint file stores).

    Arguments
    ---------
    module : torch.nn.Module
        The model.

    Returns
    -------
    dict
        ``{name: tensor}``.

    Example
    -------
    >>> sorted(state_on_cpu(torch.nn.Linear(2, 1)))
    ['bias', 'weight']
    """
    return {key: value.detach().cpu().clone() for key, value in module.state_dict().items()}


def _merge(base, overrides):
    """Recursively merges ``overrides`` into a copy of ``base``."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def save_states(states, path):
    """Saves a checkpoint dictionary atomically (a killed run leaves no partial file).

    Arguments
    ---------
    states : dict
        Tensors and plain Python values.
    path : str or Path
        Output file.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(states, tmp)
    return path
