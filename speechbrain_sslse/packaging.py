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

Authors
 * speechbrain-sslse contributors
"""

import inspect
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from hyperpyyaml import load_hyperpyyaml, resolve_references
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tag import Tag
from ruamel.yaml.tokens import CommentToken
from speechbrain.utils.checkpoints import Checkpointer

import speechbrain_sslse

from .files import sha256_file
from .upgrade import VOCODER_TAG, upgrade_vocoder_yaml

__all__ = ["package_model", "upgrade_model_folder", "find_checkpoint", "PackagingError", "MODEL_FILES"]

MODEL_FILES = ("hyperparams.yaml", "vocoder.ckpt", "ssl.ckpt", "custom_interface.py", "README.md")

INFERENCE_DEFAULTS = {
    "chunk_seconds": 10.0,
    "overlap_seconds": 1.0,
    "chunk_batch_size": 4,
}


class PackagingError(RuntimeError):
    """A training run that cannot be packaged (missing files, oracle model, ...)."""


def find_checkpoint(save_folder, max_key="pesq"):
    """The checkpoint to package: best by ``max_key`` in its metadata, else the latest.

    Arguments
    ---------
    save_folder : str or Path
        A training run's checkpoint folder (``<output_folder>/save``).
    max_key : str
        Metadata key to maximise (validation PESQ by default).

    Returns
    -------
    speechbrain.utils.checkpoints.Checkpoint
    """
    checkpointer = Checkpointer(save_folder)
    checkpoints = checkpointer.list_checkpoints()
    if not checkpoints:
        raise PackagingError(f"{save_folder}: no checkpoint (CKPT+*) found; train the model first")
    scored = [c for c in checkpoints if isinstance(c.meta.get(max_key), int | float)]
    scored = [c for c in scored if c.meta[max_key] == c.meta[max_key]]  # drop NaN
    if scored:
        return max(scored, key=lambda c: c.meta[max_key])
    return max(checkpoints, key=lambda c: c.meta.get("unixtime", 0))


# The template of a model folder's hyperparams.yaml (in the package: packaging runs from it).
INFERENCE_TEMPLATE = Path(__file__).parent / "assets" / "templates" / "inference.yaml"
# The vocoder's arguments that are its trained parts -> their entries in the template.
VOCODER_PARTS = {
    "layer_combination": "layer_combination",
    "spectrum": "noisy_spectrum",
    "fusion": "fusion",
    "generator": "generator",
}


def _yaml():
    yaml = YAML(typ="rt")
    yaml.indent(mapping=4, sequence=4, offset=2)
    yaml.width = 110
    return yaml


def _tag(node):
    tag = getattr(node, "tag", None)
    return str(getattr(tag, "value", tag) or "")


def _top_key(node, tree):
    return next((key for key, value in tree.items() if value is node), None)


def _concrete(node, tree, hparams):
    """A copy of a resolved yaml node whose attribute references hold the built values.

    ``!ref <ssl_encoder.hidden_size>`` resolves to ``!apply:getattr [*ssl_encoder, hidden_size]``;
    the copy holds the value the run's built ``ssl_encoder`` has instead, so the model folder
    states its sizes (and needs no ``getattr`` to load).
    """
    tag = _tag(node)
    if tag == "!apply:getattr" and isinstance(node, list) and len(node) == 2:
        key = _top_key(node[0], tree)
        if key is None or key not in hparams:
            raise PackagingError(f"cannot resolve the reference to an attribute of {node[0]!r}")
        return _concrete(getattr(hparams[key], str(node[1])), tree, hparams)
    if isinstance(node, dict):
        copy = CommentedMap((k, _concrete(v, tree, hparams)) for k, v in node.items())
    elif isinstance(node, list | tuple):
        copy = CommentedSeq(_concrete(v, tree, hparams) for v in node)
        if all(not isinstance(v, dict | list) for v in copy):
            copy.fa.set_flow_style()
    else:
        return node
    if tag.startswith("!"):
        copy.yaml_set_ctag(Tag(suffix=tag))
    return copy


def _run_tree(text, overrides):
    """A run's hyperparams text with references and overrides resolved, as ruamel nodes."""
    return _yaml().load(resolve_references(io.StringIO(text), overrides).getvalue())


