"""A model folder's ``README.md``: the model card of a packaged training run.

It says how to use the folder, what the model is (SSL encoder, parts, sizes, learned layer
weights), what it was trained on (the run's ``prepare_report.json``), how it did on
validation (the packaged checkpoint and the run's ``train_log.txt``) and which files the
folder holds, with their sha256.

Authors
 * speechbrain-sslse contributors
"""

import json
from pathlib import Path

from .hparams import yaml_tag
from .run import parse_train_log

__all__ = ["model_card"]


def _call_text(node):
    """``Class(arg=value, ...)`` of a part's yaml entry, for the model card."""
    args = ", ".join(f"{k}={v}" for k, v in node.items()) if isinstance(node, dict) else ""
    return f"`{yaml_tag(node).split(':', 1)[-1].rsplit('.', 1)[-1]}({args})`"


def _three_decimals(value):
    """A metric value with three decimals (as logged, when it is not a number)."""
    try:
        return f"{float(value):.3f}"
    except (TypeError, ValueError):
        return str(value)


def _validation_history(run_folder):
    """(epoch, stoi, pesq, dnsmos_ovrl, quality) rows of the recipe's train_log.txt ("" if not logged)."""
    log = Path(run_folder) / "train_log.txt"
    if not log.is_file():
        return []
    metrics = ("stoi", "pesq", "dnsmos_ovrl", "quality")
    return [
        (str(row["epoch"]), *(_three_decimals(row["valid"][m]) if m in row["valid"] else "" for m in metrics))
        for row in parse_train_log(log)
        if "stoi" in row.get("valid", {})
    ]


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
            f"{label} {_three_decimals(meta.get(key))}"
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


def model_card(run_folder, manifest_folder, checkpoint, vocoder, parts, ssl_upstream, files, extra_notes):
    """The model card (markdown) of a model folder packaged from ``run_folder``.

    Arguments
    ---------
    run_folder : Path
        The training run (its ``train_log.txt`` gives the validation history).
    manifest_folder : str or Path
        The run's manifest folder (its ``prepare_report.json`` describes the training data).
    checkpoint : speechbrain.utils.checkpoints.Checkpoint
        The packaged checkpoint.
    vocoder : speechbrain_sslse.lobes.SpectrumAwareVocoder
        The run's vocoder, weights loaded.
    parts : dict
        The template entries of the vocoder's parts (see :func:`.hparams.vocoder_parts`).
    ssl_upstream : str
        The s3prl entry of the SSL encoder.
    files : list of tuple
        ``(name, sha256)`` of the folder's other files.
    extra_notes : iterable of str
        Markdown lines added after the validation history.

    Returns
    -------
    str
    """
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
