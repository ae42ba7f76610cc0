"""Tables and plots of per-file metric results: per-system and per-SNR means,
the paper-format markdown table and a plot of each metric against SNR.

Rows are plain dicts (as read from or written to a per-file CSV); a metric cell
that is NaN or empty is missing and left out of every mean.
"""

import csv
import math

import numpy as np

from ..audio import atomic_path

#: (column, heading) of the paper-format table, in order
TABLE_COLUMNS = (
    ("stoi", "STOI"),
    ("pesq", "PESQ"),
    ("dnsmos_ovrl", "DNSMOS OVRL"),
    ("dnsmos_sig", "DNSMOS SIG"),
    ("dnsmos_bak", "DNSMOS BAK"),
    ("nisqa_mos", "NISQA MOS"),
    ("nisqa_nois", "NISQA NOIS"),
    ("nisqa_dis", "NISQA DIS"),
    ("nisqa_col", "NISQA COL"),
    ("nisqa_loud", "NISQA LOUD"),
    ("spk_cs", "spk CS"),
)


def to_float(value):
    """A CSV cell as float; empty or unparsable cells are NaN.

    Example
    -------
    >>> to_float("0.5"), math.isnan(to_float("")), math.isnan(to_float("nan"))
    (0.5, True, True)
    """
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def group_means(rows, columns, keys=("system",)):
    """Means of metric columns per group of rows (NaN-aware).

    Arguments
    ---------
    rows : list of dict
        Per-file results.
    columns : list of str
        Metric columns to average.
    keys : tuple of str
        Columns that define a group (e.g. ``("system", "snr")``).

    Returns
    -------
    list of dict
        One dict per group, in order of first appearance: the key values, one
        mean per column (NaN when no file has a value) and ``n`` (files).

    Example
    -------
    >>> rows = [{"system": "a", "stoi": "0.5"}, {"system": "a", "stoi": "1.0"}, {"system": "b", "stoi": ""}]
    >>> [(g["system"], g["stoi"], g["n"]) for g in group_means(rows, ["stoi"])]
    [('a', 0.75, 2), ('b', nan, 1)]
    """
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out = []
    for key, members in groups.items():
        entry = dict(zip(keys, key))
        for c in columns:
            vals = np.array([to_float(r.get(c)) for r in members])
            vals = vals[np.isfinite(vals)]
            entry[c] = float(vals.mean()) if vals.size else float("nan")
        entry["n"] = len(members)
        out.append(entry)
    return out


def order_systems(systems):
    """Puts ``distorted`` first and ``clean`` last, keeping the others in order.

    Example
    -------
    >>> order_systems(["clean", "proposed", "distorted", "baseline"])
    ['distorted', 'proposed', 'baseline', 'clean']
    """
    systems = list(dict.fromkeys(systems))
    middle = [s for s in systems if s not in ("distorted", "clean")]
    return [s for s in ("distorted",) if s in systems] + middle + [s for s in ("clean",) if s in systems]


def markdown_table(rows, columns=None, notes=()):
    """The paper-format table: one row per system (distorted, systems, clean), mean of each metric.

    Arguments
    ---------
    rows : list of dict
        Per-file results with a ``system`` column.
    columns : list of str or None
        Metric columns to show (default: those of :data:`TABLE_COLUMNS` present in ``rows``).
    notes : list of str
        Lines printed under the table (model files, missing metrics, ...).

    Returns
    -------
    str
        Markdown text; missing means are written ``n/a``.

    Example
    -------
    >>> rows = [{"system": "clean", "stoi": "1.0"}, {"system": "distorted", "stoi": "0.7"}]
    >>> print(markdown_table(rows, ["stoi"]))
    | system | STOI | files |
    |---|---|---|
    | distorted | 0.700 | 1 |
    | clean | 1.000 | 1 |
    """
    headings = dict(TABLE_COLUMNS)
    if columns is None:
        present = set().union(*(r.keys() for r in rows)) if rows else set()
        columns = [c for c, _ in TABLE_COLUMNS if c in present]
    means = {g["system"]: g for g in group_means(rows, columns)}
    lines = [
        "| system | " + " | ".join(headings.get(c, c) for c in columns) + " | files |",
        "|---" * (len(columns) + 2) + "|",
    ]
    for system in order_systems(means):
        cells = ["n/a" if math.isnan(means[system][c]) else f"{means[system][c]:.3f}" for c in columns]
        lines.append(f"| {system} | " + " | ".join(cells) + f" | {means[system]['n']} |")
    text = "\n".join(lines)
    if notes:
        text += "\n\n" + "\n".join(f"- {n}" for n in notes)
    return text


