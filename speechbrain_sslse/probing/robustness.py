"""Robustness of embeddings to noise and reverberation (ICEIC 2024): normalised MSE and cosine.

:func:`evaluate_robustness` runs encoders over a set of clean utterances and their
distorted versions and accumulates, per layer and condition, what the measures need.
The stages live beside it: the distortions and which utterance gets which
(:mod:`.distortions`), and the measures with their accumulator (:mod:`.measures`);
their names are re-exported here.

Authors
 * speechbrain-sslse contributors
"""

import logging
from pathlib import Path

import torch
from tqdm.auto import tqdm

from speechbrain_sslse.audio import atomic_path

from .distortions import Condition, DistortionPlan, distort, rt60_bin, rt60_bins
from .features import encode_batches
from .measures import RobustnessStats, crop_frames, frame_cosine, normalised_mse, summarise_layers

__all__ = [
    "normalised_mse",
    "frame_cosine",
    "crop_frames",
    "RobustnessStats",
    "distort",
    "rt60_bins",
    "rt60_bin",
    "Condition",
    "DistortionPlan",
    "evaluate_robustness",
    "summarise_layers",
]

logger = logging.getLogger(__name__)


def _save(state, path):
    """Writes a resume point atomically (a stopped write leaves the previous one)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def evaluate_robustness(
    encoders,
    utterances,
    plan,
    batch_size=8,
    device="cpu",
    min_sigma=1e-6,
    state_path=None,
    save_every=25,
    fingerprint=None,
    progress=True,
    desc="robustness",
):
    """Runs encoders over a set: clean and distorted embeddings, accumulated per condition.

    Each utterance's distorted versions are made once and given to every encoder;
    an utterance's clean and distorted versions have the same length and are
    encoded together in batches of ``batch_size``.

    Arguments
    ---------
    encoders : torch.nn.Module or dict
        One encoder, or ``name -> encoder``; interface of ``SSLEncoder``
        (``[L, B, F, D]`` hidden states and frame counts).
    utterances : list
        ``[T]`` clean waveforms, or callables returning one (read lazily).
    plan : DistortionPlan
        The distortions.
    batch_size : int
        Waveforms per forward pass.
    device : str
        Where the encoders run.
    min_sigma : float
        See :func:`.measures.normalised_mse`.
    state_path : str or Path, optional
        Where progress is saved every ``save_every`` utterances; a run finding a
        state with the same ``fingerprint`` (and encoder names) resumes from it.
    save_every : int
        Utterances between saves.
    fingerprint : object, optional
        Anything identifying the configuration (saved with the state).
    progress : bool
        tqdm progress bar over utterances.
    desc : str
        Label of the progress bar.

    Returns
    -------
    RobustnessStats or dict
        One accumulator, or ``name -> RobustnessStats`` when ``encoders`` is a dict.

    Example
    -------
    >>> from speechbrain_sslse.probing.features import LogMelEncoder
    >>> plan = DistortionPlan({"n": torch.randn(8000)}, {}, {}, snrs=[0, 10], bins=[], families=["noise"])
    >>> stats = evaluate_robustness(LogMelEncoder(), [torch.randn(4000), torch.randn(3000)], plan,
    ...                             progress=False)
    >>> res = stats.results()
    >>> bool(res[("noise", "snr", "0")]["nmse"] > res[("noise", "snr", "10")]["nmse"])
    True
    """
    single = not isinstance(encoders, dict)
    encoders = {"encoder": encoders} if single else dict(encoders)
    stats = None
    if state_path is not None and Path(state_path).is_file():
        try:
            saved = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as err:  # a damaged resume point: start afresh rather than fail
            logger.warning("cannot read the resume point %s (%s): starting afresh", state_path, err)
            saved = {}
        if saved.get("fingerprint") == fingerprint and set(saved.get("stats", {})) == set(encoders):
            stats = {name: RobustnessStats.from_state_dict(st) for name, st in saved["stats"].items()}
            done = min(st.done for st in stats.values())
            logger.info("resuming %s from %s (%d utterances done)", desc, state_path, done)
    if stats is None:
        stats = {
            name: RobustnessStats(int(enc.num_layers), int(enc.hidden_size), min_sigma)
            for name, enc in encoders.items()
        }
    done = min(st.done for st in stats.values())
    total = len(utterances)
    bar = tqdm(total=total, initial=min(done, total), desc=desc, disable=not progress)
    try:
        for index in range(done, total):
            clean = utterances[index]
            clean = clean() if callable(clean) else clean
            pairs = plan.wavs(index, clean)
            for name, encoder in encoders.items():
                hidden = dict(encode_batches(encoder, [w for _, w in pairs], batch_size, device))
                st = stats[name]
                st.add_clean(hidden[0])
                for k, (cond, _) in enumerate(pairs[1:], start=1):
                    for key in cond.keys:
                        st.add(key, hidden[0], hidden[k])
                st.done = index + 1
            bar.update(1)
            if state_path is not None and ((index + 1) % save_every == 0 or index + 1 == total):
                state = {name: st.state_dict() for name, st in stats.items()}
                _save({"fingerprint": fingerprint, "stats": state}, state_path)
    finally:
        bar.close()
    return stats["encoder"] if single else stats
