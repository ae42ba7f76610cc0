"""SSL checkpoints in s3prl's own on-disk formats.

These writers build models with s3prl's own classes and save exactly what s3prl's
``*_local`` loaders read, so a checkpoint written here loads through
``s3prl.upstream.<name>.hubconf.<name>_local`` (and through
:class:`speechbrain_sslse.lobes.SSLEncoder`) like a downloaded one:

- TERA (``tera_local``): the dictionary a TERA pretraining run saves
  (``Transformer`` and ``SpecHead`` state dicts, ``Upstream_Config`` with the
  ``transformer`` / ``task`` / ``audio`` sections, the runner ``Config`` and ``Step``).
  :func:`write_tera_checkpoint` also exports trained weights.
- HuBERT (``hubert_local``) and wav2vec 2.0 (``wav2vec2_local``): s3prl's converted,
  fairseq-free dictionary (``task_cfg``, ``model_cfg``, ``model_weight``, plus
  ``dictionaries_symbols`` for HuBERT).
- WavLM (``wavlm_local``): Microsoft's release format (``cfg``, ``model``).

The ``write_tiny_*`` functions write small randomly initialised models (a few
thousand parameters) for tests and quick CPU schedules; they are deterministic in
``seed`` and leave the global random state untouched. Every file is written
atomically and contains only tensors and plain Python values, so it also loads
with ``torch.load(..., weights_only=True)``.

Authors
 * speechbrain-sslse contributors
"""

import copy
import dataclasses
from pathlib import Path

import torch

from speechbrain_sslse.audio import atomic_path

__all__ = [
    "tera_base_config",
    "tera_tiny_config",
    "write_tera_checkpoint",
    "write_tiny_tera",
    "write_tiny_hubert",
    "write_tiny_wav2vec2",
    "write_tiny_wavlm",
]

TERA_SECTIONS = ("transformer", "task", "audio")

# A 7-layer convolutional front-end with the real models' strides (5 * 2**6 = 320
# samples per frame) but few channels.
TINY_CONV_LAYERS = "[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2"


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
    input_dim, target_dim = _tera_feature_dims(config["audio"])

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
        "Transformer": _cpu_state(transformer),
        "SpecHead": _cpu_state(spec_head),
        "Step": int(step),
    }
    return _save(states, path)


def write_tiny_tera(path, hidden_size=32, num_layers=2, seed=0, **overrides):
    """Writes a small randomly initialised TERA checkpoint (s3prl's ``tera_local`` format).

    The input features are TERA base's (80-dim log-Mel, CMVN, 100 Hz), only the
    transformer is small; s3prl returns ``num_layers + 1`` hidden states of
    ``hidden_size`` at 160 samples per frame.

    Arguments
    ---------
    path : str or Path
        Where to write the checkpoint.
    hidden_size : int
        Transformer width.
    num_layers : int
        Number of transformer layers.
    seed : int
        Seed of the random initialisation.
    **overrides
        See :func:`tera_tiny_config`.

    Returns
    -------
    Path
        ``path``.

    Example
    -------
    >>> import tempfile, os
    >>> from speechbrain_sslse.lobes import SSLEncoder
    >>> ckpt = write_tiny_tera(os.path.join(tempfile.mkdtemp(), "tera.ckpt"), hidden_size=16)
    >>> encoder = SSLEncoder("tera_local", ckpt=ckpt)  # s3prl's tera_local underneath
    >>> hidden, frame_lens = encoder(torch.randn(1, 3200))
    >>> tuple(hidden.shape), frame_lens.tolist()
    ((3, 1, 21, 16), [21])
    """
    config = tera_tiny_config(hidden_size=hidden_size, num_layers=num_layers, **overrides)
    return write_tera_checkpoint(path, config_overrides=config, seed=seed)


