#!/usr/bin/env python3
"""Scores enhancement systems on a test set made by ``create_testset.py``.

Rows of the results: ``distorted`` (the noisy input against the clean target), one
row per system, and ``clean`` (the clean target against itself). Metrics: STOI,
PESQ (wb), DNSMOS P.835 (SIG, BAK, OVRL; ONNX files of the ``speechmos`` wheel),
NISQA v2 (MOS, NOIS, DIS, COL, LOUD; weights from ``--nisqa_path``) and speaker
cosine similarity (``--speaker_model``: SpeechBrain ECAPA from a local folder, the
paper's metric, or Resemblyzer's bundled GE2E encoder, the default). A metric
whose model is absent is written as NaN with its reason, never as 0.

Systems:

- ``--system NAME=DIR`` (repeatable): a folder of enhanced files named ``<id>.wav``
  after the manifest's ids (any rate; resampled to 16 kHz);
- ``--model [NAME=]DIR`` (repeatable): a packaged model folder; the noisy files
  are enhanced first with ``SpectrumAwareEnhancer`` into
  ``<output_dir>/enhanced/<name>/<id>.wav`` (kept for resuming);
- ``--peer rnnoise|spectral_gating`` (repeatable): a classic enhancer of
  :mod:`speechbrain_sslse.peers`, applied the same way.

Written under ``--output_dir``: ``per_file.csv`` (system, id, snr, noise, t60,
speaker, each metric, ``missing`` reasons), ``per_snr.csv`` (means per system and
SNR), ``table.md`` (the paper's table, plus model files and missing metrics),
``metrics_vs_snr.png`` (each metric against SNR, one line per system) and
``model_info.json`` (which model files scored, their sha256, and the computation
time per second of audio of each metric).

Resumable: rows of ``per_file.csv`` already holding a value for a metric are kept;
only absent metrics are computed (a new ``--metrics`` choice adds columns). The CSV
is rewritten atomically after every ``--save_every`` files.

Example::

    python evaluate.py --manifest results/testset_mini/manifest.csv \\
        --system mysystem=path/to/enhanced --output_dir results/eval_mini
"""

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from speechbrain_sslse.audio import SAMPLE_RATE, AudioError, atomic_path, read_audio, write_audio
from speechbrain_sslse.metrics import GROUPS, Evaluator, default_nisqa_path, parse_metrics
from speechbrain_sslse.metrics.report import (
    TABLE_COLUMNS,
    group_means,
    markdown_per_snr,
    markdown_table,
    order_systems,
    plot_vs_snr,
    read_csv,
    to_float,
    write_csv,
)
from speechbrain_sslse.peers import PEERS

logger = logging.getLogger("evaluate")

BASE_FIELDS = ["system", "id", "snr", "noise", "t60", "speaker"]
MANIFEST_REQUIRED = ("id", "clean", "noisy", "snr")


def parse_args(argv=None):
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest", required=True, help="manifest.csv written by create_testset.py")
    p.add_argument("--output_dir", required=True)
    p.add_argument(
        "--system", action="append", default=[], metavar="NAME=DIR", help="folder of enhanced <id>.wav files"
    )
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="[NAME=]DIR",
        help="packaged model folder to enhance the noisy files with first (repeatable; NAME: system name)",
    )
    p.add_argument("--model_name", help="system name of a single --model (default: the folder's name)")
    p.add_argument(
        "--peer",
        action="append",
        default=[],
        choices=sorted(PEERS),
        help="also enhance with a classic method (speechbrain_sslse.peers; repeatable)",
    )
    p.add_argument("--metrics", default="all", help=f"comma-separated subset of {list(GROUPS)} or 'all'")
    p.add_argument("--nisqa_path", default=None, help=f"NISQA v2 nisqa.tar (default {default_nisqa_path()})")
    p.add_argument("--speaker_model", default="ge2e", help="'ge2e' or 'ecapa:/path/to/model_folder'")
    p.add_argument("--device", default="cpu")
    p.add_argument("--num_threads", type=int, default=0, help="torch/ONNX Runtime threads (0: default)")
    p.add_argument("--no_reference_rows", action="store_true", help="skip the distorted and clean rows")
    p.add_argument("--max_files", type=int, default=0, help="score only the first N manifest items (debug)")
    p.add_argument("--save_every", type=int, default=10, help="rewrite per_file.csv every N files")
    return p.parse_args(argv)