def _vocoder_parts(tree, hparams, vocoder_key):
    """The template entries of the vocoder's parts, taken from a run's (resolved) yaml nodes."""
    node = tree[vocoder_key]
    if _tag(node) != VOCODER_TAG:
        raise PackagingError(
            f"{vocoder_key} is not a SpectrumAwareVocoder entry ({_tag(node) or 'untagged'})"
        )
    missing = [arg for arg in VOCODER_PARTS if arg not in node]
    if missing:
        raise PackagingError(f"the vocoder entry {vocoder_key} does not pass {', '.join(missing)}")
    return {entry: _concrete(node[arg], tree, hparams) for arg, entry in VOCODER_PARTS.items()}


def _set_generator_settings(generator, settings, family, source):
    """Writes inference settings of a generator family into its entry (checked against its arguments)."""
    import pydoc

    tag = _tag(generator)
    target = pydoc.locate(tag.split(":", 1)[-1]) if ":" in tag else None
    accepted = sorted(inspect.signature(target).parameters) if target is not None else []
    notes = []
    for key, value in (settings or {}).items():
        if family == "hifigan" or key not in accepted:
            raise PackagingError(
                f"generator setting {key!r}: the generator of {source} ({family}) has no such setting; "
                f"it has {[] if family == 'hifigan' else accepted}"
            )
        generator[key] = value
        notes.append(f"Inference setting of the generator: `{key}: {value}` (set at packaging).")
    return notes + [""] if notes else []


def _model_hyperparams(parts, ssl_upstream, source_note, inference=None):
    """The model folder's hyperparams.yaml: the inference template with the run's parts filled in."""
    yaml = _yaml()
    with open(INFERENCE_TEMPLATE, encoding="utf-8") as f:
        tree = yaml.load(f)
    for key, value in {**INFERENCE_DEFAULTS, **(inference or {})}.items():
        tree[key] = value
    tree["ssl_encoder"]["upstream"] = ssl_upstream
    for key, node in parts.items():
        tree.ca.items.pop(key, None)  # the template's line ends (placeholders): the part ends with one
        tree[key] = node
        if isinstance(node, dict) and node:
            node.ca.items[list(node)[-1]] = [None, None, CommentToken("\n\n", CommentMark(0), None), None]
    header = tree.ca.comment[1][-1]  # the template's header ends with a blank line
    header.value = header.value.rstrip("\n") + (
        f"\n# Packaged by speechbrain-sslse {speechbrain_sslse.__version__} {source_note}.\n\n"
    )
    out = io.StringIO()
    yaml.dump(tree, out)
    return out.getvalue()


def _call_text(node):
    """``Class(arg=value, ...)`` of a part's yaml entry, for the model card."""
    args = ", ".join(f"{k}={v}" for k, v in node.items()) if isinstance(node, dict) else ""
    return f"`{_tag(node).split(':', 1)[-1].rsplit('.', 1)[-1]}({args})`"


CUSTOM_INTERFACE = '''"""Interface of this model folder, for SpeechBrain's ``foreign_class``."""

from speechbrain_sslse.inference import SpectrumAwareEnhancer  # noqa: F401
'''


def _fmt(value):
    """A metric value with three decimals (as logged, when it is not a number)."""
    try:
        return f"{float(value):.3f}"
    except (TypeError, ValueError):
        return str(value)


def _validation_history(run_folder):
    """(epoch, stoi, pesq, dnsmos_ovrl, quality) rows of the recipe's train_log.txt ("" if not logged)."""
    log = Path(run_folder) / "train_log.txt"
    rows = []
    if not log.is_file():
        return rows
    for line in log.read_text().splitlines():
        fields = dict(
            part.strip().rsplit(":", 1) if ":" in part else (part.strip(), "")
            for chunk in line.split(" - ")
            for part in chunk.split(",")
        )
        epoch = fields.get("epoch")
        if epoch and "valid stoi" in fields:
            metrics = ("valid stoi", "valid pesq", "valid dnsmos_ovrl", "valid quality")
            rows.append((epoch.strip(), *(_fmt(fields[m]) if m in fields else "" for m in metrics)))
    return rows


