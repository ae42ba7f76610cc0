"""Tables and plots of per-file metric results: per-system and per-SNR means,
the paper-format markdown table and a plot of each metric against SNR.

Rows are plain dicts (as read from or written to a per-file CSV); a metric cell
that is NaN or empty is missing and left out of every mean. Means can carry their 95%
bootstrap confidence interval (:mod:`speechbrain_sslse.metrics.significance`), written
``mean ± half-width`` in the tables.
"""

import math

import numpy as np

from ..audio import atomic_path
from .significance import mean_intervals

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


def format_interval(mean, lo=None, hi=None, digits=3):
    """A mean as table text: ``0.861 ± 0.012`` (± half the interval's width), ``n/a`` when missing.

    Example
    -------
    >>> format_interval(0.8612, 0.8493, 0.8731), format_interval(0.5), format_interval(float("nan"))
    ('0.861 ± 0.012', '0.500', 'n/a')
    """
    mean = to_float(mean)
    if not math.isfinite(mean):
        return "n/a"
    if lo is None or hi is None or not (math.isfinite(to_float(lo)) and math.isfinite(to_float(hi))):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {(to_float(hi) - to_float(lo)) / 2:.{digits}f}"


def markdown_table(rows, columns=None, notes=(), ci=False):
    """The paper-format table: one row per system (distorted, systems, clean), mean of each metric.

    Arguments
    ---------
    rows : list of dict
        Per-file results with a ``system`` column.
    columns : list of str or None
        Metric columns to show (default: those of :data:`TABLE_COLUMNS` present in ``rows``).
    notes : list of str
        Lines printed under the table (model files, missing metrics, ...).
    ci : bool
        Write each mean with its 95% bootstrap interval (``0.861 ± 0.012``).

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
    >>> rows = [{"system": "distorted", "stoi": v} for v in ("0.6", "0.7", "0.8")]
    >>> print(markdown_table(rows, ["stoi"], ci=True).splitlines()[-1])
    | distorted | 0.700 ± 0.100 | 3 |
    """
    headings = dict(TABLE_COLUMNS)
    if columns is None:
        present = set().union(*(r.keys() for r in rows)) if rows else set()
        columns = [c for c, _ in TABLE_COLUMNS if c in present]
    means = {g["system"]: g for g in (mean_intervals if ci else group_means)(rows, columns)}
    lines = [
        "| system | " + " | ".join(headings.get(c, c) for c in columns) + " | files |",
        "|---" * (len(columns) + 2) + "|",
    ]
    for system in order_systems(means):
        m = means[system]
        cells = [format_interval(m[c], m.get(f"{c}_lo"), m.get(f"{c}_hi")) for c in columns]
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
        Output of ``group_means(rows, columns, keys=("system", "snr"))``, or of
        :func:`~speechbrain_sslse.metrics.significance.mean_intervals` (then each mean is
        written with its interval).
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
        cells = [format_interval(r.get(c), r.get(f"{c}_lo"), r.get(f"{c}_hi")) for c in columns]
        lines.append(f"| {r['system']} | {r['snr']} | " + " | ".join(cells) + f" | {r['n']} |")
    return "\n".join(lines)


def _signed(x):
    return "n/a" if not math.isfinite(to_float(x)) else f"{to_float(x):+.3f}"


def _difference(d):
    """``+0.045 [+0.021, +0.070] *`` (the mean alone when there is no interval: one file)."""
    if not (math.isfinite(to_float(d["lo"])) and math.isfinite(to_float(d["hi"]))):
        return _signed(d["mean"])
    return f"{_signed(d['mean'])} [{_signed(d['lo'])}, {_signed(d['hi'])}]" + (
        " *" if d["significant"] else ""
    )


