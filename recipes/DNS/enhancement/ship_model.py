#!/usr/bin/env python3
"""Packages a training run as the package's default model, with its measured results.

The model card of the packaged folder gets the evaluation table of ``evaluate.py``
(``table.md``), the training budget read from the run's log, and known limits.

    python ship_model.py --run results/shipped/proposed --eval results/shipped/eval \\
        --budget shipped/budget.json --notes shipped/card_notes.md \\
        --output ../../../speechbrain_sslse/assets/default_model --overwrite
"""

import argparse
import json
import math
import re
import sys
from pathlib import Path

from speechbrain_sslse.packaging import package_model, parse_train_log

DEFAULT_LIMITS = Path(__file__).resolve().parent / "shipped" / "limits.md"


def demote_headings(markdown):
    """evaluate.py's table.md under this card's "Test results" section: its title dropped,
    its other headings one level down."""
    lines = [line for line in markdown.splitlines() if not re.match(r"^# ", line)]
    return "\n".join("#" + line if line.startswith("## ") else line for line in lines)


def budget_lines(run):
    """Training budget from the run's train_log.txt and checkpoints."""
    epochs = parse_train_log(Path(run) / "train_log.txt")
    env = Path(run) / "env.log"
    lines = ["## Training budget", ""]
    lines.append(f"- {len(epochs)} epochs logged in `train_log.txt` (schedule: `train_hyperparams.yaml`).")
    hours = [row["meta"].get("cpu_hours") for row in epochs]
    hours = [h for h in hours if isinstance(h, float) and math.isfinite(h)]
    if hours:
        lines.append(f"- CPU time of the whole run: {hours[-1]:.2f} CPU-hours.")
    if env.is_file():
        lines.append("- Hardware: the 2-core development CPU, one torch thread per run (no GPU).")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="the training run's output_folder")
    parser.add_argument("--eval", required=True, help="evaluate.py's output folder (with table.md)")
    parser.add_argument("--output", required=True, help="model folder to write")
    parser.add_argument("--budget", default=None, help="JSON file with the measured training time")
    parser.add_argument("--notes", default=None, help="markdown file added after the test results")
    parser.add_argument("--limits", default=str(DEFAULT_LIMITS), help="markdown file: the known limits")
    parser.add_argument("--checkpoint", default=None, help="save/CKPT+... (default: best validation)")
    parser.add_argument(
        "--mask_exponent", type=float, default=None,
        help="mask-head models: the inference mask exponent chosen by tune_mask_exponent.py on validation",
    )  # fmt: skip
    parser.add_argument(
        "--with_discriminator", action="store_true",
        help="also ship the checkpoint's discriminator.ckpt (for GAN fine-tunes from the folder)",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    table = (Path(args.eval) / "table.md").read_text()
    notes = ["## Test results", "", demote_headings(table).strip(), ""]
    if args.notes:
        notes += [Path(args.notes).read_text().strip(), ""]
    notes += budget_lines(args.run)
    if args.budget:
        for key, value in json.loads(Path(args.budget).read_text()).items():
            notes.append(f"- {key}: {value}")
    notes += ["", Path(args.limits).read_text().strip(), ""]
    hparams = (Path(args.run) / "hyperparams.yaml").read_text()
    key = re.search(r"^selection_key: *(\w+)", hparams, re.M)
    folder = package_model(
        args.run,
        args.output,
        checkpoint=args.checkpoint,
        max_key=key.group(1) if key else "pesq",
        notes=notes,
        overwrite=args.overwrite,
        generator_settings=None if args.mask_exponent is None else {"mask_exponent": args.mask_exponent},
        with_discriminator=args.with_discriminator,
    )
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    print(f"default model written: {folder} ({size / 2**20:.1f} MB)")
    print(re.sub(r"\n{3,}", "\n\n", table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
