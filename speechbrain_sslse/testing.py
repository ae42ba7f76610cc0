"""Small randomly initialised SSL checkpoints in s3prl's own formats, for tests and quick runs.

Each writer builds a model of a few thousand parameters with s3prl's own classes and
saves what s3prl's ``*_local`` loader reads, so the file loads through
``s3prl.upstream.<name>.hubconf.<name>_local`` (and through
:class:`speechbrain_sslse.lobes.SSLEncoder`) like a downloaded one:

- TERA (``tera_local``): :func:`write_tiny_tera`, the format of
  :mod:`speechbrain_sslse.tera.checkpoint`.
- HuBERT (``hubert_local``) and wav2vec 2.0 (``wav2vec2_local``): s3prl's converted,
  fairseq-free dictionary (``task_cfg``, ``model_cfg``, ``model_weight``, plus
  ``dictionaries_symbols`` for HuBERT).
- WavLM (``wavlm_local``): Microsoft's release format (``cfg``, ``model``).

The writers are deterministic in ``seed`` and leave the global random state untouched;
every file is written atomically and loads with ``torch.load(..., weights_only=True)``.

Authors
 * speechbrain-sslse contributors
"""

import dataclasses

import torch

from speechbrain_sslse.tera.checkpoint import (
    save_states,
    state_on_cpu,
    tera_tiny_config,
    write_tera_checkpoint,
)

__all__ = ["write_tiny_tera", "write_tiny_hubert", "write_tiny_wav2vec2", "write_tiny_wavlm"]

# A 7-layer convolutional front-end with the real models' strides (5 * 2**6 = 320
# samples per frame) but few channels.
TINY_CONV_LAYERS = "[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2"


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
        See :func:`speechbrain_sslse.tera.checkpoint.tera_tiny_config`.

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
        "model_weight": state_on_cpu(model),
        "dictionaries_symbols": symbols,
    }
    return save_states(states, path)


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
        "model_weight": state_on_cpu(model),
    }
    return save_states(states, path)


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
    return save_states({"cfg": _plain(dict(vars(full_cfg))), "model": state_on_cpu(model)}, path)


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


def _plain(value):
    """Configuration values as plain Python types (loadable with ``weights_only=True``)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, str):  # also str-based enums
        return str(value)
    return value
