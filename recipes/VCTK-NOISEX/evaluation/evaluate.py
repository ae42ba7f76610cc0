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
- ``--peer NAME`` (repeatable): an enhancer of :mod:`speechbrain_sslse.peers`
  (every name of ``PEERS``), applied the same way.

Every mean is given with its 95% confidence interval (bootstrap over the files), and
every system with its paired difference to the unprocessed input (``distorted``) and to
the best peer, with their intervals (:mod:`speechbrain_sslse.metrics.significance`).

Written under ``--output_dir``: ``per_file.csv`` (system, id, snr, noise, t60,
speaker, each metric, ``missing`` reasons, the checksum of the system that made the
row), ``per_snr.csv`` (means per system and SNR with their intervals), ``table.md``
(the paper's table with intervals, the paired differences, the per-SNR table, the
model files and checksums, missing metrics), ``table_ci.csv`` (system, metric, n,
mean, lo, hi), ``differences.csv`` (the paired differences), ``metrics_vs_snr.png``
(each metric against SNR, one line per system, with files per point and intervals),
``model_info.json`` (the metric models and every system's path and sha256, and the
computation time per second of audio of each metric) and ``report/index.html``, a
listening page (tables, plot, and for ``--listen_per_snr`` files per SNR a player and
a spectrogram of the input, every system and the clean reference; offline).

