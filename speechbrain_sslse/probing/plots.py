"""Reports of the probes: CSV files, markdown tables in the paper's form, line plots, t-SNE.

Every file is written atomically (a killed run leaves no half file). Plots use
matplotlib's Agg backend (no display needed).

Authors
 * speechbrain-sslse contributors
"""

import math

import numpy as np

from speechbrain_sslse.audio import atomic_path

__all__ = [
    "robustness_table",
    "information_table",
    "models_table",
    "plot_robustness",
    "plot_robustness_layers",
    "plot_information_layers",
    "plot_tsne",
    "METRIC_LABELS",
]

METRIC_LABELS = {"nmse": "MSE ↓", "cosine": "CS ↑"}
AXIS_LABELS = {"snr": "SNR (dB)", "rt60": "RT60 (s)"}


def _decimals_or_na(value, digits=3):
    """``value`` with ``digits`` decimals; ``n/a`` for a missing or NaN value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _lookup(rows):
    return {(r["model"], r["family"], r["axis"], r["condition"], r["metric"]): r["value"] for r in rows}


def robustness_table(rows, family, axis, columns, models, digits=3):
    """A markdown table in the paper's form: one row block per model, sub-rows MSE and CS.

    Arguments
    ---------
    rows : list of dict
        ``model, family, axis, condition, metric (nmse|cosine), value`` (one layer
        summary per model).
    family : str
        ``noise``, ``reverb`` or ``both``.
    axis : str
        ``snr`` or ``rt60``.
    columns : list of str
        Condition labels in column order.
    models : list of str
        Model names in row order.
    digits : int
        Decimals.

    Returns
    -------
    str

    Example
    -------
    >>> rows = [{"model": "m", "family": "noise", "axis": "snr", "condition": "0", "metric": "nmse",
    ...          "value": 0.5}, {"model": "m", "family": "noise", "axis": "snr", "condition": "0",
    ...          "metric": "cosine", "value": 0.9}]
    >>> print(robustness_table(rows, "noise", "snr", ["0"], ["m"]))
    | model | metric | 0 dB |
    |---|---|---|
    | m | MSE ↓ | 0.500 |
    |  | CS ↑ | 0.900 |
    """
    unit = " dB" if axis == "snr" else " s"
    values = _lookup(rows)
    lines = [
        "| model | metric | " + " | ".join(f"{c}{unit}" for c in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for model in models:
        for k, metric in enumerate(("nmse", "cosine")):
            cells = [_decimals_or_na(values.get((model, family, axis, c, metric)), digits) for c in columns]
            name = model if k == 0 else ""
            lines.append(f"| {name} | {METRIC_LABELS[metric]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def information_table(rows, tasks, models, digits=3):
    """A markdown table of probe accuracies: rows are probes, columns models (train, held-out).

    Arguments
    ---------
    rows : list of dict
        ``model, task, n_classes, train_acc, heldout_acc`` (one layer summary per model).
    tasks : list of (str, str)
        ``(task key, row title)``, e.g. ``("sa1_phoneme", "sa1 phoneme")``.
    models : list of str
        Model names in column order.
    digits : int
        Decimals.

    Returns
    -------
    str

    Example
    -------
    >>> rows = [{"model": "m", "task": "t", "n_classes": 4, "train_acc": 1.0, "heldout_acc": 0.5}]
    >>> print(information_table(rows, [("t", "sx speaker")], ["m"]))
    | probe | m train | m held-out |
    |---|---|---|
    | sx speaker (4 classes) | 1.000 | 0.500 |
    """
    by_key = {(r["model"], r["task"]): r for r in rows}
    header = "| probe | " + " | ".join(f"{m} train | {m} held-out" for m in models) + " |"
    lines = [header, "|---|" + "---|---|" * len(models)]
    for task, title in tasks:
        counts = {by_key[(m, task)]["n_classes"] for m in models if (m, task) in by_key}
        n = f" ({counts.pop()} classes)" if len(counts) == 1 else ""
        cells = []
        for m in models:
            r = by_key.get((m, task), {})
            cells += [
                _decimals_or_na(r.get("train_acc"), digits),
                _decimals_or_na(r.get("heldout_acc"), digits),
            ]
        lines.append(f"| {title}{n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def models_table(models, skipped=()):
    """A markdown table of the models compared (and of those skipped, with the reason).

    Arguments
    ---------
    models : list of ProbeModel
        Loaded models (see :func:`speechbrain_sslse.probing.models.load_models`).
    skipped : list of SkippedModel
        Models that could not be built.

    Returns
    -------
    str

    Example
    -------
    >>> from speechbrain_sslse.probing.models import load_models
    >>> models, skipped = load_models([{"name": "HuBERT", "upstream": "hubert"}],
    ...                               baseline={"name": "log-mel", "upstream": "logmel"})
    >>> print(models_table(models, skipped).splitlines()[2])
    | log-mel | logmel | (none) | 1 | 80 | 160 |
    """
    lines = ["| model | upstream | checkpoint | hidden states | dim | hop |", "|---|---|---|---|---|---|"]
    for m in models:
        ckpt = "(none)" if m.ckpt is None else f"`{m.ckpt}`"
        info = m.info
        lines.append(
            f"| {m.name} | {info['s3prl']} | {ckpt} | {info['layers']} | {info['dim']} | {info['hop']} |"
        )
    for s in skipped:
        lines.append(f"| {s.name} | {s.upstream} | skipped: {s.reason} | | | |")
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_robustness(rows, family, axis, columns, models, path, title=None):
    """Line plots of MSE and CS against SNR or RT60, one line per model (PNG, atomic).

    Arguments
    ---------
    rows, family, axis, columns, models
        As for :func:`robustness_table`.
    path : str or Path
        The PNG file.
    title : str, optional
        Figure title.

    Example
    -------
    >>> import tempfile, os
    >>> rows = [{"model": "m", "family": "noise", "axis": "snr", "condition": c, "metric": k, "value": v}
    ...         for c in ("0", "5") for k, v in (("nmse", 1.0), ("cosine", 0.5))]
    >>> p = os.path.join(tempfile.mkdtemp(), "x.png")
    >>> plot_robustness(rows, "noise", "snr", ["0", "5"], ["m"], p)
    >>> open(p, "rb").read(4)
    b'\\x89PNG'
    """
    plt = _pyplot()
    values = _lookup(rows)
    numeric = axis == "snr"
    xs = [float(c) for c in columns] if numeric else list(range(len(columns)))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("nmse", "cosine")):
        for model in models:
            ys = [values.get((model, family, axis, c, metric), math.nan) for c in columns]
            ax.plot(xs, ys, marker="o", label=model)
        ax.set_xlabel(AXIS_LABELS.get(axis, axis))
        ax.set_ylabel(METRIC_LABELS[metric])
        if not numeric:
            ax.set_xticks(xs, columns)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(title or f"{family}: embedding distance vs {AXIS_LABELS.get(axis, axis)}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _layer_values(rows, match, value_key="value"):
    """``{layer: float}`` of the per-layer rows whose fields equal ``match``'s (compared as text)."""
    out = {}
    for r in rows:
        if all(str(r[k]) == str(v) for k, v in match.items()):
            out[int(r["layer"])] = float(r[value_key])
    return out