def write_tiny_hubert(path, seed=0, hidden_size=32, num_layers=2, num_classes=16, **overrides):
    """Writes a small randomly initialised HuBERT in s3prl's converted format (``hubert_local``).

    The dictionary holds ``task_cfg``, ``model_cfg``, ``model_weight`` and
    ``dictionaries_symbols``, what s3prl's ``hubert/convert.py`` produces from a
    fairseq checkpoint, so no fairseq is needed to load it. The convolutional
    front-end has HuBERT base's strides (320 samples per frame) with 32 channels.

    Arguments
    ---------
    path : str or Path
        Where to write the checkpoint.
    seed : int
        Seed of the random initialisation.
    hidden_size : int
        Transformer width (``encoder_embed_dim``).
    num_layers : int
        Transformer layers (s3prl returns ``num_layers + 1`` hidden states).
    num_classes : int
        Size of the (dummy) pretraining label dictionary.
    **overrides
        Any field of s3prl's ``HubertConfig``.

    Returns
    -------
    Path
        ``path``.

    Example
    -------
    >>> import tempfile, os
    >>> from s3prl.upstream.hubert.hubconf import hubert_local
    >>> ckpt = write_tiny_hubert(os.path.join(tempfile.mkdtemp(), "hubert.pt"))
    >>> hidden = hubert_local(str(ckpt))([torch.randn(16000)])["hidden_states"]
    >>> len(hidden), tuple(hidden[-1].shape)
    (3, (1, 49, 32))
    """
    from s3prl.upstream.hubert.hubert_model import (
        HubertConfig,
        HubertModel,
        HubertPretrainingConfig,
    )

    model_cfg = _tiny_fairseq_config(HubertConfig, hidden_size, num_layers, label_rate=50.0, **overrides)
    task_cfg = HubertPretrainingConfig(label_rate=model_cfg.label_rate, normalize=False)
    symbols = [[str(i) for i in range(num_classes)]]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HubertModel(model_cfg, task_cfg, symbols)
    states = {
        "task_cfg": _plain(dataclasses.asdict(task_cfg)),
        "model_cfg": _plain(dataclasses.asdict(model_cfg)),
        "model_weight": _cpu_state(model),
        "dictionaries_symbols": symbols,
    }
    return _save(states, path)


