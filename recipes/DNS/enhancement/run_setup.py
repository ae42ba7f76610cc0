"""What ``train.py`` sets up before training: its command line, the checks, the data, the workers.

Override files (``hparams/overrides/*.args``) and SpeechBrain's overrides as a dict with
absolute paths; the refusal of the paper's setting without an SSL checkpoint; the data
folder (or the embedded mini corpus); data-loader workers sized to the machine; the SSL
encoder named in the log; and ``init_from``, a new run started from another's generator.

Authors
 * speechbrain-sslse contributors
"""

import logging
import os
from pathlib import Path

import speechbrain as sb
import torch
from ruamel.yaml import YAML
from speechbrain.utils.distributed import run_on_main
from speechbrain.utils.parameter_transfer import Pretrainer

from speechbrain_sslse.lobes.mask_head import expand_filter_taps

logger = logging.getLogger(__name__)


OVERRIDES_FOLDER = Path(__file__).resolve().parent / "hparams" / "overrides"


def override_args(path):
    """The ``--key=value`` arguments of an override file (``hparams/overrides/*.args``).

    What ``$(grep -v '^#' FILE)`` gives on the command line: the comment lines left out, the
    rest split at white space.

    Example
    -------
    >>> override_args(OVERRIDES_FOLDER / "paper.args")[:2]
    ['--number_of_epochs=250', '--steps_per_epoch=2000']
    """
    lines = Path(path).read_text().splitlines()
    return " ".join(line for line in lines if not line.startswith("#")).split()


def parse_overrides(overrides):
    """SpeechBrain's overrides (the yaml text ``sb.parse_arguments`` makes of ``--key=value``) as a dict.

    A key given twice takes its last value: overrides typed after an override file's win.

    Example
    -------
    >>> parse_overrides("batch_size: 16\\nlr: 0.1\\nbatch_size: 8")
    {'batch_size': 8, 'lr': 0.1}
    """
    if not isinstance(overrides, str):
        return dict(overrides or {})
    yaml, out, entry = YAML(typ="rt"), {}, []
    for line in [*overrides.splitlines(), ""]:
        if entry and not line.startswith((" ", "\t")):  # one top-level key and its indented lines
            out.update(dict(yaml.load("\n".join(entry)) or {}))
            entry = []
        if line.strip():
            entry.append(line)
    return out


NO_SSL_CHECKPOINT = (None, "", "null", "None")
PATH_KEYS = (
    "output_folder",
    "save_folder",
    "manifest_folder",
    "data_folder",
    "mini_corpus_folder",
    "ssl_ckpt",
)


def absolute_paths(overrides):
    """``overrides`` with the relative paths given for :data:`PATH_KEYS` made absolute.

    The run's ``hyperparams.yaml`` then records where its data, manifests and SSL
    checkpoint are, whatever folder the run is later packaged or evaluated from.

    Example
    -------
    >>> import os
    >>> absolute_paths({"data_folder": "data/DNS", "lr": 0.1})["data_folder"] == os.path.abspath("data/DNS")
    True
    """
    out = dict(overrides)
    for key in PATH_KEYS:
        value = out.get(key)
        if isinstance(value, str) and value not in NO_SSL_CHECKPOINT and not os.path.isabs(value):
            out[key] = os.path.abspath(os.path.expanduser(value))
    return out


def check_ssl_checkpoint(hparams_file, overrides):
    """Refuses a setting with ``require_ssl_ckpt: True`` (``overrides/paper.args``) and no ``ssl_ckpt``.

    Without ``ssl_ckpt`` the recipe falls back to the small TERA shipped in the package,
    which is right for the CPU settings and wrong for the paper's setting (TERA base,
    960 h): a paper-sized run would otherwise train for days on the wrong encoder.
    ``--require_ssl_ckpt=False`` allows it explicitly.

    Arguments
    ---------
    hparams_file : str or Path
        The recipe's hparams file.
    overrides : dict
        The overrides in force (override file and command line, as from :func:`parse_overrides`).
    """
    with open(hparams_file) as f:
        raw_hparams = YAML(typ="rt").load(f)

    hparams = {**dict(raw_hparams), **overrides}
    if hparams.get("require_ssl_ckpt", False) and hparams.get("ssl_ckpt") in NO_SSL_CHECKPOINT:
        raise ValueError(
            f"{hparams_file} with require_ssl_ckpt=True (hparams/overrides/paper.args) is the paper's "
            "setting, which needs "
            "a real SSL checkpoint: pass --ssl_ckpt=/path/to/tera/states-1000000.ckpt (TERA base in "
            "s3prl's format; any s3prl upstream with --ssl_upstream). Without --ssl_ckpt the small TERA "
            "shipped in the package would be used; to train the paper's setting on it anyway, pass "
            "--require_ssl_ckpt=False."
        )


