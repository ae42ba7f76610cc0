#!/usr/bin/env python3
"""Recipe: information preserved in SSL speech embeddings, linear probes on TIMIT (ICEIC 2024).

Per model (s3prl upstreams from local checkpoints, plus the log-mel reference) and
hidden layer, segment embeddings are mean-pooled (SA1 phonemes and words, whole SX
utterances), and a multinomial logistic regression is fitted per target: SA1
phoneme, SA1 word, SX sentence, SX speaker. The table reports the training accuracy
(linear separability, the paper's measure) and, as an extra column, the accuracy on
a held-out stratified split. A t-SNE plot shows one phoneme's embeddings coloured by
word and by speaker gender.

To run (embedded mini corpus, tiny random-weight checkpoints: numbers mean nothing)::

    python probe_information.py hparams/information.yaml

On real TIMIT with real checkpoints::

    python probe_information.py hparams/information.yaml --data_folder=/data/TIMIT \\
        --tera_ckpt=/ckpt/states-1000000.ckpt --hubert_ckpt=/ckpt/hubert_base_ls960.pt \\
        --wavlm_ckpt=/ckpt/WavLM-Base+.pt --wav2vec2_ckpt=/ckpt/wav2vec_small.pt --device=cuda

Outputs (in ``output_folder``): ``information_table.md``, ``information_per_layer.csv``,
``information_summary.csv``, ``information_layers.png`` (the accuracy of every layer of
every model, per probe), ``tsne_<phoneme>_<model>.png``; manifests and per-model
results (resume points) under ``save_folder``.

Authors
 * speechbrain-sslse contributors
"""

import hashlib
import json
import logging
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timit_prepare import COUNTS_FILE, prepare_timit, read_manifest  # noqa: E402

from speechbrain_sslse.audio import atomic_path, read_audio  # noqa: E402
from speechbrain_sslse.files import write_csv, write_text
from speechbrain_sslse.probing import (
    TINY_WARNING,
    encode_batches,
    information_table,
    load_recipe_models,
    models_table,
    plot_tsne,
    pool_segments,
    probe_layers,
    start_recipe,  # noqa: E402
    summarise_layers,
)
from speechbrain_sslse.probing.plots import plot_information_layers  # noqa: E402

logger = logging.getLogger(__name__)

TITLES = {
    "sa1_phoneme": "sa1 phoneme",
    "sa1_word": "sa1 word",
    "sx_sentence": "sx sentence",
    "sx_speaker": "sx speaker",
}


def timit_root(hparams):
    """The TIMIT root, and whether it is the embedded mini corpus (generated on first use)."""
    if hparams["data_folder"] is not None:
        return Path(hparams["data_folder"]), False
    from speechbrain_sslse.corpus import ensure_corpus

    mini = ensure_corpus(
        hparams["mini_corpus_folder"], size=hparams["mini_corpus_size"], seed=hparams["mini_corpus_seed"]
    )
    return Path(mini) / "TIMIT", True


def pooled_features(model, manifests, batch_size, chunk, device, progress):
    """Mean-pooled segment embeddings ``task -> [n, L, D]`` (float32) for one model."""
    hop = model.encoder.hop_length
    by_wav = {}
    for task, rows in manifests.items():
        for index, row in enumerate(rows):
            by_wav.setdefault(row["wav"], []).append((task, index, row["start"], row["end"]))
    layers, dim = model.encoder.num_layers, model.encoder.hidden_size
    pooled = {task: np.zeros((len(rows), layers, dim), dtype=np.float32) for task, rows in manifests.items()}
    wav_paths = sorted(by_wav)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(wav_paths), desc=f"embeddings: {model.name}", disable=not progress)
    for first in range(0, len(wav_paths), chunk):
        paths = wav_paths[first : first + chunk]
        wavs = [read_audio(p, min_duration=0.05) for p in paths]
        for k, hidden in encode_batches(model.encoder, wavs, batch_size, device):
            segments = by_wav[paths[k]]
            feats = pool_segments(hidden, [(s, e) for _, _, s, e in segments], hop).numpy()
            for (task, index, _, _), feat in zip(segments, feats):
                pooled[task][index] = feat
            bar.update(1)
    bar.close()
    return pooled


