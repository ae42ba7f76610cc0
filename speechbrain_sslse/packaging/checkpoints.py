"""The checkpoint to package, and the output-level calibration of a HiFi-GAN vocoder's weights.

Authors
 * speechbrain-sslse contributors
"""

from speechbrain.utils.checkpoints import Checkpointer

from .errors import PackagingError

__all__ = ["find_checkpoint", "calibrate_output_level", "MAX_CALIBRATION_DB"]

MAX_CALIBRATION_DB = 40.0


def find_checkpoint(save_folder, max_key="pesq"):
    """The checkpoint to package: best by ``max_key`` in its metadata, else the latest.

    Arguments
    ---------
    save_folder : str or Path
        A training run's checkpoint folder (``<output_folder>/save``).
    max_key : str
        Metadata key to maximise (validation PESQ by default).

    Returns
    -------
    speechbrain.utils.checkpoints.Checkpoint
    """
    checkpointer = Checkpointer(save_folder)
    checkpoints = checkpointer.list_checkpoints()
    if not checkpoints:
        raise PackagingError(f"{save_folder}: no checkpoint (CKPT+*) found; train the model first")
    scored = [c for c in checkpoints if isinstance(c.meta.get(max_key), int | float)]
    scored = [c for c in scored if c.meta[max_key] == c.meta[max_key]]  # drop NaN
    if scored:
        return max(scored, key=lambda c: c.meta[max_key])
    return max(checkpoints, key=lambda c: c.meta.get("unixtime", 0))


def calibrate_output_level(state, level_db):
    """A HiFi-GAN vocoder's state with its output layer scaled to undo a level offset of ``level_db``.

    The generator's last convolution feeds a tanh; scaling its weight (the weight-norm
    magnitude) and bias by ``10 ** (-level_db / 20)`` scales what enters the tanh, which
    is the output's level wherever the output is not near full scale. ``level_db`` is the
    validation median of the output's level minus the clean target's (the recipe's
    ``level_db``): a short run's generator is still far too quiet.

    Arguments
    ---------
    state : dict
        The vocoder's state dict (``generator.conv_post...`` keys of SpeechBrain's HifiganGenerator).
    level_db : float
        The level offset to undo (clipped to +-40 dB).

    Returns
    -------
    tuple
        (new state, the gain applied in dB).

    Example
    -------
    >>> import torch
    >>> state = {"generator.conv_post.conv.bias": torch.ones(1), "encoder.fingerprint": torch.ones(2)}
    >>> new, gain = calibrate_output_level(state, -20.0)
    >>> float(new["generator.conv_post.conv.bias"]), gain, float(new["encoder.fingerprint"][0])
    (10.0, 20.0, 1.0)
    """
    gain_db = float(min(max(-level_db, -MAX_CALIBRATION_DB), MAX_CALIBRATION_DB))
    factor = 10.0 ** (gain_db / 20.0)
    scaled = (".bias", ".original0", ".weight_g", "conv.weight")  # weight-norm magnitude, or a folded weight
    new = dict(state)
    for key, value in state.items():
        if key.startswith("generator.conv_post.") and key.endswith(scaled):
            new[key] = value * factor
    return new, gain_db