def _checkpoint_line(checkpoint):
    """The model card's line on the packaged checkpoint (one epoch's, or an average of epochs)."""
    meta, name = checkpoint.meta, Path(checkpoint.path).name
    if "averaged_epochs" in meta:
        return (
            f"Packaged checkpoint: `{name}`, the average of the generator weights of epochs "
            f"{meta['averaged_epochs']} (`average_checkpoints.py` of the DNS recipe); the validation "
            "history of each epoch is below."
        )
    scores = [("stoi", "STOI"), ("pesq", "PESQ"), ("dnsmos_ovrl", "DNSMOS OVRL"), ("quality", "quality")]
    return (
        f"Packaged checkpoint: `{name}` (epoch {meta.get('epoch')}, validation "
        + ", ".join(
            f"{label} {_fmt(meta.get(key))}"
            for key, label in scores
            if key in meta or key in ("stoi", "pesq")
        )
        + ")."
    )


def _summary(family):
    """The model card's first paragraph, for a HiFi-GAN vocoder or a generator family."""
    cite = "(Song, Kim, Kang, Madhu, EUSIPCO 2024)"
    io = "Input: speech at any rate and channel count; output: 16 kHz mono."
    if family == "hifigan":
        return (
            "Speech enhancement by re-synthesis: frozen SSL features (learned layer weights) and the noisy "
            f"spectrum, fused and turned into clean speech by a HiFi-GAN generator {cite}. {io}"
        )
    return (
        "Speech enhancement with the front end of the spectrum-aware vocoder: frozen SSL features "
        f"(learned layer weights) and the noisy spectrum, fused as in the paper {cite}, drive `{family}` "
        f"instead of HiFi-GAN (for the mask head: a bounded complex ratio mask on the noisy STFT). {io}"
    )


def _generator_text(vocoder, node):
    """One line on the generator (HiFi-GAN sizes, or a generator family's arguments)."""
    if vocoder.family != "hifigan":
        return _call_text(node)
    generator = vocoder.generator
    factors = [int(up.conv.stride[0]) for up in generator.ups]
    return (
        f"HiFi-GAN, upsampling {factors}, {generator.ups[0].conv.in_channels} initial channels "
        f"({_call_text(node)})"
    )


