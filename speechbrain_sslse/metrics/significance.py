"""Confidence intervals of mean scores and of paired differences, by bootstrap over files.

A mean over 30 test files moves by a few hundredths when other files are drawn, so a
0.02 gap between two systems is often noise. Every mean of the evaluation tables comes
with a 95% percentile-bootstrap interval (files resampled with replacement, a fixed
seed, 2000 resamples), and systems are compared through the *paired* difference: the
per-file difference of two systems on the same files, bootstrapped the same way. A
difference whose interval excludes 0 is one the test set can tell apart.

Rows are plain dicts as in :mod:`speechbrain_sslse.metrics.report` (``system``, ``id``,
metric columns as strings or floats); NaN or empty cells are missing and left out.
"""

import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "N_RESAMPLES",
    "CONFIDENCE",
    "Interval",
    "bootstrap_mean_ci",
    "paired_difference_ci",
    "mean_intervals",
    "best_systems",
    "paired_differences",
]

#: bootstrap resamples of every interval
N_RESAMPLES = 2000
#: coverage of every interval
CONFIDENCE = 0.95


class Interval(NamedTuple):
    """A mean with its bootstrap confidence interval over ``n`` files."""

    mean: float
    lo: float
    hi: float
    n: int


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def bootstrap_mean_ci(values, n_resamples=N_RESAMPLES, confidence=CONFIDENCE, seed=0):
    """Mean of ``values`` and its percentile-bootstrap confidence interval.

    Arguments
    ---------
    values : array_like
        Per-file scores, shape ``[N]``; NaN entries are left out.
    n_resamples : int
        Bootstrap resamples (each draws ``N`` files with replacement).
    confidence : float
        Coverage of the interval (0.95: the 2.5th and 97.5th percentiles).
    seed : int
        Seed of the resampling (the same values always give the same interval).

    Returns
    -------
    Interval
        ``(mean, lo, hi, n)``; with one file there is no interval (``lo`` and ``hi``
        NaN), with none everything is NaN and ``n`` is 0; identical values give a
        zero-width interval.

    Example
    -------
    >>> iv = bootstrap_mean_ci([0.80, 0.85, 0.90, 0.95, float("nan")])
    >>> round(iv.mean, 3), iv.n, iv.lo < iv.mean < iv.hi
    (0.875, 4, True)
    >>> bootstrap_mean_ci([0.5, 0.5, 0.5])
    Interval(mean=0.5, lo=0.5, hi=0.5, n=3)
    """
    x = np.asarray([_float(v) for v in np.ravel(values)], dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1)
    if np.all(x == x[0]):
        return Interval(mean, mean, mean, n)
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    step = max(1, 2_000_000 // n)  # bounded memory: at most ~2M draws at a time
    for start in range(0, n_resamples, step):
        stop = min(n_resamples, start + step)
        means[start:stop] = x[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    tail = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return Interval(mean, float(min(lo, mean)), float(max(hi, mean)), n)


def paired_difference_ci(a, b, n_resamples=N_RESAMPLES, confidence=CONFIDENCE, seed=0):
    """Mean of the per-file difference ``a - b`` and its bootstrap confidence interval.

    Arguments
    ---------
    a, b : array_like or dict
        Scores of two systems on the same files: arrays of shape ``[N]`` in the same
        file order, or dicts ``{file id: score}`` (paired on their common ids).
        Files where either score is NaN are left out.
    n_resamples, confidence, seed
        As in :func:`bootstrap_mean_ci`.

    Returns
    -------
    Interval
        Mean difference, its interval and the number of paired files.

    Example
    -------
    >>> a = [0.81, 0.84, 0.90, 0.86, 0.88]
    >>> paired_difference_ci(a, a)
    Interval(mean=0.0, lo=0.0, hi=0.0, n=5)
    >>> d = paired_difference_ci({"f1": 0.9, "f2": 0.8, "f3": 0.7}, {"f2": 0.7, "f3": 0.6, "f4": 0.1})
    >>> round(d.mean, 6), d.n
    (0.1, 2)
    """
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)):
            raise TypeError("paired_difference_ci: give two arrays or two {id: score} dicts")
        ids = [k for k in a if k in b]
        a, b = [a[k] for k in ids], [b[k] for k in ids]
    x = np.asarray([_float(v) for v in np.ravel(a)], dtype=np.float64)
    y = np.asarray([_float(v) for v in np.ravel(b)], dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired_difference_ci: {x.size} scores against {y.size}; pairs need equal counts")
    return bootstrap_mean_ci(x - y, n_resamples=n_resamples, confidence=confidence, seed=seed)


def mean_intervals(rows, columns, keys=("system",), n_resamples=N_RESAMPLES, seed=0):
    """Means of metric columns per group of rows, each with its bootstrap interval.

    Arguments
    ---------
    rows : list of dict
        Per-file results.
    columns : list of str
        Metric columns.
    keys : tuple of str
        Columns that define a group (e.g. ``("system", "snr")``).
    n_resamples, seed
        As in :func:`bootstrap_mean_ci`.

    Returns
    -------
    list of dict
        One dict per group, in order of first appearance: the key values, ``n`` (rows
        in the group) and for each column ``c``: ``c`` (mean, NaN when no file has a
        value), ``c_lo``, ``c_hi`` (95% interval) and ``c_n`` (files with a value).
        The means are those of :func:`speechbrain_sslse.metrics.report.group_means`.

    Example
    -------
    >>> rows = [{"system": "a", "stoi": v} for v in ("0.5", "0.7", "0.9")]
    >>> g = mean_intervals(rows, ["stoi"])[0]
    >>> g["system"], round(g["stoi"], 3), g["n"], g["stoi_n"], g["stoi_lo"] < 0.7 < g["stoi_hi"]
    ('a', 0.7, 3, 3, True)
    """
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out = []
    for key, members in groups.items():
        entry = dict(zip(keys, key))
        entry["n"] = len(members)
        for c in columns:
            iv = bootstrap_mean_ci([r.get(c) for r in members], n_resamples=n_resamples, seed=seed)
            entry.update({c: iv.mean, f"{c}_lo": iv.lo, f"{c}_hi": iv.hi, f"{c}_n": iv.n})
        out.append(entry)
    return out


def best_systems(intervals, candidates, columns):
    """For each column, the candidate system with the highest mean (every metric: higher is better).

    Arguments
    ---------
    intervals : list of dict
        Output of :func:`mean_intervals` with ``keys=("system",)``.
    candidates : iterable of str
        Systems to choose among (e.g. the peers).
    columns : list of str
        Metric columns.

    Returns
    -------
    dict
        ``{column: system}``, only for columns where a candidate has a finite mean.

    Example
    -------
    >>> iv = [{"system": "a", "stoi": 0.8}, {"system": "b", "stoi": 0.9}, {"system": "c", "stoi": 1.0}]
    >>> best_systems(iv, ["a", "b"], ["stoi"])
    {'stoi': 'b'}
    """
    candidates = set(candidates)
    best = {}
    for c in columns:
        scored = [(g[c], g["system"]) for g in intervals if g["system"] in candidates and math.isfinite(g[c])]
        if scored:
            best[c] = max(scored, key=lambda t: t[0])[1]
    return best


def paired_differences(
    rows, columns, systems, reference="distorted", peers=(), n_resamples=N_RESAMPLES, seed=0
):
    """Paired differences of each system to the unprocessed input and to the best peer.

    Arguments
    ---------
    rows : list of dict
        Per-file results with ``system`` and ``id`` columns.
    columns : list of str
        Metric columns.
    systems : list of str
        Systems to compare (the reference and the clean rows are usually left out).
    reference : str
        The unprocessed-input system (``distorted``); skipped when absent from ``rows``.
    peers : iterable of str
        Peer systems; the one with the best mean on a metric is that metric's "best peer"
        (a peer is not compared with itself).
    n_resamples, seed
        As in :func:`bootstrap_mean_ci`.

    Returns
    -------
    list of dict
        One dict per (system, comparison, metric): ``system``, ``against`` (``reference``
        or ``"best peer"``), ``reference_system`` (the system subtracted), ``metric``,
        ``n`` (paired files), ``mean``, ``lo``, ``hi`` and ``significant`` (the interval
        excludes 0).

    Example
    -------
    >>> rows = [{"system": s, "id": str(i), "stoi": str(v + i / 100)}
    ...         for s, v in (("distorted", 0.5), ("mine", 0.6), ("peer", 0.6)) for i in range(6)]
    >>> diffs = paired_differences(rows, ["stoi"], ["mine"], peers=["peer"])
    >>> d = {r["against"]: r for r in diffs}
    >>> round(d["distorted"]["mean"], 6), d["distorted"]["significant"]
    (0.1, True)
    >>> d["best peer"]["reference_system"], d["best peer"]["mean"], d["best peer"]["significant"]
    ('peer', 0.0, False)
    """
    scores = {}
    for r in rows:
        scores.setdefault(r["system"], {})[r["id"]] = r
    peers = [p for p in peers if p in scores]
    best = best_systems(mean_intervals([r for r in rows if r["system"] in peers], columns), peers, columns)
    out = []
    for system in systems:
        if system not in scores:
            continue
        for c in columns:
            comparisons = []
            if reference in scores and system != reference:
                comparisons.append((reference, reference))
            if c in best and best[c] != system:
                comparisons.append(("best peer", best[c]))
            for against, other in comparisons:
                a = {k: r.get(c) for k, r in scores[system].items()}
                b = {k: r.get(c) for k, r in scores[other].items()}
                iv = paired_difference_ci(a, b, n_resamples=n_resamples, seed=seed)
                significant = iv.n > 1 and (iv.lo > 0 or iv.hi < 0)
                out.append(
                    {"system": system, "against": against, "reference_system": other, "metric": c,
                     "n": iv.n, "mean": iv.mean, "lo": iv.lo, "hi": iv.hi, "significant": significant}
                )  # fmt: skip
    return out