def markdown_differences(differences, columns, systems=None):
    """Markdown tables of paired differences: to the unprocessed input, then to the best peer.

    Arguments
    ---------
    differences : list of dict
        Output of :func:`~speechbrain_sslse.metrics.significance.paired_differences`.
    columns : list of str
        Metric columns to show.
    systems : list of str or None
        Row order (default: order of appearance).

    Returns
    -------
    str
        One table per comparison; each cell is ``mean [lo, hi]`` of the per-file
        difference (the mean alone for a single file), followed by ``*`` when the 95%
        interval excludes 0. The best-peer
        table starts with a row naming each metric's best peer. Empty when there is
        nothing to compare.

    Example
    -------
    >>> diffs = [{"system": "mine", "against": "distorted", "reference_system": "distorted",
    ...           "metric": "stoi", "n": 30, "mean": 0.02, "lo": -0.01, "hi": 0.05, "significant": False}]
    >>> print(markdown_differences(diffs, ["stoi"]))
    ### Paired difference to the unprocessed input (distorted)
    <BLANKLINE>
    | system | STOI | files |
    |---|---|---|
    | mine | +0.020 [-0.010, +0.050] | 30 |
    """
    headings = dict(TABLE_COLUMNS)
    columns = [c for c in columns if any(d["metric"] == c for d in differences)]
    if systems is None:
        systems = list(dict.fromkeys(d["system"] for d in differences))
    cell = {(d["system"], d["against"], d["metric"]): d for d in differences}
    parts = []
    againsts = list(dict.fromkeys(d["against"] for d in differences))
    for against in [a for a in againsts if a != "best peer"] + [a for a in againsts if a == "best peer"]:
        if against == "best peer":
            title = "### Paired difference to the best peer (the peer with the best mean on each metric)"
        else:
            title = f"### Paired difference to the unprocessed input ({against})"
        lines = [
            title,
            "",
            "| system | " + " | ".join(headings.get(c, c) for c in columns) + " | files |",
            "|---" * (len(columns) + 2) + "|",
        ]
        if against == "best peer":
            best = {d["metric"]: d["reference_system"] for d in differences if d["against"] == against}
            lines.append("| *best peer* | " + " | ".join(best.get(c, "") for c in columns) + " | |")
        for system in systems:
            found = [cell.get((system, against, c)) for c in columns]
            if not any(found):
                continue
            cells = ["—" if d is None else _difference(d) for d in found]
            n = max(d["n"] for d in found if d)
            lines.append(f"| {system} | " + " | ".join(cells) + f" | {n} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def interval_rows(intervals, columns, keys=("system",)):
    """Long-format rows (keys, ``metric``, ``n``, ``mean``, ``lo``, ``hi``) of mean intervals, for a CSV.

    Arguments
    ---------
    intervals : list of dict
        Output of :func:`~speechbrain_sslse.metrics.significance.mean_intervals`.
    columns : list of str
        Metric columns.
    keys : tuple of str
        The grouping columns of ``intervals``.

    Returns
    -------
    list of dict

    Example
    -------
    >>> g = {"system": "a", "n": 3, "stoi": 0.7, "stoi_lo": 0.6, "stoi_hi": 0.8, "stoi_n": 3}
    >>> interval_rows([g], ["stoi"])
    [{'system': 'a', 'metric': 'stoi', 'n': 3, 'mean': 0.7, 'lo': 0.6, 'hi': 0.8}]
    """
    out = []
    for g in intervals:
        for c in columns:
            row = {k: g[k] for k in keys}
            row.update({"metric": c, "n": g.get(f"{c}_n", g.get("n")), "mean": g[c]})
            row.update({"lo": g.get(f"{c}_lo", float("nan")), "hi": g.get(f"{c}_hi", float("nan"))})
            out.append(row)
    return out


def plot_vs_snr(per_snr, columns, path, title=None):
    """Plots each metric against SNR, one subplot per metric and one line per system.

    Under each SNR tick the plot gives how many files each point averages (``n=``); when
    the rows carry intervals (``c_lo``, ``c_hi``: output of
    :func:`~speechbrain_sslse.metrics.significance.mean_intervals`), each line has its
    95% confidence band.

    Arguments
    ---------
    per_snr : list of dict
        Output of ``group_means(rows, columns, keys=("system", "snr"))`` or of
        ``mean_intervals(rows, columns, keys=("system", "snr"))``.
    columns : list of str
        Metrics to plot (those with no value at all are skipped).
    path : str or Path
        PNG file (written atomically).
    title : str or None
        Figure title.

    Example
    -------
    >>> import tempfile, os
    >>> rows = [{"system": "distorted", "snr": "0", "stoi": 0.6, "n": 3},
    ...         {"system": "distorted", "snr": "5", "stoi": 0.7, "n": 2}]
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
    counts = {}  # files per SNR (over the systems: a range when they differ)
    for r in per_snr:
        if r.get("n") not in (None, ""):
            counts.setdefault(to_float(r["snr"]), set()).add(int(to_float(r["n"])))
    ticks = sorted(counts) if counts else sorted({to_float(r["snr"]) for r in per_snr})

    def tick_label(snr):
        n = sorted(counts.get(snr, ()))
        if not n:
            return f"{snr:g}"
        return f"{snr:g}\nn={n[0]}" if len(n) == 1 else f"{snr:g}\nn={n[0]}-{n[-1]}"

    for ax, c in zip(axes.ravel(), columns):
        for system in systems:
            keys = ("snr", c, f"{c}_lo", f"{c}_hi")
            pts = sorted(tuple(to_float(r.get(k)) for k in keys) for r in per_snr if r["system"] == system)
            pts = [p for p in pts if math.isfinite(p[1])]
            if pts:
                (line,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=system)
                band = [p for p in pts if math.isfinite(p[2]) and math.isfinite(p[3])]
                if band:
                    ax.fill_between(
                        [p[0] for p in band], [p[2] for p in band], [p[3] for p in band],
                        color=line.get_color(), alpha=0.15, linewidth=0,
                    )  # fmt: skip
        ax.set_title(headings.get(c, c))
        ax.set_xticks(ticks, [tick_label(t) for t in ticks], fontsize="small")
        ax.set_xlabel("SNR (dB), files per point")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(columns) :]:
        ax.axis("off")
    if columns:
        axes.ravel()[0].legend(fontsize="small")
    caption = "each point: mean over the n files of that SNR"
    if any(math.isfinite(to_float(r.get(f"{c}_lo"))) for r in per_snr for c in columns):
        caption += "; band: 95% bootstrap confidence interval"
    fig.suptitle(f"{title}\n{caption}" if title else caption, fontsize="medium")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