def _model_card(run_folder, manifest_folder, checkpoint, vocoder, parts, ssl_upstream, files, extra_notes):
    report_path = Path(manifest_folder) / "prepare_report.json"
    data = json.loads(report_path.read_text()) if report_path.is_file() else None
    params = sum(p.numel() for n, p in vocoder.named_parameters() if not n.startswith("encoder."))
    lines = [
        "# Spectrum-aware denoising vocoder",
        "",
        _summary(vocoder.family),
        "",
        "## Use",
        "",
        "```python",
        "from speechbrain_sslse.inference import SpectrumAwareEnhancer",
        'enhancer = SpectrumAwareEnhancer.from_hparams(source="<this folder>")',
        'enhancer.enhance_file("noisy.wav", output_filename="enhanced.wav")',
        "```",
        "",
        "or `sslse-enhance noisy.wav -o enhanced/ --model <this folder>`.",
        "",
        "## Model",
        "",
        "| setting | value |",
        "|---|---|",
        f"| SSL encoder | s3prl `{ssl_upstream}`, frozen, {vocoder.encoder.num_layers} hidden states x "
        f"{vocoder.encoder.hidden_size} |",
        f"| fusion | {_call_text(parts['fusion'])} |",
        f"| spectrum | {_call_text(parts['noisy_spectrum'])} |",
        f"| layer combination | {_call_text(parts['layer_combination'])} |",
        f"| generator | {_generator_text(vocoder, parts['generator'])} |",
        f"| trainable parameters | {params / 1e6:.2f} M |",
        f"| learned layer weights | {[round(float(w), 4) for w in vocoder.layer_weights]} |",
        "",
        "## Training data",
        "",
    ]
    if data:
        counts, options = data["counts"], data["options"]
        lines += [
            f"- DNS-layout root: `{options['data_folder']}`",
            f"- {counts['train_utterances']} training utterances ({counts['train_hours']} h), "
            f"{counts['speakers']} speakers ({len(counts['valid_speakers'])} held out for validation)",
            f"- {counts['noises']} noise files, {counts['rirs']} RIRs with T60 in {options['t60_range']} s",
            "- mixtures made on the fly (see the recipe's hparams in `train_hyperparams.yaml`)",
        ]
    else:
        lines.append(f"- not recorded (no {report_path})")
    lines += [
        "",
        "## Validation",
        "",
        _checkpoint_line(checkpoint),
        "",
    ]
    history = _validation_history(run_folder)
    if history:
        with_quality = any(row[3] for row in history)
        columns = 5 if with_quality else 3
        header = ["epoch", "STOI", "PESQ", "DNSMOS OVRL", "quality (OVRL + 5 STOI)"][:columns]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * columns]
        lines += ["| " + " | ".join(row[:columns]) + " |" for row in history]
        lines.append("")
    lines += list(extra_notes)
    lines += [
        "## Files",
        "",
        "| file | sha256 |",
        "|---|---|",
        *(f"| `{name}` | `{digest}` |" for name, digest in files),
        "",
        "`vocoder.ckpt` and `ssl.ckpt` hold tensors and plain values only and load with "
        "`torch.load(..., weights_only=True)`; `hyperparams.yaml` loads with the project's restricted "
        "loader (`speechbrain_sslse.trust`, see the project README: what a model folder can execute).",
        "",
    ]
    return "\n".join(lines)


MAX_CALIBRATION_DB = 40.0


def calibrate_output_level(state, level_db):
    """A HiFi-GAN vocoder's state with its output layer scaled to undo a level offset of ``level_db``.

    The generator's last convolution feeds a tanh; scaling its weight (the weight-norm
    magnitude) and bias by ``10 ** (-level_db / 20)`` scales what enters the tanh, which
    is the output's level wherever the output is not near full scale. ``level_db`` is the
    validation median of the output's level minus the clean target's (the recipe's
    ``level_db``): a short run's generator is still far too quiet.

    Arguments
    ---------
    state : dict
        The vocoder's state dict (``generator.conv_post...`` keys of SpeechBrain's HifiganGenerator).
    level_db : float
        The level offset to undo (clipped to +-40 dB).

    Returns
    -------
    tuple
        (new state, the gain applied in dB).

    Example
    -------
    >>> state = {"generator.conv_post.conv.bias": torch.ones(1), "encoder.fingerprint": torch.ones(2)}
    >>> new, gain = calibrate_output_level(state, -20.0)
    >>> float(new["generator.conv_post.conv.bias"]), gain, float(new["encoder.fingerprint"][0])
    (10.0, 20.0, 1.0)
    """
    gain_db = float(min(max(-level_db, -MAX_CALIBRATION_DB), MAX_CALIBRATION_DB))
    factor = 10.0 ** (gain_db / 20.0)
    scaled = (".bias", ".original0", ".weight_g", "conv.weight")  # weight-norm magnitude, or a folded weight
    new = dict(state)
    for key, value in state.items():
        if key.startswith("generator.conv_post.") and key.endswith(scaled):
            new[key] = value * factor
    return new, gain_db


def _recorded_settings(hparams_path):
    """Plain top-level values of a run's ``hyperparams.yaml`` (its tagged entries are not built)."""
    with open(hparams_path) as f:
        raw = YAML(typ="rt").load(f) or {}
    return {key: value for key, value in raw.items() if isinstance(value, str | int | float | type(None))}