def size_workers(requested, rss_bytes=None, available_bytes=None, cpus=None, headroom=0.6):
    """The number of data-loader workers this machine can hold (at most ``requested``).

    A worker is a fork of the training process; once it touches its copy-on-write
    pages it can cost as much memory as the process itself. The count is capped by
    the CPUs this process may use and by ``headroom`` x the available memory divided
    by the process's resident size.

    Arguments
    ---------
    requested : int
        ``num_workers`` asked for.
    rss_bytes, available_bytes : int, optional
        Resident size of this process and available memory (default: read from ``/proc``).
    cpus : int, optional
        CPUs available (default: this process's CPU affinity).
    headroom : float
        Fraction of the available memory the workers may take.

    Returns
    -------
    int

    Example
    -------
    >>> size_workers(8, rss_bytes=2 * 2**30, available_bytes=16 * 2**30, cpus=16)
    4
    >>> size_workers(8, rss_bytes=2**30, available_bytes=64 * 2**30, cpus=2)
    2
    >>> size_workers(0)
    0
    """
    requested = int(requested)
    if requested <= 0:
        return 0
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    rss_bytes = _resident_bytes() if rss_bytes is None else rss_bytes
    available_bytes = _available_bytes() if available_bytes is None else available_bytes
    workers = min(requested, max(int(cpus), 1))
    if rss_bytes and available_bytes:
        workers = min(workers, int(headroom * available_bytes // rss_bytes))
    return max(workers, 0)


def _resident_bytes():
    """Resident memory of this process (bytes), or None where ``/proc`` is not readable."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _available_bytes():
    """``MemAvailable`` of ``/proc/meminfo`` (bytes), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def train_loader_options(hparams, sampler):
    """Training data-loader arguments, with ``num_workers`` sized to the machine (:func:`size_workers`)."""
    workers = size_workers(hparams["num_workers"])
    if workers < hparams["num_workers"]:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        logger.warning(
            "num_workers=%d reduced to %d: %s CPUs and %.1f GB of available memory hold no more workers "
            "the size of this process (%.1f GB each; each epoch forks them anew)",
            hparams["num_workers"],
            workers,
            cpus,
            (_available_bytes() or 0) / 1e9,
            (_resident_bytes() or 0) / 1e9,
        )
    return {
        "batch_size": hparams["batch_size"],
        "sampler": sampler,
        "num_workers": workers,
        "collate_fn": sb.dataio.batch.PaddedBatch,
    }


def describe_ssl_encoder(hparams):
    """One line naming the SSL encoder and its checkpoint (for the log)."""
    encoder = hparams.get("ssl_encoder")
    if encoder is None:
        return "SSL encoder: none in this hparams file"
    ckpt = getattr(encoder, "_ckpt_path", None)
    note = ""
    try:
        from speechbrain_sslse.tera import default_tera_checkpoint

        if ckpt and Path(ckpt).resolve() == Path(default_tera_checkpoint()).resolve():
            note = " (the small TERA shipped in the package)"
    except (ImportError, FileNotFoundError):
        pass
    if hparams.get("ssl_ckpt") in NO_SSL_CHECKPOINT and not note:
        note = " (no ssl_ckpt given: a randomly initialised tiny TERA)"
    return f"SSL encoder: s3prl {encoder.name}, {encoder.num_layers} hidden states, checkpoint {ckpt}{note}"


def initialise_from(hparams, checkpointer):
    """Starts a new run from the generator weights of another run or a packaged model (fine-tuning).

    ``init_from`` names a checkpoint folder (``<run>/save/CKPT+...`` or one written by
    ``average_checkpoints.py``) holding ``generator.ckpt``, or a packaged model folder holding
    ``vocoder.ckpt`` (such as the default model shipped in the package, to fine-tune it on
    one's own data); its weights go through SpeechBrain's Pretrainer into this run's
    generator. The two must have the same architecture (the same hparams): a checkpoint
    whose parameter names or shapes differ is refused before anything is loaded (but for a
    mask head of a higher ``filter_order``, whose past taps start at zero). A
    ``discriminator.ckpt`` beside the weights (a training checkpoint, an average, or a folder
    packaged with ``--with_discriminator``) starts this run's discriminator when the two have
    the same architecture, so that a GAN fine-tune goes on against the discriminator the
    model was trained with; otherwise the discriminator starts untrained (logged). Nothing
    else is taken over: the optimizer, the learning-rate schedule and the epoch counter start
    afresh, from this run's hparams. A run that already has a checkpoint of its own resumes
    from it instead.

    Arguments
    ---------
    hparams : dict
        The loaded hparams (``init_from``, ``generator``, ``output_folder``).
    checkpointer : speechbrain.utils.checkpoints.Checkpointer
        This run's checkpointer.

    Returns
    -------
    pathlib.Path or None
        The weights loaded, or None (no ``init_from``, or resuming).
    """
    source = hparams.get("init_from")
    if not source or checkpointer.find_checkpoint() is not None:
        return None
    folder = Path(source).expanduser()
    path = next((folder / n for n in ("generator.ckpt", "vocoder.ckpt") if (folder / n).is_file()), None)
    if path is None:
        raise FileNotFoundError(
            f"init_from={source}: no generator.ckpt (a checkpoint folder such as <run>/save/CKPT+... "
            "or <run>/averaged/CKPT+...) nor vocoder.ckpt (a packaged model folder) there"
        )
    loaded = torch.load(path, map_location="cpu")
    # A mask head of filter order 1 starts a deeper filter: the past taps start at zero.
    if expand_filter_taps(loaded, hparams["generator"]):
        path = Path(hparams["output_folder"]) / "init_from_expanded.ckpt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(loaded, path)
        logger.info("init_from: the mask head's filter taps beyond the checkpoint's start at zero")
    check_same_architecture(hparams["generator"].state_dict(), loaded, path)
    loadables, paths = {"generator": hparams["generator"]}, {"generator": str(path.resolve())}
    discriminator = _matching_discriminator(hparams, folder)
    if discriminator is not None:
        loadables["discriminator"] = hparams["modules"]["discriminator"]
        paths["discriminator"] = str(discriminator.resolve())
    pretrainer = Pretrainer(
        collect_in=Path(hparams["output_folder"]) / "init_from", loadables=loadables, paths=paths
    )
    run_on_main(pretrainer.collect_files)
    pretrainer.load_collected()
    logger.info("Generator initialised from %s (optimizer and schedule start afresh)", path)
    if discriminator is not None:
        logger.info("Discriminator initialised from %s", discriminator)
    return path


def _matching_discriminator(hparams, folder):
    """``folder/discriminator.ckpt`` if the run has a discriminator of its architecture, else None."""
    discriminator = hparams.get("modules", {}).get("discriminator")
    if discriminator is None:
        return None
    path = folder / "discriminator.ckpt"
    if not path.is_file():
        logger.info("init_from: %s has no discriminator.ckpt; the discriminator starts untrained", folder)
        return None
    try:
        check_same_architecture(
            discriminator.state_dict(), torch.load(path, map_location="cpu", weights_only=True), path
        )
    except ValueError as err:
        logger.warning("%s; the discriminator starts untrained", str(err).split(";")[0])
        return None
    return path


def check_same_architecture(own, loaded, path):
    """Raises a ValueError naming ``path`` when two state dicts differ in names or shapes.

    Example
    -------
    >>> check_same_architecture({"w": torch.zeros(2)}, {"w": torch.ones(2)}, "x.ckpt")
    >>> try:
    ...     check_same_architecture({"w": torch.zeros(2)}, {"w": torch.ones(3)}, "x.ckpt")
    ... except ValueError as err:
    ...     print(str(err).split("(")[1].split(")")[0])
    shape of w: [3] there, [2] here
    """
    missing = sorted(set(own) - set(loaded))
    extra = sorted(set(loaded) - set(own))
    shapes = [k for k in own if k in loaded and tuple(own[k].shape) != tuple(loaded[k].shape)]
    if not (missing or extra or shapes):
        return
    if shapes:
        k = shapes[0]
        what = f"shape of {k}: {list(loaded[k].shape)} there, {list(own[k].shape)} here"
    else:
        what = ", ".join(
            [f"{len(missing)} parameters missing there (e.g. {missing[0]})"] * bool(missing)
            + [f"{len(extra)} unknown here (e.g. {extra[0]})"] * bool(extra)
        )
    raise ValueError(
        f"init_from: {path} was trained with another architecture than this run's hparams ({what}); "
        "give the hparams of the run it comes from (e.g. head_channels, head_blocks, d_model)"
    )


def mini_corpus_path(hparams):
    """Where the embedded mini corpus is (or will be generated) when no ``data_folder`` is given."""
    if hparams["mini_corpus_folder"]:
        return Path(hparams["mini_corpus_folder"]).expanduser().resolve()
    from speechbrain_sslse.corpus.generate import default_corpus_dir

    return default_corpus_dir(hparams["mini_corpus_size"])


def resolve_data_folder(hparams):
    """The DNS root: ``data_folder``, or the embedded mini corpus generated on first use."""
    if hparams["data_folder"]:
        return Path(hparams["data_folder"])
    from speechbrain_sslse.corpus import ensure_corpus

    root = ensure_corpus(hparams["mini_corpus_folder"], size=hparams["mini_corpus_size"])
    return Path(root) / "DNS"
