"""The models a probe compares: s3prl upstreams from local checkpoints, plus the log-mel reference.

A model is given as a dictionary (one entry of a recipe's ``models`` list)::

    {name: TERA, upstream: tera, ckpt: /path/states-1000000.ckpt}

``upstream`` is any s3prl upstream name, ``ckpt`` a local checkpoint in the format
of that upstream's ``*_local`` loader (or None), extra keys go to the encoder. The
special upstream ``logmel`` builds :class:`~speechbrain_sslse.probing.features.LogMelEncoder`.
A model that cannot be built here (its checkpoint is missing, or a hub name without
a checkpoint, since there is no model hub access) is *skipped* with the reason,
so a comparison runs with whatever is available.

Authors
 * speechbrain-sslse contributors
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from speechbrain_sslse.lobes.ssl_encoder import CheckpointError, SSLEncoder, UpstreamUnavailableError

from .features import LogMelEncoder

__all__ = [
    "ProbeModel",
    "SkippedModel",
    "load_models",
    "tiny_checkpoint",
    "TINY_WARNING",
    "load_recipe_models",
    "start_recipe",
    "LOGMEL_UPSTREAMS",
]

logger = logging.getLogger(__name__)

LOGMEL_UPSTREAMS = ("logmel", "log-mel", "log_mel")

TINY_WARNING = (
    "RANDOM WEIGHTS: models marked 'tiny random' are tiny randomly initialised checkpoints in the "
    "real s3prl formats, written because no pretrained checkpoint was given. Their numbers say "
    "nothing about the real SSL models; pass real checkpoints (e.g. --tera_ckpt=PATH) for that."
)


@dataclass
class ProbeModel:
    """A model ready to probe.

    Attributes
    ----------
    name : str
        Name shown in tables (``"... (tiny random)"`` for tiny random checkpoints).
    upstream : str
        The s3prl upstream name, or ``"logmel"``.
    encoder : torch.nn.Module
        Returns ``[L, B, F, D]`` hidden states and ``[B]`` frame counts.
    ckpt : str or None
        The checkpoint it was loaded from.
    tiny : bool
        True for a tiny random-weight checkpoint.
    """

    name: str
    upstream: str
    encoder: object
    ckpt: str | None = None
    tiny: bool = False
    info: dict = field(default_factory=dict)

    @property
    def key(self):
        """A file-name-safe identifier of the model."""
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name)


@dataclass
class SkippedModel:
    """A model that could not be built, and why."""

    name: str
    upstream: str
    reason: str


def tiny_checkpoint(upstream, folder, seed=0):
    """Writes (once) a tiny random-weight checkpoint for ``upstream``, in its real s3prl format.

    Arguments
    ---------
    upstream : str
        An s3prl name of the TERA, HuBERT, WavLM or wav2vec 2.0 families
        (``tera``, ``hubert_base``, ``wavlm_local``, ``wav2vec2``, ...).
    folder : str or Path
        Where the checkpoint is written (reused when already there).
    seed : int
        Seed of the random weights.

    Returns
    -------
    Path or None
        The checkpoint, or None when there is no tiny writer for that family.

    Example
    -------
    >>> import tempfile
    >>> tiny_checkpoint("tera", tempfile.mkdtemp()).name
    'tiny_tera_seed0.ckpt'
    >>> tiny_checkpoint("apc", tempfile.mkdtemp()) is None
    True
    """
    from speechbrain_sslse import testing

    writers = (
        ("tera", testing.write_tiny_tera, "ckpt"),
        ("hubert", testing.write_tiny_hubert, "pt"),
        ("wavlm", testing.write_tiny_wavlm, "pt"),
        ("wav2vec2", testing.write_tiny_wav2vec2, "pt"),
    )
    for family, writer, ext in writers:
        if upstream.lower().startswith(family):
            path = Path(folder) / f"tiny_{family}_seed{seed}.{ext}"
            if not path.is_file():
                writer(path, seed=seed)
            return path
    return None


def _build(entry, device, tiny_folder, seed):
    name = str(entry.get("name") or entry.get("upstream"))
    upstream = str(entry.get("upstream", ""))
    extra = {k: v for k, v in entry.items() if k not in ("name", "upstream", "ckpt")}
    if upstream.lower() in LOGMEL_UPSTREAMS:
        encoder = LogMelEncoder(**extra)
        return ProbeModel(name, "logmel", encoder.to(device).eval())
    ckpt = entry.get("ckpt")
    tiny = False
    if ckpt in (None, "") and tiny_folder is not None:
        ckpt = tiny_checkpoint(upstream, tiny_folder, seed=seed)
        tiny = ckpt is not None
        if tiny:
            name = f"{name} (tiny random)"
    encoder = SSLEncoder(upstream, ckpt=ckpt, **extra)
    return ProbeModel(name, upstream, encoder.to(device).eval(), str(ckpt) if ckpt else None, tiny)


def load_models(entries, baseline=None, device="cpu", tiny_folder=None, seed=0):
    """Builds the models of a probe; those that cannot be built here are skipped.

    Arguments
    ---------
    entries : list of dict
        ``{name, upstream, ckpt, **encoder_kwargs}`` (see the module docstring).
    baseline : dict, optional
        The reference entry (e.g. ``{name: log-mel, upstream: logmel}``), put first.
    device : str
        Where the encoders run.
    tiny_folder : str or Path, optional
        When given, an entry without ``ckpt`` gets a tiny random-weight checkpoint
        written there (TERA, HuBERT, WavLM, wav2vec 2.0 families); its name gets
        ``" (tiny random)"``. When None, such an entry is skipped (no hub access).
    seed : int
        Seed of the tiny checkpoints' weights.

    Returns
    -------
    models : list of ProbeModel
    skipped : list of SkippedModel

    Raises
    ------
    ValueError
        Unknown upstream names and malformed entries (a configuration error, not
        an unavailable model).

    Example
    -------
    >>> models, skipped = load_models([{"name": "HuBERT", "upstream": "hubert"}],
    ...                               baseline={"name": "log-mel", "upstream": "logmel"})
    >>> [m.name for m in models], [s.name for s in skipped]
    (['log-mel'], ['HuBERT'])
    >>> "no hub access" in skipped[0].reason
    True
    """
    entries = ([baseline] if baseline else []) + list(entries or [])
    models, skipped = [], []
    names = set()
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("upstream"):
            raise ValueError(f"model entry {entry!r} must be a mapping with at least 'upstream' (and 'name')")
        name = str(entry.get("name") or entry["upstream"])
        if name in names:
            raise ValueError(f"two models are named {name!r}: give each entry a distinct 'name'")
        names.add(name)
        try:
            model = _build(entry, device, tiny_folder, seed)
        except (UpstreamUnavailableError, FileNotFoundError, CheckpointError) as err:
            reason = str(err).splitlines()[0]
            logger.warning("model %s skipped: %s", name, reason)
            skipped.append(SkippedModel(name, str(entry["upstream"]), reason))
            continue
        enc = model.encoder
        model.info = {
            "layers": int(enc.num_layers),
            "dim": int(enc.hidden_size),
            "hop": int(enc.hop_length),
            "s3prl": model.upstream if model.upstream == "logmel" else enc.name,
        }
        models.append(model)
    return models, skipped


def load_recipe_models(entries, baseline, device, tiny_folder, seed):
    """The models of a probing recipe: :func:`load_models` with the recipe's checks.

    Arguments
    ---------
    entries, baseline, device, tiny_folder, seed
        As for :func:`load_models` (``tiny_folder`` None: models without a checkpoint
        are skipped).

    Returns
    -------
    models : list of ProbeModel
    skipped : list of SkippedModel

    Raises
    ------
    RuntimeError
        When SSL models were asked for and none could be loaded (the log-mel row alone
        compares nothing).
    """
    models, skipped = load_models(
        entries, baseline=baseline, device=device, tiny_folder=tiny_folder, seed=seed
    )
    if entries and all(m.upstream == "logmel" for m in models):
        raise RuntimeError(
            "no SSL model could be loaded: "
            + "; ".join(f"{s.name}: {s.reason}" for s in skipped)
            + ". Pass local checkpoints (e.g. --tera_ckpt=PATH) or --tiny_checkpoints=True."
        )
    if any(m.tiny for m in models):
        logger.warning(TINY_WARNING)
    return models, skipped


def start_recipe(argv):
    """Parses a probing recipe's command line, loads its hparams and creates its output folder.

    Arguments
    ---------
    argv : list of str
        ``HPARAMS_FILE [--key=value ...]`` as on SpeechBrain recipe command lines.

    Returns
    -------
    hparams : dict
        The loaded hyperparameters (overrides applied).
    device : str
        ``run_opts["device"]``, else ``cuda`` when available, else ``cpu``.
    progress : bool
        False with ``--noprogressbar``.
    """
    import speechbrain as sb
    import torch
    from hyperpyyaml import load_hyperpyyaml

    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"], hyperparams_to_save=hparams_file, overrides=overrides
    )
    device = run_opts["device"] or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(hparams["seed"])
    return hparams, device, not run_opts["noprogressbar"]