def training_folder(run_folder, recorded_output_folder):
    """The folder a run was trained from, when its ``output_folder`` was recorded as a relative path.

    SpeechBrain writes a run's ``hyperparams.yaml`` with its paths as given, so relative
    paths in it (``manifest_folder: results/proposed/1986/manifests``) are relative to
    where training ran, not to where the run is read from. ``run_folder`` ends with the
    recorded ``output_folder``; what comes before it is that folder.

    Arguments
    ---------
    run_folder : str or Path
        The run's folder as given now (absolute or relative to the current folder).
    recorded_output_folder : str
        ``output_folder`` as recorded in the run's ``hyperparams.yaml``.

    Returns
    -------
    Path or None
        None when the recorded path is absolute or is not the end of ``run_folder``.

    Example
    -------
    >>> str(training_folder("/data/recipe/results/proposed/1986", "results/proposed/1986"))
    '/data/recipe'
    >>> training_folder("/elsewhere/1986", "results/proposed/1986") is None
    True
    """
    if not recorded_output_folder:
        return None
    recorded = Path(os.path.normpath(str(recorded_output_folder)))
    if recorded.is_absolute() or ".." in recorded.parts:
        return None
    run = Path(os.path.abspath(run_folder)).parts
    tail = recorded.parts
    if len(tail) >= len(run) or run[-len(tail) :] != tail:
        return None
    return Path(*run[: -len(tail)])


def _run_path(path, base):
    """A path recorded by a run, absolute: relative ones are taken from ``base`` (the training folder)."""
    if path in (None, ""):
        return path
    path = Path(str(path)).expanduser()
    if path.is_absolute() or base is None:
        return str(path)
    return str(base / path)


