"""TERA's alteration of acoustic frames (time masking, frequency masking, magnitude alteration).

The alteration itself is s3prl's own function,
``s3prl.pretrain.mockingjay.task.generate_masked_acoustic_model_data`` (the one s3prl's
TERA and Mockingjay pretraining runs call); this module feeds it and makes it usable
from a SpeechBrain recipe:

- padded frames are zeroed first, because s3prl finds each item's length from the
  non-zero frames of the target;
- an optional ``seed`` makes the alteration reproducible (held-out evaluation) without
  touching the caller's random state (s3prl draws from Python's ``random`` and torch);
- s3prl's element-by-element sinusoid table (Python loops, seconds for TERA base) is
  replaced once by an equivalent vectorised one.

For each item s3prl draws ``round(len * mask_proportion / mask_consecutive)`` blocks
of ``mask_consecutive`` frames (time masking; 80 % of the time they are zeroed, 10 %
replaced by other frames, 10 % left as they are), one band of up to
``mask_frequency * feat_dim`` channels zeroed on all frames (frequency masking), and,
for ``noise_proportion`` of the batches, Gaussian noise (std 0.2) added to all frames
(magnitude alteration). The loss is taken where ``mask_label`` is True: the time-masked
frames and the masked band.

Authors
 * speechbrain-sslse contributors
"""

import random
import zlib
from typing import NamedTuple

import torch

__all__ = ["AlteredBatch", "alter_frames", "copy_input_loss", "reconstruction_loss", "seed_of"]


class AlteredBatch(NamedTuple):
    """What :func:`alter_frames` returns (s3prl's tuple, plus the kept batch indices)."""

    altered: torch.Tensor  # [B', F, D_in] the altered input frames
    pos_enc: torch.Tensor  # [F, H] sinusoidal position encodings
    mask_label: torch.Tensor  # [B', F, D_out] bool, where the loss is taken
    attn_mask: torch.Tensor  # [B', F] 1.0 on real frames, 0.0 on padding
    target: torch.Tensor  # [B', F, D_out] the frames to reconstruct
    kept: torch.Tensor  # [B'] indices of the items kept (s3prl drops items with nothing masked)


def seed_of(ids, base_seed=0):
    """A reproducible 31-bit seed from a list of item ids (for held-out alterations).

    Example
    -------
    >>> seed_of(["a", "b"]) == seed_of(["a", "b"]) != seed_of(["b", "a"])
    True
    """
    return zlib.crc32(("\n".join(map(str, ids)) + f"\n{base_seed}").encode()) & 0x7FFFFFFF


