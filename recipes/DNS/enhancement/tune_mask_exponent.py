#!/usr/bin/env python3
"""Chooses a mask-head model's inference mask exponent on the validation set of its run.

A mask-head model (``speechbrain_sslse.lobes.SpectralMaskHead``) multiplies the noisy STFT
by a bounded complex mask; ``mask_exponent`` raises the mask's magnitude to a power at
inference (1: the trained mask; above 1 attenuates the bins it already attenuates more).
This script enhances the run's own validation mixtures (the same ones, by the same seed, as
in training: never the test set) with a packaged model at each exponent, and reports the
recipe's validation metrics: STOI, PESQ, DNSMOS OVRL and ``quality`` (OVRL + 5 STOI, the
default model's selection key). The best exponent by ``--key`` is printed; pass it to
``ship_model.py --mask_exponent`` (or ``package_model(..., generator_overrides=...)``).

    python tune_mask_exponent.py --run results/mask_head --model results/mask_head/model \\
        --exponents 1 1.25 1.5 2 --output_folder results/mask_head/mask_exponent

Writes ``mask_exponent.csv`` and ``mask_exponent.md`` in ``--output_folder``.

Authors
 * speechbrain-sslse contributors
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import validation  # noqa: E402  (this recipe's validation set and metrics)


def measure(model_dir, exponents, items, nisqa=False):
    """One row of validation metrics per exponent (``mask_exponent``, ``stoi``, ``pesq``, ...)."""
    from speechbrain_sslse.inference import SpectrumAwareEnhancer
    from speechbrain_sslse.metrics import DNSMOS

    enhancer = SpectrumAwareEnhancer.from_hparams(source=str(model_dir), precision="fp32")
    enhancer.configure_inference(fast=False)  # the attribute is read at every call on this path
    head = enhancer.mods.vocoder.generator
    if not hasattr(head, "mask_exponent"):
        raise SystemExit(f"{model_dir}: its generator ({type(head).__name__}) has no mask to sharpen")
    dnsmos = DNSMOS(num_threads=1)
    nisqa_scorer = None
    if nisqa:
        from speechbrain_sslse.metrics import NISQA

        nisqa_scorer = NISQA()
    rows = []
    for exponent in exponents:
        head.mask_exponent = float(exponent)
        stats = validation.score_validation(
            items, enhancer.enhance_waveform, dnsmos, desc=f"mask_exponent {exponent:g}", nisqa=nisqa_scorer
        )
        row = {"mask_exponent": float(exponent), **stats}
        rows.append(row)
        print(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    return rows


def markdown(rows, model_dir, run_folder, n, key, best, part="standard"):
    """The rows as a markdown table, the chosen exponent marked (a NISQA column when scored)."""
    nisqa = all("nisqa" in r for r in rows)
    both = nisqa and all("quality_nisqa" in r for r in rows)
    lines = [
        f"Model `{model_dir}`, the {n} validation mixtures of `{run_folder}`"
        + ("" if part == "standard" else f" (validation part `{part}`)")
        + " (never the test set); "
        f"chosen by `{key}`: **{best:g}**.",
        "",
        "| mask exponent | STOI | PESQ | DNSMOS OVRL | quality | level (dB) |"
        + " NISQA MOS |" * nisqa
        + " quality_nisqa |" * both,
        "|---|---|---|---|---|---|" + "---|" * (nisqa + both),
    ]
    for r in rows:
        mark = " (chosen)" if r["mask_exponent"] == best else ""
        lines.append(
            f"| {r['mask_exponent']:g}{mark} | {r['stoi']:.3f} | {r['pesq']:.3f} | {r['dnsmos_ovrl']:.3f} | "
            f"{r['quality']:.3f} | {r.get('level_db', float('nan')):+.1f} |"
            + (f" {r['nisqa']:.3f} |" if nisqa else "")
            + (f" {r['quality_nisqa']:.3f} |" if both else "")
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Command line: measure each exponent, write the tables, print the best."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="the training run's output_folder (its validation set)")
    parser.add_argument("--model", required=True, help="packaged model folder of that run")
    parser.add_argument("--exponents", type=float, nargs="+", default=[1.0, 1.25, 1.5, 2.0])
    parser.add_argument("--key", default="quality", help="validation metric to maximise")
    parser.add_argument(
        "--num_mixtures", type=int, default=None, help="default: the run's num_valid_mixtures"
    )
    parser.add_argument(
        "--nisqa",
        action="store_true",
        help="score NISQA MOS too (reported, and quality_nisqa = quality + NISQA, a --key)",
    )
    parser.add_argument(
        "--part",
        default="standard",
        choices=sorted(validation.VALIDATION_PARTS),
        help="which mixtures of the run's validation utterances (standard: train.py's)",
    )
    parser.add_argument("--output_folder", required=True)
    args = parser.parse_args(argv)
    if args.key in ("nisqa", "quality_nisqa") and not args.nisqa:
        parser.error(f"--key {args.key} needs NISQA scores: add --nisqa")
    from speechbrain_sslse.files import write_csv, write_text

    torch.set_num_threads(1)
    overrides = {"num_valid_mixtures": args.num_mixtures} if args.num_mixtures else None
    items = validation.validation_items(args.run, overrides, part=args.part)
    rows = measure(args.model, args.exponents, items, nisqa=args.nisqa)
    if args.key not in rows[0]:
        parser.error(f"--key {args.key} is not a validation metric; use one of {', '.join(rows[0])}")
    best = max(rows, key=lambda r: r[args.key] if r[args.key] == r[args.key] else float("-inf"))
    out = Path(args.output_folder)
    write_csv(out / "mask_exponent.csv", rows, list(rows[0]))
    text = markdown(rows, args.model, args.run, len(items), args.key, best["mask_exponent"], args.part)
    write_text(out / "mask_exponent.md", text)
    print(text)
    print(f"best mask_exponent by {args.key}: {best['mask_exponent']:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
