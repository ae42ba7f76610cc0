#!/usr/bin/env python3
"""Recipe: robustness of SSL speech embeddings to noise and reverberation (ICEIC 2024, Table 1).

For every model (s3prl upstreams from local checkpoints, plus the log-mel reference)
and every hidden layer, clean Valentini utterances and their distorted versions
(DEMAND noise at each SNR, MIT IR reverberation binned by RT60, and both) are
encoded; frame-aligned embeddings are compared with the normalised MSE (sigma =
per-dimension std of the clean embeddings over the set) and the frame-wise cosine
similarity.

To run (embedded mini corpus, tiny random-weight checkpoints: numbers mean nothing)::

    python probe_robustness.py hparams/robustness.yaml

On real data with real checkpoints::

    python probe_robustness.py hparams/robustness.yaml \\
        --valentini_folder=/data/Valentini --demand_folder=/data/DEMAND \\
        --mit_ir_folder=/data/MIT_IR --tera_ckpt=/ckpt/states-1000000.ckpt \\
        --hubert_ckpt=/ckpt/hubert_base_ls960.pt --wavlm_ckpt=/ckpt/WavLM-Base+.pt \\
        --wav2vec2_ckpt=/ckpt/wav2vec_small.pt --device=cuda

Outputs (in ``output_folder``): ``robustness_tables.md`` (model x SNR and model x
RT60 tables in the paper's form), ``robustness_per_layer.csv``,
``robustness_summary.csv``, ``rir_t60.csv``, ``robustness_<family>_<axis>.png`` (the layer
summary per model), ``robustness_layers_<family>_<axis>.png`` (every layer of every model,
one line per condition), and
``skipped_files.csv`` (audio files left out: unreadable, empty, NaN/Inf samples, too
short). The run resumes from ``save_folder/robustness_state.pt`` when interrupted.

Authors
 * speechbrain-sslse contributors
"""

import logging
import sys
from pathlib import Path

import numpy as np

from speechbrain_sslse.audio import SAMPLE_RATE, AudioError, read_audio
from speechbrain_sslse.data.layouts import read_demand, read_mit_ir, read_valentini
from speechbrain_sslse.data.rir import measure_t60
from speechbrain_sslse.files import write_csv, write_text
from speechbrain_sslse.probing import (
    TINY_WARNING,
    DistortionPlan,
    evaluate_robustness,
    load_recipe_models,
    models_table,
    plot_robustness,
    robustness_table,
    rt60_bin,
    rt60_bins,
    start_recipe,
    summarise_layers,
)
from speechbrain_sslse.probing.plots import plot_robustness_layers

logger = logging.getLogger(__name__)

DATA_KEYS = {"valentini_folder": "Valentini", "demand_folder": "DEMAND", "mit_ir_folder": "MIT_IR"}
TABLES = [
    ("noise", "snr", "Noise (DEMAND): model x SNR"),
    ("reverb", "rt60", "Reverberation (MIT IR): model x RT60"),
    ("both", "snr", "Noise + reverberation: model x SNR (RT60 bins used in turn)"),
    ("both", "rt60", "Noise + reverberation: model x RT60 (averaged over the SNRs)"),
]


def data_roots(hparams):
    """Dataset roots; the missing ones come from the embedded mini corpus (generated on first use).

    Returns
    -------
    roots : dict
        ``valentini_folder``, ``demand_folder``, ``mit_ir_folder`` -> Path.
    all_mini : bool
        True when every root is the mini corpus.
    """
    roots = {
        "valentini_folder": hparams["valentini_folder"],
        "demand_folder": hparams["demand_folder"],
        "mit_ir_folder": hparams["mit_ir_folder"],
    }
    missing = [key for key, value in roots.items() if value is None]
    if missing:
        from speechbrain_sslse.corpus import ensure_corpus

        mini = Path(
            ensure_corpus(
                hparams["mini_corpus_folder"],
                size=hparams["mini_corpus_size"],
                seed=hparams["mini_corpus_seed"],
            )
        )
        for key in missing:
            roots[key] = mini / DATA_KEYS[key]
        logger.info("mini corpus at %s used for %s", mini, ", ".join(missing))
    return {k: Path(v) for k, v in roots.items()}, len(missing) == len(DATA_KEYS)


def _skip(skipped, path, err):
    logger.warning("skipping unusable audio file: %s", err)
    skipped.append({"file": str(path), "reason": str(err)})