def tsne_phoneme(rows, wanted):
    """The phoneme to plot: ``wanted`` when SA1 has it, else SA1's most frequent phoneme."""
    counts = Counter(r["label"] for r in rows)
    if counts.get(wanted, 0) >= 5:
        return wanted
    fallback = counts.most_common(1)[0][0]
    logger.info("phoneme %r has fewer than 5 SA1 occurrences; t-SNE of %r instead", wanted, fallback)
    return fallback


def summarise(results, summary):
    """Train / held-out accuracy of one task from per-layer results."""
    if summary == "best":
        summary = "best_max"
    return (
        summarise_layers([r["train_acc"] for r in results], summary),
        summarise_layers([r["heldout_acc"] for r in results], summary),
    )


def file_digest(paths):
    """SHA-1 of the given files' contents (identifies a set of manifests)."""
    h = hashlib.sha1()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()


def main(argv=None):
    """Runs the recipe (``argv`` as on the command line)."""
    hparams, device, progress = start_recipe(sys.argv[1:] if argv is None else argv)
    out = Path(hparams["output_folder"])
    save = Path(hparams["save_folder"])
    summarise([{"train_acc": 0.0, "heldout_acc": 0.0}], hparams["summary_layer"])  # fail early if wrong

    root, mini = timit_root(hparams)
    manifest_paths = prepare_timit(
        root, save / "manifests", hparams["splits"], hparams["drop_phonemes"], hparams["skip_prep"]
    )
    tasks = [str(t) for t in hparams["tasks"]]
    unknown = sorted(set(tasks) - set(TITLES))
    if unknown:
        raise ValueError(f"unknown probe tasks {unknown}: choose from {sorted(TITLES)}")
    manifests = {task: read_manifest(manifest_paths[task]) for task in tasks}
    counts = json.loads((save / "manifests" / COUNTS_FILE).read_text(encoding="utf-8"))
    phoneme = None
    if "sa1_phoneme" in manifests:
        phoneme = tsne_phoneme(manifests["sa1_phoneme"], hparams["tsne_phoneme"])

    tiny = hparams["tiny_checkpoints"]
    tiny = mini if tiny == "auto" else bool(tiny)
    models, skipped = load_recipe_models(
        hparams["models"],
        hparams["baseline"],
        device,
        save / "tiny_checkpoints" if tiny else None,
        hparams["tiny_seed"],
    )

    probe_args = {
        "max_iter": int(hparams["max_iter"]),
        "C": float(hparams["C"]),
        "test_fraction": float(hparams["test_fraction"]),
        "seed": int(hparams["seed"]),
    }
    digest = file_digest(manifest_paths[t] for t in tasks)
    per_layer, summary_rows = [], []
    for model in models:
        fingerprint = {"model": [model.upstream, model.ckpt, model.info], "manifests": digest, **probe_args}
        state_path = save / "probe_state" / f"{model.key}.json"
        tsne_path = out / f"tsne_{phoneme}_{model.key}.png"
        results = None
        if state_path.is_file():
            saved = json.loads(state_path.read_text(encoding="utf-8"))
            if saved["fingerprint"] == json.loads(json.dumps(fingerprint)):
                results = saved["results"]
                logger.info("%s: probe results reused from %s", model.name, state_path)
        if results is None or (phoneme is not None and not tsne_path.is_file()):
            pooled = pooled_features(
                model, manifests, hparams["batch_size"], hparams["utterances_per_chunk"], device, progress
            )
            if phoneme is not None:
                rows = manifests["sa1_phoneme"]
                mask = np.array([r["label"] == phoneme for r in rows])
                layer = summarise_layers(range(model.encoder.num_layers), int(hparams["tsne_layer"]))
                plot_tsne(
                    pooled["sa1_phoneme"][mask, int(layer)],
                    [r["word"] or "?" for r, m in zip(rows, mask) if m],
                    [r["gender"] for r, m in zip(rows, mask) if m],
                    tsne_path,
                    title=f"/{phoneme}/ in SA1: {model.name}, hidden state {int(layer)}",
                    perplexity=float(hparams["tsne_perplexity"]),
                    seed=int(hparams["seed"]),
                )
        if results is None:
            results = {}
            for task in tasks:
                labels = [r["label"] for r in manifests[task]]
                logger.info("%s: probing %s (%d samples)", model.name, task, len(labels))
                results[task] = probe_layers(pooled[task], labels, **probe_args)
            with atomic_path(state_path) as tmp, open(tmp, "w", encoding="utf-8") as f:
                json.dump({"fingerprint": fingerprint, "results": results}, f)
        for task in tasks:
            for layer, r in enumerate(results[task]):
                per_layer.append({"model": model.name, "layer": layer, "task": task, **r})
            train, heldout = summarise(results[task], hparams["summary_layer"])
            summary_rows.append(
                {
                    "model": model.name,
                    "summary": hparams["summary_layer"],
                    "task": task,
                    "n_classes": results[task][0]["n_classes"],
                    "n": results[task][0]["n"],
                    "train_acc": train,
                    "heldout_acc": heldout,
                    "chance": results[task][0]["chance"],
                }
            )

    fields = ["model", "layer", "task", "n", "n_classes", "n_train", "n_test", "train_acc", "heldout_acc"]
    write_csv(out / "information_per_layer.csv", per_layer, fields + ["chance", "converged"])
    write_csv(
        out / "information_summary.csv",
        summary_rows,
        ["model", "summary", "task", "n", "n_classes", "train_acc", "heldout_acc", "chance"],
    )
    plot_information_layers(
        per_layer, [(t, TITLES[t]) for t in tasks], [m.name for m in models], out / "information_layers.png"
    )
    text = report(hparams, root, counts, tasks, phoneme, models, skipped, summary_rows, per_layer)
    write_text(out / "information_table.md", text)
    print(text)
    return out