def read_manifest(path, max_files=0):
    """Reads the manifest; audio paths are resolved against the manifest's folder."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} not found; build one with create_testset.py")
    rows = read_csv(path)
    if not rows or any(k not in rows[0] for k in MANIFEST_REQUIRED):
        raise ValueError(f"{path}: not a test-set manifest (needs columns {', '.join(MANIFEST_REQUIRED)})")
    base = path.resolve().parent
    for row in rows:
        for key in ("clean", "noisy"):
            row[key] = str((base / row[key]).resolve())
    return rows[:max_files] if max_files > 0 else rows


def parse_systems(specs):
    """``NAME=DIR`` strings into an ordered ``{name: Path}``."""
    systems = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise ValueError(f"--system {spec!r}: expected NAME=DIR")
        if name in ("distorted", "clean") or name in systems:
            raise ValueError(f"--system {spec!r}: the name {name!r} is reserved or used twice")
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"--system {name}: folder {folder} does not exist")
        systems[name] = folder
    return systems


def enhance_with_model(model_dir, items, out_dir, device):
    """Enhances every noisy file with a packaged model (files already written are kept)."""
    from speechbrain_sslse.inference import SpectrumAwareEnhancer

    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [it for it in items if not (out_dir / f"{it['id']}.wav").is_file()]
    if not todo:
        return out_dir
    enhancer = SpectrumAwareEnhancer.from_hparams(source=str(model_dir), run_opts={"device": device})
    for it in tqdm(todo, desc=f"enhancing ({Path(model_dir).name})", unit="file"):
        enhancer.enhance_file(it["noisy"], str(out_dir / f"{it['id']}.wav"))
    return out_dir


def enhance_with_peer(name, items, out_dir):
    """Enhances every noisy file with a classic method of :mod:`speechbrain_sslse.peers` (resumable)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [it for it in items if not (out_dir / f"{it['id']}.wav").is_file()]
    for it in tqdm(todo, desc=f"enhancing ({name})", unit="file"):
        write_audio(out_dir / f"{it['id']}.wav", PEERS[name](read_audio(it["noisy"])), SAMPLE_RATE)
    return out_dir


def jobs_for(items, systems, with_references):
    """(system, item, estimate path, reference path) for every row of the results."""
    jobs = []
    if with_references:
        jobs += [("distorted", it, it["noisy"], it["clean"]) for it in items]
    for name, folder in systems.items():
        for it in items:
            est = folder / f"{it['id']}.wav"
            if not est.is_file():  # scored as missing, with the reason
                logger.warning("%s: enhanced file missing for system %r", est, name)
            jobs.append((name, it, str(est), it["clean"]))
    if with_references:
        jobs += [("clean", it, it["clean"], it["clean"]) for it in items]
    return jobs


def split_reasons(text):
    """``"group: reason | ..."`` into ``{group: reason}``."""
    out = {}
    for part in (text or "").split(" | "):
        group, sep, reason = part.partition(": ")
        if sep and group in GROUPS:
            out[group] = reason
    return out


def needed_groups(row, evaluator):
    """Groups of ``evaluator`` still to compute for an existing result row."""
    needed = []
    for group in evaluator.groups:
        cells = [row.get(c, "") for c in GROUPS[group]]
        absent = any(c in ("", None) for c in cells)
        retry = any(not math.isfinite(to_float(c)) for c in cells) and group not in evaluator.missing
        if absent or retry:
            needed.append(group)
    return needed


def fieldnames(groups):
    """per_file.csv columns for the given metric groups (table order)."""
    return BASE_FIELDS + [c for g in GROUPS if g in groups for c in GROUPS[g]] + ["missing"]


def write_reports(out, rows, groups, evaluator, manifest):
    """per_snr.csv, table.md, metrics_vs_snr.png and model_info.json from the per-file rows."""
    columns = [c for g in GROUPS if g in groups for c in GROUPS[g]]
    per_snr = group_means(rows, columns, keys=("system", "snr"))
    order = {s: i for i, s in enumerate(order_systems(r["system"] for r in rows))}
    per_snr.sort(key=lambda r: (order[r["system"]], to_float(r["snr"])))
    write_csv(out / "per_snr.csv", per_snr, ["system", "snr", "n"] + columns)
    plot_vs_snr(per_snr, columns, out / "metrics_vs_snr.png", title=f"{Path(manifest).parent.name}")

    previous = {}
    if (out / "model_info.json").is_file():
        previous = json.loads((out / "model_info.json").read_text())
    # models of metrics scored by earlier runs into this folder are still described
    info = {**previous.get("metrics", {}), **evaluator.info}
    missing = {g: v["missing"] for g, v in info.items() if "missing" in v}
    notes = [f"test set: {manifest} ({len({r['id'] for r in rows})} utterances)"]
    if "dnsmos" in info and "missing" not in info["dnsmos"]:
        files = ", ".join(f"{v['file']} (sha256 {v['sha256'][:12]})" for v in info["dnsmos"].values())
        notes.append(f"DNSMOS P.835, personalized=False, speechmos wheel: {files}")
    if "nisqa" in info and "missing" not in info["nisqa"]:
        notes.append(f"NISQA v2 weights: {info['nisqa']['path']} (sha256 {info['nisqa']['sha256'][:12]})")
    if "spk" in info and "missing" not in info["spk"]:
        spk = info["spk"]
        where = f" from {spk['source']}" if spk.get("source") else ""
        notes.append(f"speaker similarity: {spk['backend']} ({spk['model']}{where})")
    for group, reason in missing.items():
        notes.append(f"{group}: n/a, {reason}")
    failures = {}
    for r in rows:
        for group, reason in split_reasons(r.get("missing")).items():
            if group not in missing:
                failures.setdefault(group, []).append(reason)
    for group, reasons in failures.items():
        notes.append(
            f"{group}: missing for {len(reasons)} file(s), e.g. {reasons[0]} (left out of the means)"
        )
    table_cols = [c for c, _ in TABLE_COLUMNS if c in columns]
    text = "# Results\n\n" + markdown_table(rows, table_cols, notes) + "\n"
    text += "\n## Per SNR\n\n" + markdown_per_snr(per_snr, table_cols) + "\n"
    _write_text(out / "table.md", text)
    rtf = {**previous.get("seconds_per_audio_second", {}), **evaluator.real_time_factors()}
    summary = {"metrics": info, "seconds_per_audio_second": rtf}
    _write_text(out / "model_info.json", json.dumps(summary, indent=2))
    return text


