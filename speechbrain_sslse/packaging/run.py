"""Reading a training run: its ``train_log.txt``, the settings its ``hyperparams.yaml`` records, its paths.

:func:`parse_train_log` is the one reader of SpeechBrain's ``train_log.txt`` (the model
card's validation history, and the DNS recipe's ``plot_training.py`` and ``ship_model.py``).
SpeechBrain writes a run's ``hyperparams.yaml`` with its paths as given at training, so a
relative path in it is relative to the folder the run was trained from; packaging reads
a run from anywhere with :func:`training_folder` and :func:`run_path`.

Authors
 * speechbrain-sslse contributors
"""

import os
from pathlib import Path

from ruamel.yaml import YAML

__all__ = ["parse_train_log", "recorded_settings", "training_folder", "run_path"]

# SpeechBrain's FileTrainLogger: the epoch's values, then one group per stage ("train", "valid",
# "test"), the groups joined by " - ", the values of a group by ", ", each "[stage ]name: value".
_GROUPS, _ITEMS, _OPENING, _CLOSING = " - ", ", ", "[({", "])}"


def _items(group):
    """The ``name: value`` items of a group, split at the commas outside brackets (``[0.2, 0.3]``)."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(group):
        depth += (char in _OPENING) - (char in _CLOSING)
        if depth == 0 and group.startswith(_ITEMS, i):
            items.append(group[start:i])
            start = i + len(_ITEMS)
    return items + [group[start:]]


def _value(text):
    """A logged value: a float when it is a number (``nan`` too), else the text as logged."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return text


def parse_train_log(path):
    """The epoch lines of a SpeechBrain ``train_log.txt``, parsed.

    SpeechBrain's ``FileTrainLogger`` writes one line per epoch: the epoch's own values
    (``epoch``, learning rates, ``cpu_hours``, ...), then one group per stage, each name
    prefixed by its stage: ``epoch: 1, lr_g: 1.00e-03 - train G_loss: 2.10 - valid stoi:
    7.80e-01, valid pesq: 1.05``. Other lines (the test line ``Epoch loaded: ...``) are
    skipped.

    Arguments
    ---------
    path : str or Path
        The ``train_log.txt`` of a training run.

    Returns
    -------
    list of dict
        One per epoch line, in the file's order: ``epoch`` (int), ``meta`` (the epoch's
        own values) and one dict per stage logged (``train``, ``valid``, ``test``: names
        without the stage prefix). Numbers are floats (``nan`` included); other values are
        the text as logged (a list: ``"[0.2, 0.3]"``).

    Example
    -------
    >>> import tempfile
    >>> log = Path(tempfile.mkdtemp()) / "train_log.txt"
    >>> _ = log.write_text("epoch: 1, lr_g: 1.00e-03, cpu_hours: 0.25, layer_weights: [0.2, 0.3] - "
    ...                    "train G_loss: 2.10 - valid stoi: 7.80e-01, valid pesq: nan\\n"
    ...                    "Epoch loaded: 1 - test stoi: 7.50e-01\\n")
    >>> rows = parse_train_log(log)
    >>> len(rows), rows[0]["epoch"], rows[0]["meta"]
    (1, 1, {'epoch': 1.0, 'lr_g': 0.001, 'cpu_hours': 0.25, 'layer_weights': '[0.2, 0.3]'})
    >>> rows[0]["train"], rows[0]["valid"]
    ({'G_loss': 2.1}, {'stoi': 0.78, 'pesq': nan})
    """
    rows = []
    for line in Path(path).read_text().splitlines():
        if not line.startswith("epoch:"):
            continue
        groups = line.split(_GROUPS)
        meta = {}
        for item in _items(groups[0]):
            name, _, value = item.partition(": ")
            meta[name.strip()] = _value(value)
        row = {"epoch": int(float(meta["epoch"])), "meta": meta}
        for group in groups[1:]:
            for item in _items(group):
                name, _, value = item.partition(": ")
                stage, _, name = name.strip().partition(" ")
                row.setdefault(stage, {})[name] = _value(value)
        rows.append(row)
    return rows


def recorded_settings(hparams_path):
    """Plain top-level values of a run's ``hyperparams.yaml`` (its tagged entries are not built)."""
    with open(hparams_path) as f:
        raw = YAML(typ="rt").load(f) or {}
    return {key: value for key, value in raw.items() if isinstance(value, str | int | float | type(None))}


def training_folder(run_folder, recorded_output_folder):
    """The folder a run was trained from, when its ``output_folder`` was recorded as a relative path.

    SpeechBrain writes a run's ``hyperparams.yaml`` with its paths as given, so relative
    paths in it (``manifest_folder: results/proposed/1986/manifests``) are relative to
    where training ran, not to where the run is read from. ``run_folder`` ends with the
    recorded ``output_folder``; what comes before it is that folder.

    Arguments
    ---------
    run_folder : str or Path
        The run's folder as given now (absolute or relative to the current folder).
    recorded_output_folder : str
        ``output_folder`` as recorded in the run's ``hyperparams.yaml``.

    Returns
    -------
    Path or None
        None when the recorded path is absolute or is not the end of ``run_folder``.

    Example
    -------
    >>> str(training_folder("/data/recipe/results/proposed/1986", "results/proposed/1986"))
    '/data/recipe'
    >>> training_folder("/elsewhere/1986", "results/proposed/1986") is None
    True
    """
    if not recorded_output_folder:
        return None
    recorded = Path(os.path.normpath(str(recorded_output_folder)))
    if recorded.is_absolute() or ".." in recorded.parts:
        return None
    run = Path(os.path.abspath(run_folder)).parts
    tail = recorded.parts
    if len(tail) >= len(run) or run[-len(tail) :] != tail:
        return None
    return Path(*run[: -len(tail)])


def run_path(path, base):
    """A path recorded by a run, absolute: relative ones are taken from ``base`` (the training folder)."""
    if path in (None, ""):
        return path
    path = Path(str(path)).expanduser()
    if path.is_absolute() or base is None:
        return str(path)
    return str(base / path)