def select_utterances(root, subset, max_utterances, seed, max_duration, skipped=None):
    """Valentini utterances (a seeded random subset when ``max_utterances`` is set) and lazy loaders.

    Unusable files (unreadable, empty, NaN/Inf samples, shorter than 0.1 s) are left out
    (before the subset is drawn) and appended to ``skipped`` with the reason.
    """
    skipped = [] if skipped is None else skipped
    items = []
    for item in read_valentini(root, subset):
        try:
            read_audio(item["path"], min_duration=0.1)  # reads every sample: NaN/Inf too
        except AudioError as err:
            _skip(skipped, item["path"], err)
            continue
        items.append(item)
    if not items:
        raise AudioError(f"{root}: no usable Valentini utterance ({len(skipped)} skipped, see the log)")
    if max_utterances is not None and max_utterances < len(items):
        rng = np.random.default_rng(seed)
        keep = sorted(rng.choice(len(items), int(max_utterances), replace=False).tolist())
        items = [items[i] for i in keep]
    limit = None if max_duration is None else int(float(max_duration) * SAMPLE_RATE)

    def loader(path):
        return lambda: read_audio(path, min_duration=0.1)[:limit]

    return items, [loader(item["path"]) for item in items]


def load_noises(root, channel, max_seconds, skipped=None):
    """DEMAND recordings, ``name -> [N]`` at 16 kHz; unusable ones are appended to ``skipped``."""
    limit = None if max_seconds is None else int(float(max_seconds) * SAMPLE_RATE)
    noises = {}
    for item in read_demand(root, channel):
        try:
            noises[item["name"]] = read_audio(item["path"], min_duration=0.5)[:limit]
        except AudioError as err:
            _skip([] if skipped is None else skipped, item["path"], err)
    return noises


def load_rirs(root, edges, table_path):
    """MIT impulse responses at 16 kHz, their measured T60 and RT60 bin; writes ``rir_t60.csv``."""
    rirs, bins, rows = {}, {}, []
    for item in read_mit_ir(root):
        row = {"name": item["name"], "path": item["path"], "t60": "", "bin": "", "note": ""}
        try:
            wav = read_audio(item["path"])
            t60 = measure_t60(wav, SAMPLE_RATE)
        except ValueError as err:  # AudioError (unusable file) or T60 not measurable
            row["note"] = f"excluded: {err}"
            rows.append(row)
            continue
        row["t60"] = f"{t60:.3f}"
        label = rt60_bin(t60, edges)
        if label is None:
            row["note"] = f"excluded: T60 outside [{edges[0]}, {edges[-1]}] s"
        else:
            row["bin"] = label
            rirs[item["name"]] = wav
            bins[item["name"]] = label
        rows.append(row)
    write_csv(table_path, rows, ["name", "path", "t60", "bin", "note"])
    return rirs, bins, rows


def result_rows(model, stats, summary):
    """Per-layer and summary rows (``model, layer, family, axis, condition, metric, value``)."""
    per_layer, summary_rows = [], []
    for (family, axis, condition), res in stats.results().items():
        for metric in ("nmse", "cosine"):
            values = res[metric].tolist()
            for layer, value in enumerate(values):
                per_layer.append(
                    {
                        "model": model.name,
                        "layer": layer,
                        "family": family,
                        "axis": axis,
                        "condition": condition,
                        "metric": metric,
                        "value": f"{value:.6g}",
                        "frames": res["frames"],
                    }
                )
            summary_rows.append(
                {
                    "model": model.name,
                    "summary": summary,
                    "family": family,
                    "axis": axis,
                    "condition": condition,
                    "metric": metric,
                    "value": summarise_layers(values, summary),
                }
            )
    return per_layer, summary_rows


