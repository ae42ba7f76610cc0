#!/usr/bin/env python3
"""Learning curves of DNS-recipe runs: validation DNSMOS OVRL, STOI, PESQ and quality against CPU-hours.

Reads each run's ``train_log.txt`` (``cpu_hours`` is logged per epoch by train.py; epochs
logged before a run had it are placed by proportion and drawn hollow). With
``--reference``, the unprocessed validation mixtures of the first run (and, with
``--peer NAME``, a comparison enhancer from :mod:`speechbrain_sslse.peers`) are scored
once with the same metrics and drawn as horizontal lines (cached in ``valid_reference.json``
in the run folder): a yardstick on the validation set, never on the test set.

    python plot_training.py ~/.cache/speechbrain-sslse/runs/mask_head \\
        ~/.cache/speechbrain-sslse/runs/mask_head_spectrum_only --reference --peer gtcrn \\
        --output learning_curves.png
"""

import argparse
import json
import math
import sys
from pathlib import Path

import matplotlib

from speechbrain_sslse.packaging import parse_train_log

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METRICS = ("dnsmos_ovrl", "stoi", "pesq", "quality")


def parse_log(path):
    """Epoch rows of a train_log.txt: ``[{"epoch": int, "cpu_hours": float or None, "valid": {...}}]``.

    Read with :func:`speechbrain_sslse.packaging.parse_train_log`; ``valid`` keeps the numbers.

    Example
    -------
    >>> import tempfile
    >>> log = Path(tempfile.mkdtemp()) / "train_log.txt"
    >>> _ = log.write_text("epoch: 1, lr_g: 1.00e-03, cpu_hours: 0.25, layer_weights: [0.2, 0.3] - "
    ...                    "train G_loss: 2.10 - valid stoi: 7.80e-01, valid dnsmos_ovrl: 1.81\\n")
    >>> parse_log(log)
    [{'epoch': 1, 'cpu_hours': 0.25, 'valid': {'stoi': 0.78, 'dnsmos_ovrl': 1.81}}]
    """

    def number(value):  # a logged number (nan too); an infinity or a text is left out
        return isinstance(value, float) and not math.isinf(value)

    rows = []
    for row in parse_train_log(path):
        cpu_hours = row["meta"].get("cpu_hours")
        rows.append(
            {
                "epoch": row["epoch"],
                "cpu_hours": cpu_hours if number(cpu_hours) else None,
                "valid": {k: v for k, v in row.get("valid", {}).items() if number(v)},
            }
        )
    return rows


def fill_cpu_hours(rows):
    """Rows without ``cpu_hours`` get ``epoch * (first known cpu_hours / its epoch)``; returns a flag list."""
    known = [r for r in rows if r["cpu_hours"] is not None]
    per_epoch = known[0]["cpu_hours"] / known[0]["epoch"] if known else None
    estimated = []
    for r in rows:
        estimated.append(r["cpu_hours"] is None)
        if r["cpu_hours"] is None:
            r["cpu_hours"] = r["epoch"] * per_epoch if per_epoch else float(r["epoch"])
    return estimated


def reference_scores(run, peer=None):
    """Scores of the unprocessed (or ``peer``-enhanced) validation mixtures of ``run`` (cached)."""
    cache = Path(run) / "valid_reference.json"
    cached = json.loads(cache.read_text()) if cache.is_file() else {}
    name = peer or "unprocessed"
    if name in cached:
        return cached[name]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import validation

    enhance = None
    if peer:
        from speechbrain_sslse.peers import enhance_with_peer

        def enhance(wav):
            return enhance_with_peer(peer, wav)

    # scored and aggregated as train.py scores the runs' validation, so the lines compare with the curves
    out = validation.score_validation(validation.validation_items(run), enhance)
    cached[name] = out
    cache.write_text(json.dumps(cached, indent=2))
    return out


def plot(runs, output, references=None):
    """One panel per metric, one line per run; reference scores as horizontal lines."""
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 3.6))
    for run in runs:
        rows = parse_log(Path(run) / "train_log.txt")
        estimated = fill_cpu_hours(rows)
        for ax, metric in zip(axes, METRICS):
            pts = [(r["cpu_hours"], r["valid"].get(metric), e) for r, e in zip(rows, estimated)]
            pts = [p for p in pts if p[1] is not None]
            if not pts:
                continue
            (line,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", label=Path(run).name)
            for x, y, est in pts:
                ax.plot(x, y, "o", color=line.get_color(), mfc="none" if est else line.get_color(), ms=4)
    for name, values in (references or {}).items():
        for ax, metric in zip(axes, METRICS):
            if metric in values:
                ax.axhline(values[metric], ls="--", lw=1, color="gray" if name == "unprocessed" else "black")
                where = (0, values[metric])
                ax.annotate(name, where, xycoords=("axes fraction", "data"), fontsize=7, va="bottom")
    for ax, metric in zip(axes, METRICS):
        ax.set_xlabel("CPU-hours")
        ax.set_title(f"validation {metric}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (output_folder of train.py)")
    parser.add_argument("--output", default="learning_curves.png")
    parser.add_argument("--reference", action="store_true", help="score the unprocessed validation set")
    parser.add_argument("--peer", action="append", default=[], help="also score a peer on it")
    args = parser.parse_args(argv)
    for run in args.runs:
        if not (Path(run) / "train_log.txt").is_file():
            print(f"error: {run} has no train_log.txt; pass a train.py output_folder", file=sys.stderr)
            return 2
    references = {}
    if args.reference:
        references["unprocessed"] = reference_scores(args.runs[0])
        for peer in args.peer:
            references[peer] = reference_scores(args.runs[0], peer)
        print(json.dumps(references, indent=2))
    print(plot(args.runs, args.output, references))
    return 0


if __name__ == "__main__":
    sys.exit(main())
