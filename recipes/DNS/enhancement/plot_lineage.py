#!/usr/bin/env python3
"""Learning curve of the shipped default model across its trainings, and what it extrapolates to.

Each model shipped as the default was trained on from the one before (from scratch, then
fine-tunes with ``init_from``), so one curve runs through all of them against the CPU-hours
spent up to each. ``shipped/lineage.csv`` lists them with their validation scores (the
selection set) and their held-out test scores, and the peers' scores as rows without
CPU-hours. This script draws the curves with the peers as horizontal lines and fits
``score = a + b ln(CPU-hours)`` to each metric of the shipped models. From the fit it gives
the CPU-hours at which the curve would reach each peer, or says that it would not.

The fit is descriptive. Most of each step came from a change of loss or schedule, not from
more time alone, and four points do not make a law.

    python plot_lineage.py shipped/lineage.csv --output shipped/lineage_curves.png
"""

import argparse
import csv
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

PANELS = (
    ("validation", "dnsmos_ovrl"),
    ("validation", "stoi"),
    ("test", "dnsmos_ovrl"),
    ("test", "nisqa"),
    ("test", "stoi"),
)
# Beyond this the extrapolation says "not reached": a 100-fold budget is no longer a forecast.
MAX_HOURS_FACTOR = 100.0


def read_lineage(path):
    """Rows of a lineage CSV: ``{"name", "split", "cpu_hours" (float or None), <metric>: float}``.

    Example
    -------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "lineage.csv"
    >>> _ = p.write_text("name,split,cpu_hours,stoi,dnsmos_ovrl\\n"
    ...                  "m1,test,1.5,0.57,1.70\\ngtcrn,test,,0.55,\\n")
    >>> model, peer = read_lineage(p)
    >>> model
    {'name': 'm1', 'split': 'test', 'cpu_hours': 1.5, 'stoi': 0.57, 'dnsmos_ovrl': 1.7}
    >>> peer
    {'name': 'gtcrn', 'split': 'test', 'cpu_hours': None, 'stoi': 0.55}
    """
    rows = []
    with open(path, newline="") as f:
        for raw in csv.DictReader(f):
            row = {"name": raw.pop("name"), "split": raw.pop("split")}
            hours = raw.pop("cpu_hours").strip()
            row["cpu_hours"] = float(hours) if hours else None
            row.update({k: float(v) for k, v in raw.items() if v is not None and v.strip()})
            rows.append(row)
    return rows


def fit_log(hours, values):
    """Least-squares ``value = a + b ln(hours)``; returns ``(a, b)``.

    Example
    -------
    >>> a, b = fit_log([1.0, math.e, math.e**2], [1.0, 1.5, 2.0])
    >>> round(a, 6), round(b, 6)
    (1.0, 0.5)
    """
    if len(hours) < 2:
        raise ValueError(f"a fit needs two points or more, got {len(hours)}")
    xs = [math.log(h) for h in hours]
    mx, my = sum(xs) / len(xs), sum(values) / len(values)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, values)) / sxx
    return my - b * mx, b


def hours_to_reach(a, b, target, last_hours):
    """CPU-hours at which ``a + b ln(h)`` reaches ``target``; None if it does not within
    ``MAX_HOURS_FACTOR`` times ``last_hours`` (or the curve does not rise).

    Example
    -------
    >>> round(hours_to_reach(1.0, 0.5, 2.0, 3.0), 3)  # e ** 2
    7.389
    >>> hours_to_reach(1.0, 0.01, 2.0, 3.0) is None
    True
    """
    if b <= 0:
        return None
    hours = math.exp((target - a) / b)
    return hours if hours <= MAX_HOURS_FACTOR * last_hours else None


def _models(rows, split, metric):
    """The shipped models of ``split`` scored on ``metric``, by CPU-hours."""
    models = [r for r in rows if r["split"] == split and r["cpu_hours"] and metric in r]
    return sorted(models, key=lambda r: r["cpu_hours"])


def _peers(rows, split, metric):
    """The rows without CPU-hours (peers, unprocessed) of ``split`` scored on ``metric``."""
    return [r for r in rows if r["split"] == split and r["cpu_hours"] is None and metric in r]


def extrapolate(rows, split, metric):
    """For each peer of ``split`` with ``metric``: ``(peer, its score, CPU-hours to reach it or None)``.

    Peers the last shipped model already beats get the hours of that model.

    Example
    -------
    >>> points = ((1.0, 1.0), (math.e, 1.5))
    >>> rows = [{"name": "m", "split": "test", "cpu_hours": h, "nisqa": v} for h, v in points]
    >>> rows.append({"name": "peer", "split": "test", "cpu_hours": None, "nisqa": 2.0})
    >>> [(n, s, round(h, 3)) for n, s, h in extrapolate(rows, "test", "nisqa")]
    [('peer', 2.0, 7.389)]
    """
    models = _models(rows, split, metric)
    peers = [r for r in _peers(rows, split, metric) if r["name"] != "unprocessed"]
    a, b = fit_log([r["cpu_hours"] for r in models], [r[metric] for r in models])
    last = models[-1]
    out = []
    for peer in peers:
        if last[metric] >= peer[metric]:
            out.append((peer["name"], peer[metric], last["cpu_hours"]))
        else:
            out.append((peer["name"], peer[metric], hours_to_reach(a, b, peer[metric], last["cpu_hours"])))
    return out


def plot(rows, output):
    """One panel per (split, metric) of :data:`PANELS`: shipped models, log fit, peers as lines."""
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.0 * len(PANELS), 3.6))
    for ax, (split, metric) in zip(axes, PANELS):
        models = _models(rows, split, metric)
        if not models:
            ax.set_visible(False)
            continue
        xs, ys = [r["cpu_hours"] for r in models], [r[metric] for r in models]
        ax.plot(xs, ys, "o-", label="shipped models")
        if len(models) >= 2:
            a, b = fit_log(xs, ys)
            grid = [xs[0] * (4 * xs[-1] / xs[0]) ** (i / 50) for i in range(51)]
            ax.plot(grid, [a + b * math.log(h) for h in grid], ":", color="C0", label="a + b ln(h)")
        for r in _peers(rows, split, metric):
            color = "gray" if r["name"] == "unprocessed" else "black"
            ax.axhline(r[metric], ls="--", lw=1, color=color)
            where = ("axes fraction", "data")
            ax.annotate(r["name"], (0, r[metric]), xycoords=where, fontsize=7, va="bottom")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.FixedLocator([1, 2, 4, 8, 16]))
        ax.xaxis.set_major_formatter(ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("CPU-hours (log)")
        ax.set_title(f"{split} {metric}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lineage", help="CSV: name,split,cpu_hours,<metrics> (peers: empty cpu_hours)")
    parser.add_argument("--output", default="lineage_curves.png")
    args = parser.parse_args(argv)
    if not Path(args.lineage).is_file():
        print(f"error: {args.lineage} does not exist; pass shipped/lineage.csv", file=sys.stderr)
        return 2
    rows = read_lineage(args.lineage)
    print("| split | metric | peer | peer score | CPU-hours the fit needs to reach it |")
    print("|---|---|---|---|---|")
    for split, metric in PANELS:
        for name, score, hours in extrapolate(rows, split, metric):
            reach = f"{hours:.1f}" if hours is not None else f"not within {MAX_HOURS_FACTOR:.0f}x the budget"
            print(f"| {split} | {metric} | {name} | {score:.3f} | {reach} |")
    print(plot(rows, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
