#!/usr/bin/env python3
"""Builds the training data of the model shipped in the package, in the DNS 2021 layout.

Every real recording of the asset collection beside the project (``../shared/assets``)
that is not held out (:func:`speechbrain_sslse.data.assets.split_assets`: held-out
speakers, noises, rooms and all real noisy recordings stay out) is converted to 16 kHz
mono WAV in one DNS-layout folder that ``train.py --data_folder=<out>/DNS`` reads unchanged:

- ``DNS/clean/<speaker>/*.wav``: LibriSpeech, speechocean762 and CMU ARCTIC training
  speakers; with ``--min_bak`` (off by default: DNSMOS costs about a second per file on a
  CPU), files whose DNSMOS background score (BAK)
  is lower are left out (a noisy "clean" target teaches the model to keep the noise);
  with ``--score_dnsmos``, all are kept and their scores go to ``DNS/clean_dnsmos.csv``,
  which ``train.py --train_min_bak`` reads to filter the training speakers only;
- ``DNS/noise/real/<source>/*.wav``: the training noises (ESC-10 folds 1-4, the misc
  noises but the held-out folder, noise1-3); with ``--synthetic_noise``, also the
  embedded mini corpus's generated noises (white, pink, brown, babble, machinery, impulsive);
- ``DNS/impulse_responses/real/*.wav``: the training rooms (first channel; dns_prepare
  measures T60 and keeps those in range), and with ``--simulated_rirs`` the mini corpus's
  pyroomacoustics rooms (``DNS/impulse_responses/SLR26/...``).

``build_summary.json`` lists what went in and what was left out, with the reasons.
Re-running skips files already converted.

Usage:
    python build_cpu_data.py --output_folder ~/.cache/speechbrain-sslse/real_data
"""

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from speechbrain_sslse.audio import AudioError, read_audio, write_audio
from speechbrain_sslse.data.assets import AssetsMissingError, default_assets_folder, split_assets
from speechbrain_sslse.data.rir import read_rir
from speechbrain_sslse.files import write_csv


def _convert(src, dst, reader=read_audio):
    """Writes ``src`` as 16 kHz mono 16-bit WAV at ``dst`` (kept when it exists)."""
    if dst.is_file():
        return True
    try:
        wav = reader(src)
    except AudioError as err:
        print(f"skipping {src}: {err}", file=sys.stderr)
        return False
    peak = float(wav.abs().max()) if wav.numel() else 0.0
    if peak == 0.0:
        return False
    if peak > 0.99:
        wav = wav * (0.99 / peak)
    write_audio(dst, wav, 16000)
    return True


def _rel_name(path, root):
    rel = Path(path).relative_to(root)
    return "_".join(rel.with_suffix("").parts)


_SCORER = None


def _score_one(path):
    """DNSMOS scores of one file in a worker process (``None`` when it cannot be read)."""
    global _SCORER
    if _SCORER is None:
        from speechbrain_sslse.metrics import DNSMOS

        torch.set_num_threads(1)
        _SCORER = DNSMOS(num_threads=1)
    try:
        return path, _SCORER(read_audio(path)), None
    except AudioError as err:
        return path, None, str(err)


def _score_all(paths, scores, num_jobs):
    """Adds the DNSMOS scores of ``paths`` missing from ``scores``; returns the unreadable ones."""
    todo = [str(p) for p in paths if str(p) not in scores]
    errors = {}
    if not todo:
        return errors
    if num_jobs > 1:
        import multiprocessing

        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with context.Pool(num_jobs) as pool:
            results = list(
                tqdm(pool.imap(_score_one, todo, chunksize=4), total=len(todo), desc="DNSMOS", unit="file")
            )
    else:
        results = [_score_one(p) for p in tqdm(todo, desc="DNSMOS", unit="file")]
    for path, value, err in results:
        if err is not None:
            errors[path] = err
        else:
            scores[path] = {k: float(v) for k, v in value.items()}
    return errors


