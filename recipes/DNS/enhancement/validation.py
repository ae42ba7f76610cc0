"""What a training run scores on its validation mixtures, and how its checkpoints are ranked.

STOI, PESQ (wide band), DNSMOS OVRL and the output level of the enhanced validation
mixtures, averaged by :func:`validation_metrics`: ``train.py`` logs them each epoch and
ranks its checkpoints by one of them (:func:`ranking_meta`). :func:`validation_items` and
:func:`score_validation` draw and score a run's validation mixtures the same way after
training (``plot_training.py``, ``tune_mask_exponent.py``).

Authors
 * speechbrain-sslse contributors
"""

import logging
import os
import sys
from pathlib import Path

import numpy as np
import torch

from speechbrain_sslse.metrics import MetricUnavailable, pesq_wb, stoi
from speechbrain_sslse.upgrade import load_run_hyperparams

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
from data_pipeline import dataio_prepare  # noqa: E402

logger = logging.getLogger(__name__)


def _score(metric, estimate, reference=None):
    """A metric's value, NaN (logged) when it cannot be computed for this pair."""
    try:
        return metric(estimate) if reference is None else metric(estimate, reference)
    except MetricUnavailable as err:
        logger.warning("validation metric not computed: %s", err)
        return float("nan")


# Wide-band PESQ (MOS-LQO) lies in [1.04, 4.64]; a file it cannot score (no speech found in
# the output, e.g. a silent one) counts as this floor instead of dropping out of the mean.
PESQ_FLOOR = 1.0


def validation_metrics(scores):
    """Means over the validation files of their STOI, PESQ and (when computed) DNSMOS OVRL.

    A PESQ that could not be computed counts as :data:`PESQ_FLOOR` (and is counted in
    ``pesq_failed``), so that a nearly silent model cannot rank high on the files PESQ
    accepts. Other metrics average the files where they were computed (NaN when none).
    ``quality`` = DNSMOS OVRL + 5 STOI (both on a 0-5 scale) when DNSMOS was computed, and
    ``quality_nisqa`` = DNSMOS OVRL + NISQA MOS + 5 STOI when NISQA was computed too (the
    three metrics the default model's goal names, NISQA being the one ``quality`` misses);
    ``level_db``: the median over the files of the output's level minus the clean target's.

    Arguments
    ---------
    scores : list of dict
        Per-file ``stoi``, ``pesq`` and optionally ``dnsmos_ovrl`` (NaN when not computed).

    Returns
    -------
    dict

    Example
    -------
    >>> stats = validation_metrics([{"stoi": 0.8, "pesq": 2.0}, {"stoi": 0.6, "pesq": float("nan")}])
    >>> round(stats["stoi"], 3), stats["pesq"], stats["pesq_failed"]
    (0.7, 1.5, 1)
    >>> stats = validation_metrics([{"stoi": 0.8, "pesq": 2.0, "dnsmos_ovrl": 2.5, "nisqa": 3.0}])
    >>> round(stats["quality"], 3), round(stats["quality_nisqa"], 3)
    (6.5, 9.5)
    """
    stats = {}
    levels = np.array([s["level_db"] for s in scores if "level_db" in s], dtype=float)
    if np.isfinite(levels).any():
        stats["level_db"] = float(np.median(levels[np.isfinite(levels)]))
    for metric in ("stoi", "pesq", "dnsmos_ovrl", "nisqa"):
        values = np.array([s[metric] for s in scores if metric in s], dtype=float)
        if not len(values):
            continue
        finite = np.isfinite(values)
        if metric == "pesq":
            stats["pesq_failed"] = int((~finite).sum())
            stats[metric] = float(np.where(finite, values, PESQ_FLOOR).mean())
        else:
            stats[metric] = float(values[finite].mean()) if finite.any() else float("nan")
    if "dnsmos_ovrl" in stats:
        # Selection criterion of the default model: both terms on a 0-5 scale.
        stats["quality"] = stats["dnsmos_ovrl"] + 5.0 * stats["stoi"]
        if "nisqa" in stats:
            stats["quality_nisqa"] = stats["quality"] + stats["nisqa"]
    return stats


def level_difference_db(estimate, reference, floor=1e-8):
    """RMS level of ``estimate`` minus that of ``reference`` in dB (NaN for a silent reference).

    Example
    -------
    >>> round(level_difference_db(0.1 * torch.ones(100), torch.ones(100)), 1)
    -20.0
    """
    ref = float(reference.double().pow(2).mean())
    if ref < floor:
        return float("nan")
    return 10.0 * float(np.log10((float(estimate.double().pow(2).mean()) + 1e-12) / ref))