def write_tiny_wav2vec2(path, seed=0, hidden_size=32, num_layers=2, **overrides):
    """Writes a small randomly initialised wav2vec 2.0 in s3prl's converted format (``wav2vec2_local``).

    Arguments
    ---------
    path : str or Path
        Where to write the checkpoint.
    seed : int
        Seed of the random initialisation.
    hidden_size : int
        Transformer width.
    num_layers : int
        Transformer layers.
    **overrides
        Any field of s3prl's ``Wav2Vec2Config``.

    Returns
    -------
    Path
        ``path``.

    Example
    -------
    >>> import tempfile, os
    >>> from s3prl.upstream.wav2vec2.hubconf import wav2vec2_local
    >>> ckpt = write_tiny_wav2vec2(os.path.join(tempfile.mkdtemp(), "w2v2.pt"))
    >>> hidden = wav2vec2_local(str(ckpt))([torch.randn(16000)])["hidden_states"]
    >>> len(hidden), tuple(hidden[-1].shape)
    (3, (1, 49, 32))
    """
    from s3prl.upstream.wav2vec2.wav2vec2_model import (
        AudioPretrainingConfig,
        Wav2Vec2Config,
        Wav2Vec2Model,
    )

    defaults = {"latent_vars": 8, "latent_dim": 16}
    model_cfg = _tiny_fairseq_config(Wav2Vec2Config, hidden_size, num_layers, **{**defaults, **overrides})
    task_cfg = AudioPretrainingConfig(normalize=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Wav2Vec2Model(model_cfg)
    states = {
        "task_cfg": _plain(dataclasses.asdict(task_cfg)),
        "model_cfg": _plain(dataclasses.asdict(model_cfg)),
        "model_weight": _cpu_state(model),
    }
    return _save(states, path)


def write_tiny_wavlm(path, seed=0, hidden_size=32, num_layers=2, **overrides):
    """Writes a small randomly initialised WavLM in its release format (``wavlm_local``).

    Like WavLM base, it uses gated relative position embeddings.

    Arguments
    ---------
    path : str or Path
        Where to write the checkpoint.
    seed : int
        Seed of the random initialisation.
    hidden_size : int
        Transformer width.
    num_layers : int
        Transformer layers.
    **overrides
        Any attribute of s3prl's ``WavLMConfig``.

    Returns
    -------
    Path
        ``path``.

    Example
    -------
    >>> import tempfile, os
    >>> from s3prl.upstream.wavlm.hubconf import wavlm_local
    >>> ckpt = write_tiny_wavlm(os.path.join(tempfile.mkdtemp(), "wavlm.pt"))
    >>> hidden = wavlm_local(str(ckpt))([torch.randn(16000)])["hidden_states"]
    >>> len(hidden), tuple(hidden[-1].shape)
    (3, (1, 49, 32))
    """
    from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

    cfg = {
        "extractor_mode": "default",
        "encoder_layers": num_layers,
        "encoder_embed_dim": hidden_size,
        "encoder_ffn_embed_dim": 2 * hidden_size,
        "encoder_attention_heads": 2,
        "conv_feature_layers": TINY_CONV_LAYERS,
        "conv_pos": 16,
        "conv_pos_groups": 4,
        "relative_position_embedding": True,
        "num_buckets": 32,
        "max_distance": 128,
        "gru_rel_pos": True,
        "normalize": False,
    }
    reference = WavLMConfig()
    for key in overrides:
        if not hasattr(reference, key):
            raise ValueError(f"unknown WavLM setting {key!r}: see s3prl.upstream.wavlm.WavLM.WavLMConfig")
    cfg.update(overrides)
    full_cfg = WavLMConfig(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = WavLM(full_cfg)
    return _save({"cfg": _plain(dict(vars(full_cfg))), "model": _cpu_state(model)}, path)


def _tiny_fairseq_config(config_class, hidden_size, num_layers, **overrides):
    """A small fairseq-style model configuration (HuBERT / wav2vec 2.0 dataclasses)."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown {config_class.__name__} settings {unknown}: see s3prl's dataclass")
    values = {
        "encoder_layers": num_layers,
        "encoder_embed_dim": hidden_size,
        "encoder_ffn_embed_dim": 2 * hidden_size,
        "encoder_attention_heads": 2,
        "conv_feature_layers": TINY_CONV_LAYERS,
        "conv_pos": 16,
        "conv_pos_groups": 4,
        "final_dim": 16,
    }
    values.update(overrides)
    return config_class(**values)


def _tera_feature_dims(audio_config):
    """Input and target feature sizes of a TERA ``audio`` section, as s3prl computes them."""
    from s3prl.upstream.baseline.preprocessor import get_preprocessor

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


def _cpu_state(module):
    return {key: value.detach().cpu().clone() for key, value in module.state_dict().items()}


def _plain(value):
    """Configuration values as plain Python types (loadable with ``weights_only=True``)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, str):  # also str-based enums
        return str(value)
    return value


def _merge(base, overrides):
    """Recursively merges ``overrides`` into a copy of ``base``."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _save(states, path):
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(states, tmp)
    return path


def resolve_ssl_checkpoint(ckpt=None, workdir=".", upstream="tera"):
    """The SSL checkpoint a recipe should use when the user may not have given one.

    - ``ckpt`` given: returned unchanged;
    - otherwise, for TERA: the small TERA shipped in the package
      (:func:`speechbrain_sslse.tera.default_tera_checkpoint`) when installed, else a
      randomly initialised tiny TERA written to ``workdir/random_tiny_tera.ckpt``, with a
      warning (its features carry no pretrained knowledge).

    Arguments
    ---------
    ckpt : str or None
        A checkpoint path, or None.
    workdir : str
        Where a random fallback checkpoint is written.
    upstream : str
        The s3prl upstream name the checkpoint is for.

    Returns
    -------
    str

    Example
    -------
    >>> resolve_ssl_checkpoint("/models/tera/states-1000000.ckpt")
    '/models/tera/states-1000000.ckpt'
    """
    import logging

    logger = logging.getLogger(__name__)
    if ckpt not in (None, "", "null", "None"):
        return str(ckpt)
    if not str(upstream).startswith("tera"):
        raise ValueError(
            f"no checkpoint given for the s3prl upstream {upstream!r}: pass ssl_ckpt=/path/to/checkpoint"
        )
    try:
        from speechbrain_sslse.tera import default_tera_checkpoint

        path = default_tera_checkpoint()
        logger.info("SSL encoder: the small TERA shipped in the package (%s)", path)
        return str(path)
    except (ImportError, FileNotFoundError):
        path = Path(workdir) / "random_tiny_tera.ckpt"
        if not path.is_file():
            write_tiny_tera(path, hidden_size=64, num_layers=3, seed=0)
        logger.warning(
            "SSL encoder: no pretrained TERA available, using a RANDOMLY INITIALISED tiny TERA (%s). "
            "Pass ssl_ckpt=/path/to/tera.ckpt for a real one.",
            path,
        )
        return str(path)