def report(hparams, root, counts, tasks, phoneme, models, skipped, summary_rows, per_layer):
    """The markdown report: setup, models, the probe table."""
    names = [m.name for m in models]
    lines = ["# Information in speech embeddings: linear probes on TIMIT (ICEIC 2024)", ""]
    if any(m.tiny for m in models):
        lines += [f"**{TINY_WARNING}**", ""]
    not_converged = sum(1 for r in per_layer if not r["converged"])
    lines += [
        f"- data: TIMIT `{root}`, splits {list(hparams['splits'])}; dropped phoneme labels: "
        f"{list(hparams['drop_phonemes'])}",
        "- samples per probe: "
        + ", ".join(f"{TITLES[t]} {sum(counts[t].values())} ({len(counts[t])} classes)" for t in tasks),
        f"- layer summary: `{hparams['summary_layer']}` (last = last hidden state, mean = mean of the "
        "per-layer accuracies, best = best layer per column); every layer is in information_per_layer.csv",
        "- probe: standardisation + multinomial logistic regression (lbfgs, "
        f"C={hparams['C']}, max_iter={hparams['max_iter']}); train = accuracy on the fitting data "
        f"(linear separability, the paper's measure); held-out = accuracy on a stratified "
        f"{hparams['test_fraction']:g} split (classes with one sample stay in training)",
        f"- fits that stopped at max_iter before converging: {not_converged} of {len(per_layer)}",
    ]
    if phoneme is not None:
        lines.append(f"- t-SNE: /{phoneme}/ embeddings of SA1, tsne_{phoneme}_<model>.png")
    lines += ["", models_table(models, skipped)]
    lines += [
        "",
        "## Probe accuracy",
        "",
        information_table(summary_rows, [(t, TITLES[t]) for t in tasks], names),
    ]
    chance = {r["task"]: r["chance"] for r in summary_rows}
    lines += [
        "",
        "Majority-class rate: " + ", ".join(f"{TITLES[t]} {chance[t]:.3f}" for t in tasks if t in chance),
    ]
    if any(isinstance(r["heldout_acc"], float) and math.isnan(r["heldout_acc"]) for r in summary_rows):
        lines.append("n/a held-out: no class of that probe has two samples.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