def build(
    output_folder,
    assets=None,
    min_bak=0.0,
    synthetic_noise=True,
    simulated_rirs=True,
    corpus_size="default",
    num_jobs=1,
    score_dnsmos=False,
):
    """Writes the DNS-layout folder; returns the summary dict (also in ``build_summary.json``)."""
    root = Path(assets or default_assets_folder()).resolve()
    split = split_assets(root)
    out = Path(output_folder).expanduser()
    dns = out / "DNS"
    summary = {"assets": str(root), "split": split.summary(), "min_bak": min_bak}

    scores_file = out / "clean_dnsmos.json"
    scores = json.loads(scores_file.read_text()) if scores_file.is_file() else {}
    unreadable = {}
    if min_bak or score_dnsmos:
        unreadable = _score_all([path for _, path in split.train_speech], scores, num_jobs)
        scores_file.parent.mkdir(parents=True, exist_ok=True)
        scores_file.write_text(json.dumps(scores))
    kept, dropped, score_rows = 0, [], []
    for speaker, path in tqdm(split.train_speech, desc="clean speech", unit="file"):
        dst = dns / "clean" / speaker / f"{Path(path).stem}.wav"
        key = str(path)
        if key in unreadable:
            dropped.append({"file": key, "reason": unreadable[key]})
            continue
        bak = scores.get(key, {}).get("dnsmos_bak", 5.0) if min_bak else 5.0
        if score_dnsmos:
            score_rows.append({"wav": dst.relative_to(dns).as_posix(), **scores[key]})
        if bak < min_bak:
            dropped.append({"file": key, "reason": f"DNSMOS BAK {bak:.2f} < {min_bak}"})
            dst.unlink(missing_ok=True)
            continue
        kept += _convert(path, dst)
    if score_dnsmos:
        write_csv(dns / "clean_dnsmos.csv", score_rows, ["wav", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"])
    summary["clean_files"] = kept
    summary["clean_dropped"] = dropped

    noise_count = 0
    for path in tqdm(split.train_noises, desc="noises", unit="file"):
        noise_count += _convert(path, dns / "noise" / "real" / f"{_rel_name(path, root / 'noise')}.wav")
    summary["noise_files_real"] = noise_count

    rir_count = 0
    for path in split.train_rirs:
        rir_count += _convert(
            path, dns / "impulse_responses" / "real" / f"{_rel_name(path, root / 'rir')}.wav", read_rir
        )
    summary["rir_files_real"] = rir_count

    if synthetic_noise or simulated_rirs:
        from speechbrain_sslse.corpus import ensure_corpus

        corpus = Path(ensure_corpus(None, size=corpus_size)) / "DNS"
        summary["mini_corpus"] = str(corpus)
        links = []
        if synthetic_noise:
            links += [
                (p, dns / "noise" / "synthetic" / p.relative_to(corpus / "noise"))
                for p in (corpus / "noise").rglob("*.wav")
            ]
        if simulated_rirs:
            links += [
                (p, dns / "impulse_responses" / p.relative_to(corpus / "impulse_responses"))
                for p in (corpus / "impulse_responses").rglob("*.wav")
            ]
            table = corpus / "acoustic_params" / "RIR_table_simple.csv"
            if table.is_file():
                links.append((table, dns / "acoustic_params" / "RIR_table_simple.csv"))
        for src, dst in links:
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                dst.symlink_to(src.resolve())
        summary["synthetic_noise"] = synthetic_noise
        summary["simulated_rirs"] = simulated_rirs
    (out / "build_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_folder", required=True)
    parser.add_argument("--assets", default=None, help=f"asset folder (default {default_assets_folder()})")
    parser.add_argument(
        "--min_bak",
        type=float,
        default=0.0,
        help="drop speech with DNSMOS BAK below this (0: keep all; about 1 s per file)",
    )
    parser.add_argument(
        "--score_dnsmos",
        action="store_true",
        help="keep all speech and write DNS/clean_dnsmos.csv (DNSMOS per file) for train.py --train_min_bak",
    )
    parser.add_argument(
        "--num_jobs", type=int, default=1, help="processes that score DNSMOS for --min_bak (one thread each)"
    )
    parser.add_argument("--no_synthetic_noise", action="store_true", help="real noises only")
    parser.add_argument("--no_simulated_rirs", action="store_true", help="measured rooms only")
    parser.add_argument("--corpus_size", default="default")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        summary = build(
            args.output_folder,
            args.assets,
            args.min_bak,
            not args.no_synthetic_noise,
            not args.no_simulated_rirs,
            args.corpus_size,
            args.num_jobs,
            args.score_dnsmos,
        )
    except AssetsMissingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    short = {k: v for k, v in summary.items() if k != "clean_dropped"}
    short["clean_dropped"] = len(summary["clean_dropped"])
    print(json.dumps(short, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