def package_model(
    run_folder, output_dir, checkpoint=None, max_key=None, notes=(), overwrite=False, generator_settings=None
):
    """Turns a training run of the DNS recipe into a pretrained-model folder.

    Arguments
    ---------
    run_folder : str or Path
        The run's ``output_folder`` (with ``hyperparams.yaml`` and ``save/``).
    output_dir : str or Path
        The model folder to write.
    checkpoint : str or Path, optional
        A ``save/CKPT+...`` folder (default: the best by ``max_key``, else the latest).
    max_key : str, optional
        Validation metric that picks the best checkpoint (default: the run's
        ``selection_key``, the one its training kept checkpoints by; ``pesq`` if it has none).
    notes : iterable of str
        Extra markdown lines for the model card (e.g. a metrics table).
    overwrite : bool
        Replace an existing ``output_dir``.
    generator_settings : dict, optional
        Inference settings of a generator family that change no weight, written into the
        packaged ``hyperparams.yaml`` and the model card (e.g. ``{"mask_exponent": 1.5}``
        for :class:`~speechbrain_sslse.lobes.SpectralMaskHead`, chosen on the validation
        set by the DNS recipe's ``tune_mask_exponent.py``).

    Returns
    -------
    Path
        ``output_dir``.
    """
    run_folder, output_dir = Path(run_folder), Path(output_dir)
    hparams_path = run_folder / "hyperparams.yaml"
    if not hparams_path.is_file():
        raise PackagingError(f"{run_folder}: no hyperparams.yaml; pass the output_folder of a training run")
    if output_dir.exists() and not overwrite:
        raise PackagingError(f"{output_dir} exists; pass overwrite=True (--overwrite) to replace it")
    recorded = _recorded_settings(hparams_path)
    if max_key is None:
        max_key = recorded.get("selection_key") or "pesq"
    # Relative paths of the run are relative to where it was trained, wherever this runs from.
    base = training_folder(run_folder, recorded.get("output_folder"))
    path_overrides = {"output_folder": str(run_folder)}
    if recorded.get("manifest_folder"):
        path_overrides["manifest_folder"] = _run_path(recorded["manifest_folder"], base)
    if checkpoint is None:
        checkpoint = find_checkpoint(run_folder / "save", max_key)
    else:
        wanted = Path(checkpoint)
        found = [c for c in Checkpointer(wanted.parent).list_checkpoints() if c.path == wanted]
        if not found:
            raise PackagingError(f"{wanted}: not a checkpoint folder (CKPT+...) of a training run")
        checkpoint = found[0]
    weights = Path(checkpoint.path) / "generator.ckpt"
    if not weights.is_file():
        raise PackagingError(f"{checkpoint.path}: no generator.ckpt")

    text = hparams_path.read_text(encoding="utf-8")
    text = upgrade_vocoder_yaml(text) or text  # a run trained before the parts were built in the yaml
    hparams = load_hyperpyyaml(io.StringIO(text), path_overrides)
    vocoder = hparams["generator"]
    if vocoder.clean_embedding:
        raise PackagingError(
            "the clean-embedding oracle needs the clean speech at inference and cannot be packaged"
        )
    parts = _vocoder_parts(_run_tree(text, path_overrides), hparams, "generator")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a damaged file
        raise PackagingError(
            f"{weights}: cannot be read, the checkpoint is damaged or incomplete ({type(err).__name__}: "
            f"{err}). Package another checkpoint (--checkpoint {Path(checkpoint.path).parent}/CKPT+...)."
        ) from err
    vocoder.load_state_dict(state)  # checks the SSL fingerprint and the architecture
    settings_notes = _set_generator_settings(
        parts["generator"], generator_settings, vocoder.family, run_folder
    )
    ssl_ckpt = Path(vocoder.encoder._ckpt_path)
    level_db = checkpoint.meta.get("level_db")
    calibration = []
    if (
        hparams.get("calibrate_output_level")
        and vocoder.family == "hifigan"
        and isinstance(level_db, int | float)
        and level_db == level_db
    ):
        state, gain_db = calibrate_output_level(state, level_db)
        calibration = [
            f"Output level calibrated at packaging: the generator's output layer scaled by {gain_db:+.1f} dB "
            f"(the packaged checkpoint's output was {level_db:+.1f} dB from the clean speech's level, "
            "median over the validation mixtures).",
            "",
        ]

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes 0700: give the folder the usual permissions
    try:
        if calibration:
            torch.save(state, staging / "vocoder.ckpt")
        else:
            shutil.copyfile(weights, staging / "vocoder.ckpt")
        shutil.copyfile(ssl_ckpt, staging / "ssl.ckpt")
        shutil.copyfile(hparams_path, staging / "train_hyperparams.yaml")
        (staging / "custom_interface.py").write_text(CUSTOM_INTERFACE)
        (staging / "hyperparams.yaml").write_text(
            _model_hyperparams(
                parts,
                vocoder.encoder.name,
                f"from {run_folder}",
                {
                    key: value
                    for key, value in (
                        ("chunk_seconds", hparams.get("inference_chunk_seconds")),
                        ("overlap_seconds", hparams.get("inference_overlap_seconds")),
                    )
                    if value is not None
                },
            )
        )
        layer_weights = run_folder / "layer_weights.csv"
        if layer_weights.is_file():
            shutil.copyfile(layer_weights, staging / "layer_weights.csv")
        files = [(p.name, sha256_file(p)) for p in sorted(staging.iterdir()) if p.is_file()]
        (staging / "README.md").write_text(
            _model_card(
                run_folder,
                hparams["manifest_folder"],
                checkpoint,
                vocoder,
                parts,
                vocoder.encoder.name,
                files,
                [*calibration, *settings_notes, *notes],
            )
        )
        if output_dir.exists():
            shutil.rmtree(output_dir)
        staging.rename(output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output_dir


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
    from .trust import check_hparams, model_folder_trust

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
    tree = _run_tree(text, overrides)
    vocoder_key = _top_key(tree["modules"]["vocoder"], tree)
    parts = _vocoder_parts(tree, hparams, vocoder_key)
    inference = {key: hparams[key] for key in INFERENCE_DEFAULTS if key in hparams}
    header = (former.splitlines() or [""])[1]
    source = header.split(" from ", 1)[1].rstrip(".") if " from " in header else str(folder)
    new = _model_hyperparams(parts, hparams[vocoder_key].encoder.name, f"from {source}", inference)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)
    return True