def _write_text(path, text):
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def main(argv=None):
    """Runs the evaluation; returns the markdown table."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.output_dir).expanduser()
    try:
        groups = parse_metrics(args.metrics)
        items = read_manifest(args.manifest, args.max_files)
        systems = parse_systems(args.system)
        for spec in args.model:
            name, sep, folder = spec.rpartition("=")
            if not sep:
                single = len(args.model) == 1 and args.model_name
                name = args.model_name if single else Path(folder).resolve().name
            systems[name] = enhance_with_model(folder, items, out / "enhanced" / name, args.device)
        for peer in args.peer:
            systems[peer] = enhance_with_peer(peer, items, out / "enhanced" / peer)
        jobs = jobs_for(items, systems, not args.no_reference_rows)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    if not jobs:
        sys.exit("error: nothing to score (no --system/--model and --no_reference_rows)")

    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    evaluator = Evaluator(
        groups,
        nisqa_path=args.nisqa_path,
        speaker_model=args.speaker_model,
        device=args.device,
        num_threads=args.num_threads or None,
    )
    for group, reason in evaluator.missing.items():
        logger.warning("metric %s is missing: %s", group, reason)

    per_file = out / "per_file.csv"
    existing = {}
    old_groups = set()
    if per_file.is_file():
        old_rows = read_csv(per_file)
        if old_rows:
            old_groups = {g for g in GROUPS if all(c in old_rows[0] for c in GROUPS[g])}
        existing = {(r["system"], r["id"]): r for r in old_rows}
    all_groups = [g for g in GROUPS if g in set(groups) | old_groups]
    fields = fieldnames(all_groups)

    results = dict(existing)
    todo = [(job, needed_groups(existing.get((job[0], job[1]["id"]), {}), evaluator)) for job in jobs]
    todo = [(job, need) for job, need in todo if need]
    logger.info("%d rows to score (%d already scored)", len(todo), len(jobs) - len(todo))
    out.mkdir(parents=True, exist_ok=True)
    for n, ((system, item, est, ref), need) in enumerate(tqdm(todo, desc="scoring", unit="file"), 1):
        try:
            scores = evaluator.evaluate(est, ref, groups=need, reference_key=ref)
        except AudioError as err:  # this file cannot be scored: NaN with the reason, the run goes on
            logger.warning("cannot score %s: %s", est, err)
            scores = {c: float("nan") for g in need for c in GROUPS[g]}
            scores["missing"] = " | ".join(f"{g}: {err}" for g in need)
        key = (system, item["id"])
        row = dict(results.get(key, {}))
        row.update({k: item.get(k, "") for k in BASE_FIELDS if k != "system"})
        row["system"] = system
        reasons = split_reasons(row.get("missing"))
        for g in need:
            reasons.pop(g, None)
        reasons.update(split_reasons(scores.pop("missing")))
        row.update(scores)
        row["missing"] = " | ".join(f"{g}: {r}" for g, r in reasons.items())
        results[key] = row
        if n % args.save_every == 0:
            write_csv(per_file, list(results.values()), fields)
    job_keys = [(j[0], j[1]["id"]) for j in jobs]
    scheduled = set(job_keys)
    rows = [results[k] for k in job_keys] + [r for k, r in results.items() if k not in scheduled]
    write_csv(per_file, rows, fields)
    ids = {it["id"] for it in items}  # every system scored so far, on the current items
    current = [r for r in rows if r["id"] in ids]
    text = write_reports(out, current, all_groups, evaluator, args.manifest)
    print(text)
    return text


if __name__ == "__main__":
    main()
