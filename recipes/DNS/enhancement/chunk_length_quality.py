#!/usr/bin/env python3
"""Quality of a packaged model against the inference chunk length (and the level it keeps).

The attention of the proposed fusion sees, at inference, one chunk of ``chunk_seconds``;
in training it saw segments of ``segment_seconds`` (0.5-2 s). This script enhances the
same long held-out mixtures (real LibriSpeech speakers and real noises that training
never saw, ``speechbrain_sslse.data.assets.split_assets``) with chunks of 1, 2, 4 and
10 s and reports STOI, PESQ and DNSMOS OVRL for each, and the output level against the
input's (a model that keeps the level gives about the input's -25 dBFS minus what the
noise contributed). Writes ``chunk_length_quality.csv`` and ``.md``.

> python chunk_length_quality.py                                   # the shipped default model
> python chunk_length_quality.py --model results/proposed/1986/model --chunks 1 2 4 10

Authors
 * speechbrain-sslse contributors
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from speechbrain_sslse.audio import read_audio
from speechbrain_sslse.data.assets import split_assets
from speechbrain_sslse.data.mixing import level_dbfs, loop_to_length, mix_at_snr, set_level
from speechbrain_sslse.files import write_csv, write_text
from speechbrain_sslse.metrics import Evaluator

SAMPLE_RATE = 16000


def held_out_mixtures(num_files=12, min_seconds=10.0, max_seconds=16.0, snrs=(0.0, 5.0, 10.0), level=-25.0):
    """Long mixtures of held-out speech and held-out noise: list of ``(id, noisy, clean, snr)``."""
    split = split_assets()
    rng = np.random.default_rng(0)
    speech = []
    for speaker, path in split.heldout_speech:
        wav = read_audio(path)
        if wav.shape[0] >= min_seconds * SAMPLE_RATE:
            speech.append((speaker, path, wav[: int(max_seconds * SAMPLE_RATE)]))
        if len(speech) == num_files:
            break
    if not speech:
        raise SystemExit(f"no held-out speech file of at least {min_seconds} s in the assets")
    noises = [read_audio(p) for p in split.heldout_noises]
    items = []
    for k, (speaker, path, clean) in enumerate(speech):
        noise = noises[k % len(noises)]
        offset = int(rng.integers(0, max(noise.shape[0] - 1, 1)))
        snr = float(snrs[k % len(snrs)])
        noisy, _ = mix_at_snr(clean, loop_to_length(noise, clean.shape[0], offset), snr)
        noisy, clean = set_level([noisy, clean], level)
        items.append((f"{speaker}_{Path(path).stem}", noisy, clean, snr))
    return items


def measure(model_dir, chunks, items, overlap_fraction=0.25, max_overlap=1.0):
    """Rows of the per-chunk-length means (``chunk_seconds, overlap_seconds, stoi, pesq, ...``)."""
    from speechbrain_sslse.inference import SpectrumAwareEnhancer

    # the evaluation recipe's scorer: a metric that is missing or fails is NaN (with its reason)
    evaluator = Evaluator(metrics="stoi,pesq,dnsmos", num_threads=1)
    for group, reason in evaluator.missing.items():
        print(f"{group} is not available ({reason}): its column is NaN", file=sys.stderr)
    rows = []
    for chunk in [*chunks, None]:  # None: each file in one piece
        overlap = 0.0 if chunk is None else min(max_overlap, overlap_fraction * chunk)
        overrides = {"chunk_seconds": float(chunk or 0), "overlap_seconds": float(overlap)} if chunk else {}
        enhancer = SpectrumAwareEnhancer.from_hparams(
            source=str(model_dir), overrides=overrides, precision="fp32"
        )
        scores = []
        for _, noisy, clean, _ in items:
            with torch.no_grad():
                if chunk is None:
                    out = enhancer.enhance_batch(noisy[None])[0].float().cpu()
                else:
                    out = enhancer.enhance_waveform(noisy).float().cpu()
            score = evaluator.evaluate(out, clean)
            scores.append(
                {
                    "stoi": score["stoi"],
                    "pesq": score["pesq"],
                    "dnsmos_ovrl": score["dnsmos_ovrl"],
                    "out_dbfs": level_dbfs(out),
                    "in_dbfs": level_dbfs(noisy),
                }
            )
        row = {"chunk_seconds": "whole file" if chunk is None else chunk, "overlap_seconds": overlap}
        for key in scores[0]:
            row[key] = float(np.nanmean([s[key] for s in scores]))
        rows.append(row)
        print(", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    return rows


def markdown(rows, model_dir, items):
    """The table of ``measure``'s rows as markdown, headed by what was measured."""
    seconds = sum(n.shape[0] for _, n, _, _ in items) / SAMPLE_RATE
    lines = [
        f"Model `{model_dir}`; {len(items)} held-out mixtures ({seconds / len(items):.1f} s on average, "
        f"SNR {sorted({s for *_, s in items})} dB, input -25 dBFS).",
        "",
        "| chunk (s) | overlap (s) | STOI | PESQ | DNSMOS OVRL | output dBFS | input dBFS |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['chunk_seconds']} | {r['overlap_seconds']:g} | {r['stoi']:.3f} | {r['pesq']:.3f} | "
            f"{r['dnsmos_ovrl']:.3f} | {r['out_dbfs']:.1f} | {r['in_dbfs']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Command line: measure a model folder (the shipped one by default) and write the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="packaged model folder (default: the shipped model)")
    parser.add_argument("--chunks", type=float, nargs="+", default=[1.0, 2.0, 4.0, 10.0])
    parser.add_argument("--num_files", type=int, default=12)
    parser.add_argument("--output_folder", default="results/chunk_length")
    args = parser.parse_args(argv)
    if args.model is None:
        from speechbrain_sslse.inference import default_model_dir

        args.model = default_model_dir()
    torch.set_num_threads(1)
    items = held_out_mixtures(num_files=args.num_files)
    rows = measure(args.model, args.chunks, items)
    out = Path(args.output_folder)
    write_csv(out / "chunk_length_quality.csv", rows, list(rows[0]))
    text = markdown(rows, args.model, items)
    write_text(out / "chunk_length_quality.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
