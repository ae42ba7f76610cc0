"""Linear probes (ICEIC 2024): how linearly separable a label is in pooled embeddings.

A multinomial logistic regression (scikit-learn, lbfgs, after standardisation) is
fitted per target, model and layer:

- **training accuracy**: fitted and scored on all samples, the paper's measure of
  linear separability;
- **held-out accuracy** (extra): fitted on a stratified split and scored on the rest.

Split rule: every class with at least two samples puts
``max(1, round(test_fraction * n))`` of its samples (at most ``n - 1``) into the
held-out part; a class with a single sample stays in training only (it cannot be
both learned and tested). Held-out accuracy is therefore measured on classes the
model has seen; it is NaN when no class has two samples.

Authors
 * speechbrain-sslse contributors
"""

import warnings

import numpy as np

__all__ = ["stratified_split", "fit_probe", "probe_layers"]


def stratified_split(labels, test_fraction=0.2, seed=0):
    """Stratified train / held-out indices (see the module docstring for the rule).

    Arguments
    ---------
    labels : sequence
        ``[n]`` class labels.
    test_fraction : float
        Fraction of each class held out, in (0, 1).
    seed : int
        Seed of the shuffle.

    Returns
    -------
    train, test : numpy.ndarray
        Sorted index arrays.

    Example
    -------
    >>> train, test = stratified_split(["a"] * 10 + ["b"] * 3 + ["c"], 0.2, seed=0)
    >>> len(train), len(test), 13 in train
    (11, 3, True)
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        if idx.size < 2:
            train.extend(idx.tolist())
            continue
        n_test = min(max(1, int(round(test_fraction * idx.size))), idx.size - 1)
        test.extend(idx[:n_test].tolist())
        train.extend(idx[n_test:].tolist())
    return np.sort(np.asarray(train, dtype=int)), np.sort(np.asarray(test, dtype=int))


def _classifier(max_iter, C, seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # lbfgs fits the multinomial (softmax) model for more than two classes.
    return make_pipeline(
        StandardScaler(), LogisticRegression(C=C, max_iter=max_iter, solver="lbfgs", random_state=seed)
    )


def _fit(features, labels, max_iter, C, seed):
    from sklearn.exceptions import ConvergenceWarning

    clf = _classifier(max_iter, C, seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(features, labels)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return clf, converged


def fit_probe(features, labels, max_iter=1000, C=1.0, test_fraction=0.2, seed=0):
    """Training and held-out accuracy of a multinomial logistic regression.

    Arguments
    ---------
    features : numpy.ndarray
        ``[n, D]`` pooled embeddings.
    labels : sequence
        ``[n]`` class labels.
    max_iter : int
        lbfgs iterations.
    C : float
        Inverse L2 regularisation strength.
    test_fraction : float
        Held-out fraction per class (see :func:`stratified_split`).
    seed : int
        Seed of the split.

    Returns
    -------
    dict
        ``train_acc``, ``heldout_acc`` (NaN when nothing can be held out),
        ``n``, ``n_classes``, ``n_train``, ``n_test``, ``chance`` (share of the
        most frequent class) and ``converged`` (both fits reached ``tol``).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 20)
    >>> x = rng.normal(size=(60, 5)) + 3.0 * np.eye(5)[y]
    >>> res = fit_probe(x, y)
    >>> res["train_acc"] > 0.9, res["heldout_acc"] > 0.9, res["n_classes"], res["n_test"]
    (True, True, 3, 12)
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or features.shape[0] != labels.shape[0]:
        raise ValueError(f"features must be [n, D] with n = {labels.shape[0]}, got {features.shape}")
    classes, counts = np.unique(labels, return_counts=True)
    if classes.size < 2:
        raise ValueError(f"a probe needs at least two classes, got {classes.tolist()}")
    clf, converged = _fit(features, labels, max_iter, C, seed)
    train_acc = float(clf.score(features, labels))
    train, test = stratified_split(labels, test_fraction, seed)
    heldout = float("nan")
    if test.size and np.unique(labels[train]).size >= 2:
        clf_split, conv_split = _fit(features[train], labels[train], max_iter, C, seed)
        heldout = float(clf_split.score(features[test], labels[test]))
        converged = converged and conv_split
    return {
        "train_acc": train_acc,
        "heldout_acc": heldout,
        "n": int(labels.size),
        "n_classes": int(classes.size),
        "n_train": int(train.size),
        "n_test": int(test.size),
        "chance": float(counts.max() / counts.sum()),
        "converged": bool(converged),
    }


def probe_layers(features, labels, **kwargs):
    """:func:`fit_probe` on every layer.

    Arguments
    ---------
    features : numpy.ndarray
        ``[n, L, D]`` pooled embeddings of all layers.
    labels : sequence
        ``[n]`` class labels.
    **kwargs
        Passed to :func:`fit_probe`.

    Returns
    -------
    list of dict
        One result per layer.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 10)
    >>> x = np.stack([rng.normal(size=(20, 3)), rng.normal(size=(20, 3)) + 4.0 * y[:, None]], axis=1)
    >>> [round(r["train_acc"], 1) >= 0.5 for r in probe_layers(x, y)], probe_layers(x, y)[1]["train_acc"]
    ([True, True], 1.0)
    """
    features = np.asarray(features)
    if features.ndim != 3:
        raise ValueError(f"features must be [n, L, D], got {features.shape}")
    return [fit_probe(features[:, layer], labels, **kwargs) for layer in range(features.shape[1])]
