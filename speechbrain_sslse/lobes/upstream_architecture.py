"""s3prl upstreams built from their architecture alone, their weights loaded afterwards (TERA).

s3prl's local loaders (``tera_local``, ...) read an upstream's configuration and its weights
from one checkpoint file when the upstream is built. A model folder instead states the
encoder's architecture in its ``hyperparams.yaml`` and lets SpeechBrain's ``Pretrainer``
load the weights from ``ssl.ckpt`` (as hub models do), so that nothing is opened while the
yaml loads. For TERA:

- :func:`checkpoint_architecture` is the part of a checkpoint's configuration that s3prl
  builds the upstream from (the ``transformer`` and ``audio`` sections and the task's
  ``sequence_length``), as plain values for the yaml;
- :func:`build_from_architecture` builds the upstream ``tera_local`` builds, with s3prl's
  own classes, from that architecture: s3prl's reader gets it in memory, without weights,
  so the transformer keeps s3prl's random initialisation;
- :func:`load_weights` loads a checkpoint's transformer weights into it through s3prl's own
  loading (the same key renames), giving the module ``tera_local`` builds from the file,
  parameter for parameter; :func:`load_states` reads a checkpoint as s3prl does.

Authors
 * speechbrain-sslse contributors
"""

import io
import sys

import torch

__all__ = [
    "ARCHITECTURE_UPSTREAMS",
    "checkpoint_architecture",
    "build_from_architecture",
    "load_weights",
    "load_states",
    "plain",
]

# The s3prl entries whose upstream can be built from an architecture (TERA; the checkpoint format
# of speechbrain_sslse.tera.checkpoint).
ARCHITECTURE_UPSTREAMS = ("tera_local",)
SECTIONS = ("transformer", "task", "audio")


def plain(value):
    """A yaml value (ruamel maps and lists) as plain dicts and lists, for ``torch.save`` and ``==``."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _config(states):
    """The upstream configuration in a TERA checkpoint, where s3prl looks for it."""
    for key in ("Config", "Upstream_Config"):  # legacy checkpoints kept it in Config
        config = states.get(key) if isinstance(states, dict) else None
        if isinstance(config, dict) and "transformer" in config:
            return config
    raise ValueError("not a TERA checkpoint in s3prl's format (no transformer configuration)")


def checkpoint_architecture(states):
    """The architecture of a TERA checkpoint: what s3prl builds its upstream from.

    Arguments
    ---------
    states : dict
        A TERA checkpoint in s3prl's format, loaded (``torch.load``).

    Returns
    -------
    dict
        ``{"transformer": {...}, "task": {"sequence_length": int}, "audio": {...}}`` (a copy).

    Raises
    ------
    ValueError
        ``states`` is not a TERA checkpoint.

    Example
    -------
    >>> from speechbrain_sslse.tera.checkpoint import tera_tiny_config
    >>> arch = checkpoint_architecture({"Upstream_Config": tera_tiny_config(hidden_size=16)})
    >>> sorted(arch), arch["task"], arch["transformer"]["hidden_size"]
    (['audio', 'task', 'transformer'], {'sequence_length': 1500}, 16)
    """
    config = _config(states)
    if not isinstance(config.get("audio"), dict):
        raise ValueError("a TERA checkpoint without the audio section (s3prl needs its feature extractor)")
    task = {"sequence_length": config["task"]["sequence_length"]}
    return plain({"transformer": config["transformer"], "task": task, "audio": config["audio"]})


def build_from_architecture(name, architecture):
    """The s3prl upstream ``name`` builds, built from ``architecture`` with random weights.

    No file is opened: s3prl's ``UpstreamExpert`` reads the architecture from an in-memory
    checkpoint holding the configuration and no weights (s3prl prints which weights it did
    not find). Call it where random numbers may be drawn (``torch.random.fork_rng``).

    Arguments
    ---------
    name : str
        One of :data:`ARCHITECTURE_UPSTREAMS`.
    architecture : dict
        See :func:`checkpoint_architecture`.

    Returns
    -------
    torch.nn.Module
    """
    if name not in ARCHITECTURE_UPSTREAMS:
        raise ValueError(
            f"s3prl upstream {name!r} cannot be built from an architecture; only "
            f"{', '.join(ARCHITECTURE_UPSTREAMS)} can (the others load their checkpoint: pass ckpt=PATH)"
        )
    from s3prl.upstream.mockingjay.expert import UpstreamExpert  # what tera_local builds

    missing = [s for s in SECTIONS if not isinstance(architecture.get(s), dict)]
    if missing:
        raise ValueError(f"the architecture of {name} lacks the section(s) {', '.join(missing)}")
    config = {s: plain(architecture[s]) for s in SECTIONS}  # a copy: s3prl edits its config
    stream = io.BytesIO()
    torch.save({"Config": {}, "Upstream_Config": config, "Transformer": {}}, stream)
    stream.seek(0)
    return UpstreamExpert(stream)


def _renamed(key):
    """A weight's name as s3prl's ``load_model`` renames it (former LayerNorm names)."""
    new = key
    if "gamma" in key:
        new = key.replace("gamma", "weight")
    if "beta" in key:
        new = key.replace("beta", "bias")
    return new


def load_weights(upstream, architecture, states):
    """Loads the transformer weights of a TERA checkpoint into an upstream built from ``architecture``.

    Arguments
    ---------
    upstream : torch.nn.Module
        Built by :func:`build_from_architecture` from ``architecture``.
    architecture : dict
        Its architecture.
    states : dict
        The checkpoint, loaded.

    Raises
    ------
    ValueError
        The checkpoint is not one of this architecture (the message says what differs).
    """
    given, architecture = checkpoint_architecture(states), plain(architecture)
    if given != architecture:
        differ = [
            f"{section}.{key}"
            for section in SECTIONS
            for key in sorted(set(given[section]) | set(architecture.get(section) or {}))
            if given[section].get(key) != (architecture.get(section) or {}).get(key)
        ]
        raise ValueError(f"its architecture differs in {', '.join(differ)}")
    weights = states.get("Transformer")
    model = upstream.transformer.model
    state = model.state_dict()
    renamed = {_renamed(k): v for k, v in weights.items()} if isinstance(weights, dict) else {}
    shapes = [k for k, v in renamed.items() if k in state and tuple(v.shape) != tuple(state[k].shape)]
    if set(renamed) != set(state) or shapes:
        raise ValueError(
            f"its Transformer weights do not fit the architecture (missing: "
            f"{sorted(set(state) - set(renamed))[:3]}, unexpected: {sorted(set(renamed) - set(state))[:3]}, "
            f"other shapes: {shapes[:3]})"
        )
    upstream.transformer.model = upstream.transformer.load_model(model, dict(weights))


def load_states(path, weights_only=True):
    """A checkpoint loaded on the CPU; unpickled (``weights_only=False``) as s3prl unpickles it.

    s3prl's former checkpoints pickled a scheduler of its ``optimizers`` module, which now is
    ``s3prl.optimizers``: s3prl makes the old name point to it while unpickling, and so does
    this.
    """
    if weights_only:
        return torch.load(path, map_location="cpu", weights_only=True)
    import s3prl.optimizers

    former = sys.modules.get("optimizers")
    sys.modules["optimizers"] = s3prl.optimizers
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    finally:
        if former is None:
            del sys.modules["optimizers"]
        else:
            sys.modules["optimizers"] = former