def plot_robustness_layers(per_layer, family, axis, columns, models, path, title=None):
    """MSE and CS of every hidden layer, one line per condition, one row of panels per model (PNG).

    The per-layer view of the robustness tables (the tables summarise the layers into
    one value): layer 0 is the model's first hidden state (its input projection or CNN
    features), the last one its last hidden state.

    Arguments
    ---------
    per_layer : list of dict
        ``model, layer, family, axis, condition, metric (nmse|cosine), value`` rows.
    family, axis, columns, models
        As for :func:`robustness_table`.
    path : str or Path
        The PNG file.
    title : str, optional
        Figure title.

    Example
    -------
    >>> import tempfile, os
    >>> rows = [{"model": "m", "layer": l, "family": "noise", "axis": "snr", "condition": c, "metric": k,
    ...          "value": v + l} for l in range(3) for c in ("0", "5")
    ...         for k, v in (("nmse", 1.0), ("cosine", 0.5))]
    >>> p = os.path.join(tempfile.mkdtemp(), "x.png")
    >>> plot_robustness_layers(rows, "noise", "snr", ["0", "5"], ["m"], p)
    >>> open(p, "rb").read(4)
    b'\\x89PNG'
    """
    plt = _pyplot()
    unit = " dB" if axis == "snr" else " s"
    fig, axes = plt.subplots(len(models), 2, figsize=(10, 2.9 * len(models)), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for row, model in enumerate(models):
        for col, metric in enumerate(("nmse", "cosine")):
            ax = axes[row][col]
            for k, condition in enumerate(columns):
                match = {"model": model, "family": family, "axis": axis, "condition": condition}
                values = _layer_values(per_layer, {**match, "metric": metric})
                if values:
                    layers = sorted(values)
                    color = cmap(k / max(len(columns) - 1, 1))
                    ys = [values[x] for x in layers]
                    ax.plot(layers, ys, marker="o", color=color, label=f"{condition}{unit}")
            ax.set_xlabel("hidden layer")
            ax.set_ylabel(METRIC_LABELS[metric])
            ax.set_title(model, fontsize=9)
            ax.grid(alpha=0.3)
        axes[row][1].legend(fontsize=7, ncol=2)
    fig.suptitle(title or f"{family}: every layer, by {AXIS_LABELS.get(axis, axis)}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def plot_information_layers(per_layer, tasks, models, path, title=None):
    """Probe accuracy of every hidden layer, one panel per probe, one line per model (PNG).

    Solid lines are the training accuracy (linear separability), dashed ones the
    held-out accuracy.

    Arguments
    ---------
    per_layer : list of dict
        ``model, layer, task, train_acc, heldout_acc`` rows.
    tasks : list of (str, str)
        ``(task key, panel title)``.
    models : list of str
        Model names.
    path : str or Path
        The PNG file.
    title : str, optional
        Figure title.

    Example
    -------
    >>> import tempfile, os
    >>> rows = [{"model": "m", "layer": l, "task": "t", "train_acc": 0.5 + 0.1 * l, "heldout_acc": 0.4}
    ...         for l in range(3)]
    >>> p = os.path.join(tempfile.mkdtemp(), "x.png")
    >>> plot_information_layers(rows, [("t", "sx speaker")], ["m"], p)
    >>> open(p, "rb").read(4)
    b'\\x89PNG'
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (task, name) in zip(axes[0], tasks):
        for k, model in enumerate(models):
            color = colors[k % len(colors)]
            for key, style, label in (("train_acc", "-", model), ("heldout_acc", "--", None)):
                values = _layer_values(per_layer, {"model": model, "task": task}, key)
                layers = sorted(v for v in values if not math.isnan(values[v]))
                if layers:
                    ax.plot(layers, [values[x] for x in layers], style, marker="o", color=color, label=label)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("hidden layer")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(title or "Linear probes on every layer (solid: train, dashed: held-out)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def plot_tsne(points, words, genders, path, title="", perplexity=30.0, seed=0):
    """t-SNE of one phoneme's embeddings, two panels: coloured by word and by speaker gender.

    Arguments
    ---------
    points : numpy.ndarray
        ``[n, D]`` embeddings (n >= 5).
    words : sequence of str
        ``[n]`` the word each occurrence lies in.
    genders : sequence of str
        ``[n]`` speaker gender (``F``/``M``).
    path : str or Path
        The PNG file.
    title : str
        Figure title.
    perplexity : float
        t-SNE perplexity (lowered to ``(n - 1) / 3`` for small sets).
    seed : int
        t-SNE random state.

    Returns
    -------
    numpy.ndarray
        ``[n, 2]`` the t-SNE coordinates.

    Example
    -------
    >>> import tempfile, os
    >>> rng = np.random.default_rng(0)
    >>> p = os.path.join(tempfile.mkdtemp(), "t.png")
    >>> xy = plot_tsne(rng.normal(size=(12, 4)), ["all", "water"] * 6, ["F"] * 6 + ["M"] * 6, p)
    >>> xy.shape, open(p, "rb").read(4)
    ((12, 2), b'\\x89PNG')
    """
    from sklearn.manifold import TSNE

    points = np.asarray(points, dtype=np.float64)
    n = points.shape[0]
    if n < 5:
        raise ValueError(f"t-SNE needs at least 5 points, got {n}")
    perplexity = float(min(perplexity, max((n - 1) / 3.0, 1.0)))
    # Exact gradients are faster than Barnes-Hut for small sets (and exact).
    method = "exact" if n <= 1000 else "barnes_hut"
    tsne = TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca", method=method)
    xy = tsne.fit_transform(points)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for ax, labels, name in zip(axes, (words, genders), ("word", "speaker gender")):
        labels = np.asarray(labels)
        for label in sorted(set(labels.tolist())):
            mask = labels == label
            ax.scatter(xy[mask, 0], xy[mask, 1], s=10, label=f"{label} ({int(mask.sum())})", alpha=0.8)
        ax.set_title(f"coloured by {name}")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, markerscale=1.5, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return xy