def report(hparams, roots, items, noises, rir_rows, plan, models, skipped, summary_rows):
    """The markdown report: setup, models, and the four tables."""
    names = [m.name for m in models]
    used = sum(1 for r in rir_rows if r["bin"])
    per_bin = {b: len(plan.by_bin[b]) for b in plan.bins}
    lines = ["# Robustness of speech embeddings to noise and reverberation (ICEIC 2024, Table 1 form)", ""]
    if any(m.tiny for m in models):
        lines += [f"**{TINY_WARNING}**", ""]
    lines += [
        f"- clean speech: {len(items)} Valentini utterances from `{roots['valentini_folder']}`",
        f"- noise: DEMAND `{roots['demand_folder']}` ({', '.join(sorted(noises))}), "
        f"SNR {', '.join(plan.label(s) for s in plan.snrs)} dB",
        f"- reverberation: MIT IR `{roots['mit_ir_folder']}`: {used} of {len(rir_rows)} impulse responses "
        f"in the RT60 bins (per bin: {per_bin}); see rir_t60.csv",
        f"- layer summary: `{hparams['summary_layer']}` (last = the model's last hidden state; mean = "
        "mean over hidden states); every layer is in robustness_per_layer.csv",
        "- MSE: normalised MSE, sigma = per-dimension std of the clean embeddings over the set "
        f"(dimensions with sigma <= {hparams['min_sigma']:g} left out); CS: frame-wise cosine similarity; "
        "both averaged over all frames of the set",
        "",
    ]
    lines.append(models_table(models, skipped))
    for family, axis, title in TABLES:
        if family not in plan.families:
            continue
        lines += [
            "",
            f"## {title}",
            "",
            robustness_table(summary_rows, family, axis, plan.axis_values(family, axis), names),
        ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Runs the recipe (``argv`` as on the command line)."""
    hparams, device, progress = start_recipe(sys.argv[1:] if argv is None else argv)
    out = Path(hparams["output_folder"])
    save = Path(hparams["save_folder"])
    summarise_layers([0.0], hparams["summary_layer"])  # a wrong setting fails now, not after the run

    roots, all_mini = data_roots(hparams)
    skipped_files = []
    items, utterances = select_utterances(
        roots["valentini_folder"],
        hparams["valentini_subset"],
        hparams["max_utterances"],
        hparams["seed"],
        hparams["max_duration"],
        skipped_files,
    )
    noises = load_noises(
        roots["demand_folder"], hparams["demand_channel"], hparams["noise_max_seconds"], skipped_files
    )
    write_csv(out / "skipped_files.csv", skipped_files, ["file", "reason"])
    edges = [float(e) for e in hparams["rt60_edges"]]
    rirs, rir_bin, rir_rows = load_rirs(roots["mit_ir_folder"], edges, out / "rir_t60.csv")
    plan = DistortionPlan(
        noises, rirs, rir_bin, hparams["snrs"], rt60_bins(edges), hparams["families"], hparams["seed"]
    )
    logger.info("%d utterances, %d noises, %d impulse responses in bins", len(items), len(noises), len(rirs))

    tiny = hparams["tiny_checkpoints"]
    tiny = all_mini if tiny == "auto" else bool(tiny)
    models, skipped = load_recipe_models(
        hparams["models"],
        hparams["baseline"],
        device,
        save / "tiny_checkpoints" if tiny else None,
        hparams["tiny_seed"],
    )

    fingerprint = {
        "models": {m.key: [m.upstream, m.ckpt, m.info] for m in models},
        "utterances": [item["path"] for item in items],
        "max_duration": hparams["max_duration"],
        "noises": sorted(noises),
        "noise_max_seconds": hparams["noise_max_seconds"],
        "rirs": sorted(rir_bin.items()),
        "snrs": plan.snrs,
        "families": plan.families,
        "seed": hparams["seed"],
        "min_sigma": hparams["min_sigma"],
    }
    stats = evaluate_robustness(
        {m.key: m.encoder for m in models},
        utterances,
        plan,
        batch_size=hparams["batch_size"],
        device=device,
        min_sigma=hparams["min_sigma"],
        state_path=save / "robustness_state.pt",
        save_every=hparams["save_every"],
        fingerprint=fingerprint,
        progress=progress,
        desc=f"robustness ({len(models)} models)",
    )
    per_layer, summary_rows = [], []
    for model in models:
        rows, summ = result_rows(model, stats[model.key], hparams["summary_layer"])
        per_layer += rows
        summary_rows += summ

    write_csv(
        out / "robustness_per_layer.csv",
        per_layer,
        ["model", "layer", "family", "axis", "condition", "metric", "value", "frames"],
    )
    write_csv(
        out / "robustness_summary.csv",
        [{**r, "value": f"{r['value']:.6g}"} for r in summary_rows],
        ["model", "summary", "family", "axis", "condition", "metric", "value"],
    )
    names = [m.name for m in models]
    for family, axis, title in TABLES:
        if family in plan.families:
            plot_robustness(
                summary_rows,
                family,
                axis,
                plan.axis_values(family, axis),
                names,
                out / f"robustness_{family}_{axis}.png",
                title=f"{title} (layer summary: {hparams['summary_layer']})",
            )
            plot_robustness_layers(
                per_layer,
                family,
                axis,
                plan.axis_values(family, axis),
                names,
                out / f"robustness_layers_{family}_{axis}.png",
                title=f"{title}: every hidden layer",
            )
    text = report(hparams, roots, items, noises, rir_rows, plan, models, skipped, summary_rows)
    if skipped_files:
        text += f"\n{len(skipped_files)} unusable audio files were left out: see skipped_files.csv\n"
    write_text(out / "robustness_tables.md", text)
    print(text)
    return out


if __name__ == "__main__":
    main()