# Validation parts: overrides of a run's mixing that draw other mixtures of its validation
# utterances. "standard": the run's own (train.py's, the selection set). "dry": no room and
# SNR 0-20 dB, another seed: what recorded noisy speech such as VoiceBank-DEMAND's
# (studio speech, real noise added, no reverberation) looks like.
VALIDATION_PARTS = {
    "standard": {},
    "dry": {"rir_probability": 0.0, "snr_range": [0.0, 20.0], "valid_seed": 7},
}


def validation_items(run_folder, overrides=None, part="standard"):
    """The validation mixtures of a training run, drawn as its training draws them.

    Arguments
    ---------
    run_folder : str or Path
        The run's ``output_folder`` (its ``hyperparams.yaml`` and manifests).
    overrides : dict, optional
        Hyperparameter overrides (e.g. ``{"num_valid_mixtures": 8}``).
    part : str
        A key of :data:`VALIDATION_PARTS` (its overrides come before ``overrides``).

    Returns
    -------
    list
        ``(id, noisy [T], clean [T])`` per validation mixture.
    """
    if part not in VALIDATION_PARTS:
        raise ValueError(f"unknown validation part {part!r}; use one of {', '.join(VALIDATION_PARTS)}")
    # a run of any former form of the recipe too (speechbrain_sslse.upgrade)
    overrides = {"output_folder": str(run_folder), **VALIDATION_PARTS[part], **(overrides or {})}
    hparams = load_run_hyperparams(Path(run_folder) / "hyperparams.yaml", overrides)
    _, valid, _ = dataio_prepare(hparams, Path(hparams["manifest_folder"]))
    return [(item["id"], item["noisy_sig"], item["clean_sig"]) for item in valid]


def score_validation(items, enhance=None, dnsmos=None, desc=None, nisqa=None):
    """:func:`validation_metrics` of ``enhance(noisy)`` over ``items``, as the training run scores itself.

    The means of :func:`score_items`' per-file scores (same arguments).
    """
    return validation_metrics(score_items(items, enhance, dnsmos, desc, nisqa))


def score_items(items, enhance=None, dnsmos=None, desc=None, nisqa=None):
    """Per-file STOI, PESQ, DNSMOS OVRL, level (and NISQA) of ``enhance(noisy)`` over ``items``.

    Arguments
    ---------
    items : list
        ``(id, noisy [T], clean [T])``, e.g. from :func:`validation_items`.
    enhance : callable, optional
        ``[T] -> [T]`` waveform enhancer (default: score the noisy input itself).
    dnsmos : speechbrain_sslse.metrics.DNSMOS, optional
        The scorer to reuse (default: a new one-thread scorer).
    desc : str, optional
        Label of a progress bar (none without it).
    nisqa : speechbrain_sslse.metrics.NISQA, optional
        With it, the NISQA MOS of each output too (``nisqa``; not part of ``quality``).

    Returns
    -------
    list of dict
        Per item: ``id``, ``stoi``, ``pesq``, ``dnsmos_ovrl``, ``level_db`` (and ``nisqa``),
        NaN where a metric could not be computed.
    """
    from tqdm import tqdm

    if dnsmos is None:
        from speechbrain_sslse.metrics import DNSMOS

        dnsmos = DNSMOS(num_threads=1)
    scores = []
    for uid, noisy, clean in tqdm(items, desc=desc, disable=desc is None, leave=False):
        with torch.no_grad():
            est = noisy if enhance is None else torch.as_tensor(enhance(noisy), dtype=torch.float32)
        scores.append(
            {
                "id": uid,
                "stoi": _score(stoi, est, clean),
                "pesq": _score(pesq_wb, est, clean),
                "dnsmos_ovrl": _score(lambda w: dnsmos(w)["dnsmos_ovrl"], est),
                "level_db": level_difference_db(est, clean),
            }
        )
        if nisqa is not None:
            scores[-1]["nisqa"] = _score(lambda w: nisqa(w)["nisqa_mos"], est)
    return scores


def ranking_meta(meta, key):
    """``meta`` with a NaN value of the ranking ``key`` replaced by -inf.

    SpeechBrain's Checkpointer sorts the checkpoints by ``meta[key]`` to choose the
    ones it keeps; a NaN (a metric that could not be computed) makes that order
    arbitrary, and the best checkpoint can then be deleted. -inf ranks last.

    Example
    -------
    >>> ranking_meta({"epoch": 3, "pesq": float("nan"), "stoi": float("nan")}, "pesq")
    {'epoch': 3, 'pesq': -inf, 'stoi': nan}
    """
    value = meta.get(key)
    if isinstance(value, float) and np.isnan(value):
        return {**meta, key: float("-inf")}
    return dict(meta)