Resumable: rows of ``per_file.csv`` already holding a value for a metric are kept;
only absent metrics are computed (a new ``--metrics`` choice adds columns). The CSV
is rewritten atomically after every ``--save_every`` files. Reuse is keyed on what
made the files: ``enhanced/<name>/`` is kept only when its ``source.json`` holds the
checksum of the current model folder (or of the peer's code), otherwise it is enhanced
again; rows of ``per_file.csv`` made by another checksum of a system (another model,
changed files of a ``--system`` folder) are scored again.

Example::

    python evaluate.py --manifest results/testset_mini/manifest.csv \\
        --system mysystem=path/to/enhanced --output_dir results/eval_mini
"""

import argparse
import hashlib
import json
import logging
import math
import sys
from pathlib import Path

import torch
from tqdm import tqdm

import speechbrain_sslse.peers as peers_module
from speechbrain_sslse.audio import SAMPLE_RATE, AudioError, read_audio, write_audio
from speechbrain_sslse.fast import resolve_precision
from speechbrain_sslse.files import read_csv, sha256_file, write_csv, write_text
from speechbrain_sslse.metrics import GROUPS, Evaluator, default_nisqa_path, parse_metrics
from speechbrain_sslse.metrics.listening import write_listening_page
from speechbrain_sslse.metrics.report import (
    TABLE_COLUMNS,
    interval_rows,
    markdown_differences,
    markdown_per_snr,
    markdown_table,
    order_systems,
    plot_vs_snr,
    to_float,
)
from speechbrain_sslse.metrics.significance import N_RESAMPLES, mean_intervals, paired_differences

PEERS = peers_module.PEERS
#: what a peer whose package is not installed raises (its message gives the install command)
PEER_UNAVAILABLE = getattr(peers_module, "PeerUnavailable", ImportError)

logger = logging.getLogger("evaluate")

BASE_FIELDS = ["system", "id", "snr", "noise", "t60", "speaker"]
MANIFEST_REQUIRED = ("id", "clean", "noisy", "snr")
#: file in ``enhanced/<name>/`` recording what made its files (kind, path, sha256)
STAMP = "source.json"
NISQA_NOTE = (
    "NISQA MOS (and NOIS, DIS, COL, LOUD) is a regression output, not clipped: on heavily "
    "degraded audio it can fall outside 1-5."
)


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
        help="also enhance with a peer of speechbrain_sslse.peers (repeatable)",
    )
    p.add_argument("--metrics", default="all", help=f"comma-separated subset of {list(GROUPS)} or 'all'")
    p.add_argument("--nisqa_path", default=None, help=f"NISQA v2 nisqa.tar (default {default_nisqa_path()})")
    p.add_argument("--speaker_model", default="ge2e", help="'ge2e' or 'ecapa:/path/to/model_folder'")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="inference precision of the --model systems (auto: bf16 on a CPU with native bf16, "
        "fp32 on other CPUs; recorded in model_info.json)",
    )
    p.add_argument("--num_threads", type=int, default=0, help="torch/ONNX Runtime threads (0: default)")
    p.add_argument("--no_reference_rows", action="store_true", help="skip the distorted and clean rows")
    p.add_argument("--max_files", type=int, default=0, help="score only the first N manifest items (debug)")
    p.add_argument("--save_every", type=int, default=10, help="rewrite per_file.csv every N files")
    p.add_argument(
        "--listen_per_snr", type=int, default=2, help="files per SNR with players on report/index.html"
    )
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


def folder_checksum(folder, pattern="**/*", skip_suffixes=()):
    """sha256 over the relative paths and contents of a folder's files (hidden files and caches left out).

    Arguments
    ---------
    folder : str or Path
        The folder.
    pattern : str
        Glob of the files that count (default: every file, recursively).
    skip_suffixes : tuple of str
        File suffixes that do not count (e.g. ``(".md",)``: a model card changes no output).

    Returns
    -------
    str
        Hex digest; it changes when any counted file is added, removed, renamed or edited.
    """
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(folder.glob(pattern)):
        rel = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if path.suffix.lower() in skip_suffixes:
            continue
        digest.update(f"{rel.as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def model_provenance(model_dir, precision="fp32"):
    """What a ``--model`` system is: ``{"kind": "model", "path", "sha256", "precision"}``.

    The checksum covers every file of the folder but the model card (``*.md``): writing the
    test results into the card (``ship_model.py``) does not make the scored rows stale.
    ``precision`` is the resolved inference precision (``fp32``, ``bf16``): files enhanced
    in another precision are enhanced again.
    """
    from speechbrain_sslse.inference import check_model_folder

    folder = check_model_folder(model_dir).resolve()
    checksum = folder_checksum(folder, skip_suffixes=(".md",))
    return {"kind": "model", "path": str(folder), "sha256": checksum, "precision": precision}


def peers_code_checksum(path=None):
    """sha256 of the peers' code: every file of the ``speechbrain_sslse.peers`` package.

    The files are hashed in sorted order with their paths (:func:`folder_checksum`; caches
    and hidden files left out), so that editing, adding or removing any module of the
    package changes it. A single-module ``peers.py`` (an older installation) is hashed alone.

    Arguments
    ---------
    path : str or Path, optional
        The package folder (or module file); default: the installed ``speechbrain_sslse.peers``.

    Returns
    -------
    str
        Hex digest.

    Example
    -------
    >>> len(peers_code_checksum())
    64
    """
    path = peers_code_path() if path is None else Path(path)
    return folder_checksum(path) if path.is_dir() else sha256_file(path)


def peers_code_path():
    """The installed peers' code: the ``speechbrain_sslse/peers`` folder (or an older ``peers.py``)."""
    path = Path(peers_module.__file__).resolve()
    return path.parent if path.name == "__init__.py" else path


def peer_provenance(name):
    """What a ``--peer`` system is: its function and the checksum of the peers' code (all of its files)."""
    path = peers_code_path()
    return {
        "kind": "peer",
        "path": str(path),
        "function": f"speechbrain_sslse.peers.{PEERS[name].__name__}",
        "sha256": peers_code_checksum(path),
    }


def folder_provenance(folder):
    """What a ``--system`` folder is: its path and the checksum of its WAV files."""
    folder = Path(folder).resolve()
    return {"kind": "folder", "path": str(folder), "sha256": folder_checksum(folder, "*.wav")}


def prepare_enhanced_dir(out_dir, provenance):
    """Keeps ``enhanced/<name>/`` only when it was made by the same model; records what makes it.

    Arguments
    ---------
    out_dir : Path
        ``<output_dir>/enhanced/<name>``.
    provenance : dict
        The current system (``kind``, ``path``, ``sha256``, a model's ``precision``), written
        to ``out_dir/source.json``.

    Returns
    -------
    bool
        True when files of another model (another checksum or precision, or an unrecorded one) were
        removed, so that every file is enhanced again.
    """
    stamp = out_dir / STAMP
    old = {}
    if stamp.is_file():
        try:
            old = json.loads(stamp.read_text())
        except ValueError:
            old = {}
    old_sha = old.get("sha256") if isinstance(old, dict) else None
    old_version = system_version(old) if old_sha else None
    wavs = sorted(out_dir.glob("*.wav")) if out_dir.is_dir() else []
    cleared = bool(wavs) and old_version != system_version(provenance)
    if cleared:
        made_by = "an unrecorded model (no source.json)"
        if old_sha:
            made_by = f"{old.get('path')} (sha256 {old_version[:12]}{old_version[64:]})"
        logger.warning(
            "%s: its %d files were made by %s, not by %s (sha256 %s%s): enhancing them again",
            out_dir, len(wavs), made_by, provenance["path"], provenance["sha256"][:12],
            system_version(provenance)[64:],
        )  # fmt: skip
        for wav in wavs:
            wav.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    if old != provenance:
        write_text(stamp, json.dumps(provenance, indent=2))
    return cleared


def enhance_with_model(model_dir, items, out_dir, device, precision="auto"):
    """Enhances every noisy file with a packaged model (files already written are kept)."""
    from speechbrain_sslse.inference import SpectrumAwareEnhancer

    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [it for it in items if not (out_dir / f"{it['id']}.wav").is_file()]
    if not todo:
        return out_dir
    enhancer = SpectrumAwareEnhancer.from_hparams(
        source=str(model_dir), run_opts={"device": device}, precision=precision
    )
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
    return BASE_FIELDS + [c for g in GROUPS if g in groups for c in GROUPS[g]] + ["missing", "system_sha256"]


def system_version(record):
    """What a scored row records of its system (``system_sha256``): the checksum, and the precision.

    A model run in a precision other than fp32 is another version of it: ``<sha256>:bf16``.

    Example
    -------
    >>> system_version({"kind": "model", "sha256": "ab12", "precision": "bf16"})
    'ab12:bf16'
    >>> system_version({"kind": "peer", "sha256": "cd34"})
    'cd34'
    """
    precision = record.get("precision", "fp32")
    return record["sha256"] + ("" if precision == "fp32" else f":{precision}")


def describe_system(name, record):
    """One line of table.md saying what a system is and its checksum."""
    sha = record.get("sha256", "")[:12]
    if record.get("kind") == "model":
        precision = record.get("precision", "fp32")
        return f"system `{name}`: model folder `{record['path']}` (sha256 of its files {sha}; {precision})"
    if record.get("kind") == "peer":
        return f"system `{name}`: peer `{record['function']}` (`{record['path']}`, sha256 {sha})"
    return f"system `{name}`: enhanced files in `{record.get('path')}` (sha256 of its WAV files {sha})"


def write_reports(out, rows, groups, evaluator, manifest, systems_info=None):
    """per_snr.csv, table.md, table_ci.csv, differences.csv, metrics_vs_snr.png and model_info.json.

    Arguments
    ---------
    out : Path
        Output folder.
    rows : list of dict
        Per-file results of the current items.
    groups : list of str
        Metric groups present.
    evaluator : Evaluator
        Its model records and timings go to model_info.json.
    manifest : str or Path
        The test set (named in the notes).
    systems_info : dict or None
        ``{system: {"kind", "path", "sha256", ...}}`` of this run's systems; merged with
        those recorded by earlier runs into ``out``.

    Returns
    -------
    tuple
        ``(table.md text, {system: record})``.
    """
    columns = [c for g in GROUPS if g in groups for c in GROUPS[g]]
    per_snr = mean_intervals(rows, columns, keys=("system", "snr"))
    order = {s: i for i, s in enumerate(order_systems(r["system"] for r in rows))}
    per_snr.sort(key=lambda r: (order[r["system"]], to_float(r["snr"])))
    bounds = [f"{c}_{b}" for c in columns for b in ("lo", "hi")]
    write_csv(out / "per_snr.csv", per_snr, ["system", "snr", "n"] + columns + bounds)
    numeric = [r for r in per_snr if math.isfinite(to_float(r["snr"]))]  # snr "real": recorded pairs
    plot_vs_snr(numeric, columns, out / "metrics_vs_snr.png", title=f"{Path(manifest).parent.name}")

    previous = {}
    if (out / "model_info.json").is_file():
        previous = json.loads((out / "model_info.json").read_text())
    # models of metrics scored by earlier runs into this folder are still described
    info = {**previous.get("metrics", {}), **evaluator.info}
    scored = list(order)  # systems in table order
    known = {**previous.get("systems", {}), **(systems_info or {})}
    systems_record = {s: known[s] for s in order_systems(scored) if s in known}
    missing = {g: v["missing"] for g, v in info.items() if "missing" in v}
    notes = [
        f"each cell: mean ± half the width of its 95% confidence interval (percentile bootstrap over "
        f"the files, {N_RESAMPLES} resamples, seed 0); the bounds are in `table_ci.csv`",
        f"test set: {manifest} ({len({r['id'] for r in rows})} utterances)",
    ]
    notes += [describe_system(name, record) for name, record in systems_record.items()]
    if "nisqa" in groups:
        notes.append(NISQA_NOTE)
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
    intervals = mean_intervals(rows, columns)
    ci_fields = ["system", "metric", "n", "mean", "lo", "hi"]
    write_csv(out / "table_ci.csv", interval_rows(intervals, columns), ci_fields)
    compared = [s for s in order_systems(scored) if s not in ("distorted", "clean")]
    peers = [s for s in compared if systems_record.get(s, {}).get("kind") == "peer" or s in PEERS]
    diffs = paired_differences(rows, columns, compared, reference="distorted", peers=peers)
    diff_fields = ["system", "against", "reference_system", "metric", "n", "mean", "lo", "hi", "significant"]
    write_csv(out / "differences.csv", diffs, diff_fields)

    text = "# Results\n\n" + markdown_table(rows, table_cols, notes, ci=True) + "\n"
    diff_text = markdown_differences([d for d in diffs if d["metric"] in table_cols], table_cols, compared)
    if diff_text:
        text += (
            "\n## Paired differences\n\n"
            "Mean over the files of the per-file difference (system minus the other), with its 95% "
            "bootstrap interval; `*`: the interval excludes 0, a difference larger than the sampling "
            "noise of this test set. All rows: `differences.csv`.\n\n" + diff_text + "\n"
        )
    text += "\n## Per SNR\n\n" + markdown_per_snr(per_snr, table_cols) + "\n"
    write_text(out / "table.md", text)
    rtf = {**previous.get("seconds_per_audio_second", {}), **evaluator.real_time_factors()}
    summary = {"metrics": info, "systems": {**previous.get("systems", {}), **systems_record}}
    summary["seconds_per_audio_second"] = rtf
    write_text(out / "model_info.json", json.dumps(summary, indent=2))
    return text, systems_record


def listening_samples(rows, items, system_dirs, per_snr):
    """The files of the listening page: the first ``per_snr`` scored items of each SNR.

    Returns
    -------
    tuple
        ``(samples, systems)`` for :func:`speechbrain_sslse.metrics.listening.write_listening_page`.
    """
    systems = order_systems(r["system"] for r in rows)
    scored = {r["id"] for r in rows}
    by_snr = {}
    for it in items:
        if it["id"] in scored and len(by_snr.setdefault(it["snr"], [])) < per_snr:
            by_snr[it["snr"]].append(it)  # keyed by the cell: a non-numeric snr ("real") is a group too
    samples = []
    numbers = sorted((s for s in by_snr if math.isfinite(to_float(s))), key=to_float)
    for snr in numbers + sorted(set(by_snr) - set(numbers)):
        group = f"SNR {to_float(snr):g} dB" if math.isfinite(to_float(snr)) else f"{snr} recordings"
        for it in by_snr[snr]:
            audio = {"distorted": it["noisy"], "clean": it["clean"]}
            for name in systems:
                if name in system_dirs:
                    audio[name] = Path(system_dirs[name]) / f"{it['id']}.wav"
            details = [f"noise {it['noise']}"] if it.get("noise") else []
            details += [f"T60 {to_float(it['t60']):.2f} s"] if math.isfinite(to_float(it.get("t60"))) else []
            caption = ", ".join(details)
            samples.append({"id": it["id"], "group": group, "caption": caption, "audio": audio})
    return samples, systems


def write_report_page(out, text, rows, items, system_dirs, per_snr):
    """``report/index.html``: the tables of ``table.md``, the per-SNR plot and the samples."""
    results, _, per_snr_text = text.partition("\n## Per SNR\n")
    results = results.split("\n", 1)[1] if results.startswith("# Results") else results
    samples, systems = listening_samples(rows, items, system_dirs, per_snr) if per_snr > 0 else ([], [])
    blocks = ["## Results\n" + results, "## Per SNR", out / "metrics_vs_snr.png"]
    n_files = len({r["id"] for r in rows})
    return write_listening_page(
        out / "report", samples, systems, blocks=blocks, title=f"Listening page: {out.name}",
        intro=f"{n_files} test files, {len(order_systems(r['system'] for r in rows))} rows of results "
        f"(unprocessed input, systems, clean reference). Everything on this page is in this folder.",
        appendix=["## Per SNR table\n" + per_snr_text],
    )  # fmt: skip


def main(argv=None):
    """Runs the evaluation; returns the markdown table."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.output_dir).expanduser()
    try:
        groups = parse_metrics(args.metrics)
        items = read_manifest(args.manifest, args.max_files)
        systems = parse_systems(args.system)
        provenance = {name: folder_provenance(folder) for name, folder in systems.items()}
        for spec in args.model:
            name, sep, folder = spec.rpartition("=")
            if not sep:
                single = len(args.model) == 1 and args.model_name
                name = args.model_name if single else Path(folder).resolve().name
            provenance[name] = model_provenance(folder, resolve_precision(args.precision, args.device))
            prepare_enhanced_dir(out / "enhanced" / name, provenance[name])
            systems[name] = enhance_with_model(
                folder, items, out / "enhanced" / name, args.device, provenance[name]["precision"]
            )
        for peer in args.peer:
            provenance[peer] = peer_provenance(peer)
            prepare_enhanced_dir(out / "enhanced" / peer, provenance[peer])
            systems[peer] = enhance_with_peer(peer, items, out / "enhanced" / peer)
        jobs = jobs_for(items, systems, not args.no_reference_rows)
    except (FileNotFoundError, ValueError, PEER_UNAVAILABLE) as err:
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

    shas = {name: system_version(record) for name, record in provenance.items()}
    stale = {}  # rows made by another model (or other files) under the same system name
    for system, item, _, _ in jobs:
        key = (system, item["id"])
        if key in existing and system in shas and existing[key].get("system_sha256", "") != shas[system]:
            stale[system] = stale.get(system, 0) + 1
            del existing[key]
    for system, count in stale.items():
        logger.warning(
            "%d scored row(s) of %r were made by another version of it (sha256 now %s): scoring them again",
            count, system, shas[system][:12],
        )  # fmt: skip
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
        row["system_sha256"] = shas.get(system, "")
        results[key] = row
        if n % args.save_every == 0:
            write_csv(per_file, list(results.values()), fields)
    job_keys = [(j[0], j[1]["id"]) for j in jobs]
    scheduled = set(job_keys)
    rows = [results[k] for k in job_keys] + [r for k, r in results.items() if k not in scheduled]
    write_csv(per_file, rows, fields)
    ids = {it["id"] for it in items}  # every system scored so far, on the current items
    current = [r for r in rows if r["id"] in ids]
    text, records = write_reports(out, current, all_groups, evaluator, args.manifest, provenance)
    system_dirs = {n: r["path"] for n, r in records.items() if r.get("kind") == "folder"}
    enhanced = [n for n, r in records.items() if r.get("kind") in ("model", "peer")]
    system_dirs.update({n: out / "enhanced" / n for n in enhanced})
    system_dirs.update(systems)
    page = write_report_page(out, text, current, items, system_dirs, args.listen_per_snr)
    print(text)
    logger.info("listening page: %s", page)
    return text


if __name__ == "__main__":
    main()