def alter_frames(input_feats, target_feats, task_config, lengths=None, seed=None):
    """Alters a batch of frames as TERA pretraining does (s3prl's own function).

    Arguments
    ---------
    input_feats : torch.Tensor
        ``[B, F, D_in]`` input frames (e.g. 80-dim CMVN log-Mel).
    target_feats : torch.Tensor
        ``[B, F, D_out]`` target frames (TERA base: the same features).
    task_config : dict
        s3prl's ``task`` section: ``mask_proportion``, ``mask_consecutive_min``,
        ``mask_consecutive_max``, ``mask_allow_overlap``, ``mask_bucket_ratio``,
        ``mask_frequency``, ``noise_proportion``, ``position_encoding_size``.
    lengths : torch.Tensor, optional
        ``[B]`` frame counts; frames beyond are padding (zeroed here).
    seed : int, optional
        Draw the alteration from this seed (the caller's random state is left untouched).

    Returns
    -------
    AlteredBatch
        See :class:`AlteredBatch`; ``altered`` is a new tensor, the inputs are not modified.

    Example
    -------
    >>> feats = torch.randn(2, 100, 80)
    >>> task = {"mask_proportion": 0.15, "mask_consecutive_min": 7, "mask_consecutive_max": 7,
    ...         "mask_allow_overlap": True, "mask_bucket_ratio": 1.5, "mask_frequency": 0.0,
    ...         "noise_proportion": 0.0, "position_encoding_size": 16}
    >>> out = alter_frames(feats, feats, task, seed=0)
    >>> tuple(out.altered.shape), tuple(out.pos_enc.shape), out.kept.tolist()
    ((2, 100, 80), (100, 16), [0, 1])
    >>> bool((out.altered[~out.mask_label] == feats[~out.mask_label]).all())
    True
    """
    from s3prl.pretrain.mockingjay.task import generate_masked_acoustic_model_data

    from speechbrain_sslse import _compat

    _compat.install_tera()
    if input_feats.dim() != 3 or target_feats.dim() != 3 or input_feats.shape[:2] != target_feats.shape[:2]:
        raise ValueError(
            f"expected input [B, F, D_in] and target [B, F, D_out] frames, got "
            f"{tuple(input_feats.shape)} and {tuple(target_feats.shape)}"
        )
    missing = [
        key
        for key in (
            "mask_proportion",
            "mask_consecutive_min",
            "mask_consecutive_max",
            "mask_allow_overlap",
            "mask_bucket_ratio",
            "mask_frequency",
            "noise_proportion",
            "position_encoding_size",
        )
        if key not in task_config
    ]
    if missing:
        raise KeyError(f"TERA task configuration lacks {missing} (see s3prl's pretrain/tera configs)")
    altered = input_feats.detach().clone()
    target = target_feats.detach().clone()
    if lengths is not None:
        frames = torch.arange(altered.shape[1], device=altered.device)
        padding = frames[None, :] >= torch.as_tensor(lengths, device=altered.device)[:, None]
        altered[padding] = 0.0
        target[padding] = 0.0
    spec = (altered, target)
    if seed is None:
        result = generate_masked_acoustic_model_data(spec, task_config)
    else:
        state = random.getstate()
        try:
            with torch.random.fork_rng(devices=[]):
                random.seed(seed)
                torch.manual_seed(seed)
                result = generate_masked_acoustic_model_data(spec, task_config)
        finally:
            random.setstate(state)
    altered, pos_enc, mask_label, attn_mask, target = result
    # s3prl keeps the items with at least one masked value; find which ones.
    kept = _kept_indices(spec[1], result)
    return AlteredBatch(altered, pos_enc, mask_label, attn_mask, target, kept)


def _kept_indices(full_target, result):
    """Indices of the items s3prl kept (those with a non-empty mask)."""
    kept_target = result[4]
    if kept_target.shape[0] == full_target.shape[0]:
        return torch.arange(full_target.shape[0])
    kept = []
    start = 0
    for index in range(full_target.shape[0]):
        if start < kept_target.shape[0] and torch.equal(full_target[index], kept_target[start]):
            kept.append(index)
            start += 1
    return torch.tensor(kept, dtype=torch.long)


def copy_input_loss(altered, target, mask_label, loss="L1"):
    """The copy-the-input baseline: the reconstruction loss of predicting the altered input itself.

    Arguments
    ---------
    altered : torch.Tensor
        ``[B, F, D]`` altered input frames.
    target : torch.Tensor
        ``[B, F, D]`` target frames (same features as the input).
    mask_label : torch.Tensor
        ``[B, F, D]`` bool, where the loss is taken.
    loss : str
        ``"L1"`` or ``"MSE"`` (as in s3prl's ``task.loss``).

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Example
    -------
    >>> target = torch.ones(1, 4, 2)
    >>> altered = target.clone(); altered[0, 1] = 0.0
    >>> mask = torch.zeros(1, 4, 2, dtype=torch.bool); mask[0, 1] = True
    >>> copy_input_loss(altered, target, mask).item()
    1.0
    """
    if altered.shape != target.shape:
        raise ValueError(
            f"the copy baseline needs input and target features of one kind, got "
            f"{tuple(altered.shape)} and {tuple(target.shape)}"
        )
    return reconstruction_loss(altered, target, mask_label, loss)


def reconstruction_loss(predicted, target, mask_label, loss="L1"):
    """s3prl's masked reconstruction loss: ``L1`` (or ``MSE``) over the ``mask_label`` values.

    Example
    -------
    >>> mask = torch.tensor([[[True, False]]])
    >>> reconstruction_loss(torch.tensor([[[3.0, 9.0]]]), torch.tensor([[[1.0, 1.0]]]), mask).item()
    2.0
    """
    functions = {"L1": torch.nn.functional.l1_loss, "MSE": torch.nn.functional.mse_loss}
    if loss not in functions:
        raise ValueError(f"unknown TERA loss {loss!r}: expected one of {sorted(functions)}")
    if not bool(mask_label.any()):
        raise ValueError("nothing is masked: the reconstruction loss is undefined (check the task settings)")
    return functions[loss](predicted.masked_select(mask_label), target.masked_select(mask_label))