def markdown_per_snr(per_snr, columns):
    """A markdown table of per-SNR means: one row per (system, SNR).

    Arguments
    ---------
    per_snr : list of dict
        Output of ``group_means(rows, columns, keys=("system", "snr"))``.
    columns : list of str
        Metric columns to show.

    Returns
    -------
    str

    Example
    -------
    >>> print(markdown_per_snr([{"system": "distorted", "snr": "-7", "stoi": 0.61, "n": 2}], ["stoi"]))
    | system | SNR (dB) | STOI | files |
    |---|---|---|---|
    | distorted | -7 | 0.610 | 2 |
    """
    headings = dict(TABLE_COLUMNS)
    lines = [
        "| system | SNR (dB) | " + " | ".join(headings.get(c, c) for c in columns) + " | files |",
        "|---" * (len(columns) + 3) + "|",
    ]
    order = {s: i for i, s in enumerate(order_systems(r["system"] for r in per_snr))}
    for r in sorted(per_snr, key=lambda r: (order[r["system"]], to_float(r["snr"]))):
        cells = ["n/a" if not math.isfinite(to_float(r.get(c))) else f"{to_float(r[c]):.3f}" for c in columns]
        lines.append(f"| {r['system']} | {r['snr']} | " + " | ".join(cells) + f" | {r['n']} |")
    return "\n".join(lines)


def write_csv(path, rows, fieldnames):
    """Writes dict rows to a CSV file atomically (NaN written as ``nan``; absent keys empty).

    Example
    -------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> write_csv(p, [{"a": 1, "b": float("nan")}], ["a", "b"])
    >>> open(p).read().split()
    ['a,b', '1,nan']
    """
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            nan = {k for k, v in row.items() if isinstance(v, float) and math.isnan(v)}
            writer.writerow({k: ("nan" if k in nan else v) for k, v in row.items()})


def read_csv(path):
    """Reads a CSV file into a list of dicts (strings).

    Example
    -------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> write_csv(p, [{"a": 1}], ["a"])
    >>> read_csv(p)
    [{'a': '1'}]
    """
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def plot_vs_snr(per_snr, columns, path, title=None):
    """Plots each metric against SNR, one subplot per metric and one line per system.

    Arguments
    ---------
    per_snr : list of dict
        Output of ``group_means(rows, columns, keys=("system", "snr"))``.
    columns : list of str
        Metrics to plot (those with no value at all are skipped).
    path : str or Path
        PNG file (written atomically).
    title : str or None
        Figure title.

    Example
    -------
    >>> import tempfile, os
    >>> rows = [{"system": "distorted", "snr": "0", "stoi": 0.6},
    ...         {"system": "distorted", "snr": "5", "stoi": 0.7}]
    >>> p = os.path.join(tempfile.mkdtemp(), "m.png")
    >>> plot_vs_snr(rows, ["stoi"], p)
    >>> os.path.getsize(p) > 0
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    headings = {**dict(TABLE_COLUMNS), "dnsmos_p808": "DNSMOS P.808"}
    columns = [c for c in columns if any(math.isfinite(to_float(r.get(c))) for r in per_snr)]
    n = max(1, len(columns))
    ncols = min(4, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.9 * nrows), squeeze=False)
    systems = order_systems(r["system"] for r in per_snr)
    for ax, c in zip(axes.ravel(), columns):
        for system in systems:
            pts = sorted((to_float(r["snr"]), to_float(r.get(c))) for r in per_snr if r["system"] == system)
            pts = [p for p in pts if math.isfinite(p[1])]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=system)
        ax.set_title(headings.get(c, c))
        ax.set_xlabel("SNR (dB)")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(columns) :]:
        ax.axis("off")
    if columns:
        axes.ravel()[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
