"""Reading a training run: the settings its ``hyperparams.yaml`` records, and where its paths point.

SpeechBrain writes a run's ``hyperparams.yaml`` with its paths as given at training, so a
relative path in it is relative to the folder the run was trained from; packaging reads
a run from anywhere with :func:`training_folder` and :func:`run_path`.

Authors
 * speechbrain-sslse contributors
"""

import os
from pathlib import Path

from ruamel.yaml import YAML

__all__ = ["recorded_settings", "training_folder", "run_path"]


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
