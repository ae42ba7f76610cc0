"""How far distorted embeddings are from clean ones: normalised MSE and cosine, per layer.

For clean speech ``s`` and a distorted version ``x`` of it, frame-aligned
embeddings ``e_s``, ``e_x`` (``[F, D]`` per layer) are compared frame by frame:

- normalised MSE: ``d = (1/N) ((e_s - e_x) / sigma)^T ((e_s - e_x) / sigma)`` per
  frame, ``sigma`` the per-dimension standard deviation of the *clean* embeddings
  over the whole set, averaged over all frames of the set;
- cosine similarity per frame, averaged over all frames of the set.

Dimensions with ``sigma <= min_sigma`` (constant over the clean set) carry no scale
and are left out of the NMSE; ``N`` counts the remaining dimensions.
:class:`RobustnessStats` accumulates both over a set, utterance by utterance;
:func:`summarise_layers` turns per-layer values into one number.

Authors
 * speechbrain-sslse contributors
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["crop_frames", "normalised_mse", "frame_cosine", "RobustnessStats", "summarise_layers"]


def crop_frames(clean, distorted):
    """Crops two frame sequences ``[..., F, D]`` to the shorter frame count (aligned at the start).

    Example
    -------
    >>> a, b = crop_frames(torch.zeros(2, 10, 4), torch.zeros(2, 8, 4))
    >>> a.shape[-2], b.shape[-2]
    (8, 8)
    """
    n = min(clean.shape[-2], distorted.shape[-2])
    return clean[..., :n, :], distorted[..., :n, :]


def normalised_mse(clean, distorted, sigma, min_sigma=1e-6):
    """Normalised MSE, averaged over frames.

    Arguments
    ---------
    clean, distorted : torch.Tensor
        ``[..., F, D]`` frame-aligned embeddings (cropped to the shorter one).
    sigma : torch.Tensor
        ``[..., D]`` (or ``[D]``) per-dimension std of the clean embeddings over the set.
    min_sigma : float
        Dimensions with ``sigma <= min_sigma`` are left out (``N`` counts the others).

    Returns
    -------
    torch.Tensor
        ``[...]`` mean over frames of ``||(e_s - e_x) / sigma||^2 / N``.

    Example
    -------
    >>> e = torch.randn(3, 20, 8)
    >>> float(normalised_mse(e, e, e.std(dim=(0, 1))).max())
    0.0
    >>> sigma = torch.tensor([2.0, 0.0])  # the second dimension is constant: left out
    >>> normalised_mse(torch.zeros(1, 2), torch.tensor([[1.0, 5.0]]), sigma).item()
    0.25
    """
    clean, distorted = crop_frames(clean, distorted)
    sigma = sigma.to(clean.dtype)
    keep = sigma > min_sigma
    if not bool(keep.any()):
        return torch.full(clean.shape[:-2], math.nan, dtype=clean.dtype)
    scaled = (clean - distorted) / torch.where(keep, sigma, torch.ones_like(sigma)).unsqueeze(-2)
    per_frame = (scaled.pow(2) * keep.unsqueeze(-2)).sum(-1) / keep.sum(-1, keepdim=True)
    return per_frame.mean(-1)


def frame_cosine(clean, distorted, eps=1e-8):
    """Cosine similarity of aligned frames, averaged over frames.

    Arguments
    ---------
    clean, distorted : torch.Tensor
        ``[..., F, D]`` (cropped to the shorter one).
    eps : float
        Floor of the norms' product.

    Returns
    -------
    torch.Tensor
        ``[...]``.

    Example
    -------
    >>> e = torch.randn(2, 5, 4)
    >>> torch.allclose(frame_cosine(e, e), torch.ones(2)), round(frame_cosine(e, -e)[0].item(), 4)
    (True, -1.0)
    """
    clean, distorted = crop_frames(clean, distorted)
    return F.cosine_similarity(clean, distorted, dim=-1, eps=eps).mean(-1)


class RobustnessStats:
    """Accumulates, over a set, what the NMSE and cosine of each layer and condition need.

    Per layer it keeps the clean embeddings' mean and variance (merged utterance by
    utterance in float64, Chan et al.'s parallel algorithm: constant dimensions stay
    exactly constant), and per condition the sum over frames of the squared
    differences per dimension, the sum of frame cosines and the frame count. NMSE
    and cosine are then computed at the end with the set's ``sigma``, exactly as
    :func:`normalised_mse` and :func:`frame_cosine` would on all frames at once.

    Arguments
    ---------
    num_layers : int
        ``L``.
    dim : int
        ``D``.
    min_sigma : float
        See :func:`normalised_mse`.

    Example
    -------
    >>> stats = RobustnessStats(2, 4)
    >>> clean = torch.randn(2, 30, 4)
    >>> stats.add_clean(clean)
    >>> noisy = clean + 0.1 * torch.randn(2, 30, 4)
    >>> stats.add("noise/snr/5", clean, noisy)
    >>> stats.add("same", clean, clean)
    >>> res = stats.results()
    >>> res["same"]["nmse"].tolist(), [round(c, 6) for c in res["same"]["cosine"].tolist()]
    ([0.0, 0.0], [1.0, 1.0])
    >>> direct = normalised_mse(clean, noisy, clean.std(dim=1, unbiased=False))
    >>> torch.allclose(res["noise/snr/5"]["nmse"].float(), direct)
    True
    """

    def __init__(self, num_layers, dim, min_sigma=1e-6):
        self.num_layers = num_layers
        self.dim = dim
        self.min_sigma = min_sigma
        self.clean_frames = 0
        self.clean_mean = torch.zeros(num_layers, dim, dtype=torch.float64)
        self.clean_m2 = torch.zeros(num_layers, dim, dtype=torch.float64)
        self.sq_diff = {}
        self.cos_sum = {}
        self.frames = {}
        self.done = 0

    def _check(self, hidden):
        if hidden.dim() != 3 or hidden.shape[0] != self.num_layers or hidden.shape[2] != self.dim:
            raise ValueError(
                f"expected embeddings [L={self.num_layers}, F, D={self.dim}], got {tuple(hidden.shape)}"
            )

    def add_clean(self, clean):
        """Adds the clean embeddings ``[L, F, D]`` of one utterance to the set's statistics."""
        self._check(clean)
        x = clean.double()
        n_b = x.shape[1]
        if n_b == 0:
            return
        mean_b = x.mean(dim=1)
        m2_b = (x - mean_b[:, None]).pow(2).sum(dim=1)
        n_a = self.clean_frames
        n = n_a + n_b
        delta = mean_b - self.clean_mean
        self.clean_mean = self.clean_mean + delta * (n_b / n)
        self.clean_m2 = self.clean_m2 + m2_b + delta.pow(2) * (n_a * n_b / n)
        self.clean_frames = n

    def add(self, condition, clean, distorted):
        """Adds one aligned pair ``[L, F, D]`` / ``[L, F', D]`` under ``condition`` (any hashable)."""
        self._check(clean)
        self._check(distorted)
        clean, distorted = crop_frames(clean, distorted)
        diff = (clean.double() - distorted.double()).pow(2).sum(dim=1)
        cos = F.cosine_similarity(clean.double(), distorted.double(), dim=-1, eps=1e-8).sum(dim=1)
        if condition not in self.frames:
            self.sq_diff[condition] = torch.zeros(self.num_layers, self.dim, dtype=torch.float64)
            self.cos_sum[condition] = torch.zeros(self.num_layers, dtype=torch.float64)
            self.frames[condition] = 0
        self.sq_diff[condition] += diff
        self.cos_sum[condition] += cos
        self.frames[condition] += clean.shape[1]

    def sigma(self):
        """``[L, D]`` per-dimension std of the clean embeddings over the set (population std)."""
        if self.clean_frames == 0:
            raise ValueError("no clean embeddings were added: sigma is undefined")
        return (self.clean_m2 / self.clean_frames).clamp_min(0).sqrt()

    def results(self):
        """NMSE and cosine per condition.

        Returns
        -------
        dict
            ``condition -> {"nmse": [L], "cosine": [L], "frames": int, "dims": [L]}``
            (``dims``: the number ``N`` of dimensions with ``sigma > min_sigma``).
        """
        sigma = self.sigma()
        keep = sigma > self.min_sigma
        safe = torch.where(keep, sigma, torch.ones_like(sigma))
        dims = keep.sum(dim=1)
        out = {}
        for cond, frames in self.frames.items():
            per_dim = self.sq_diff[cond] / safe.pow(2) * keep
            nmse = per_dim.sum(dim=1) / dims.clamp_min(1) / max(frames, 1)
            nmse = torch.where(dims > 0, nmse, torch.full_like(nmse, math.nan))
            out[cond] = {
                "nmse": nmse,
                "cosine": self.cos_sum[cond] / max(frames, 1),
                "frames": frames,
                "dims": dims,
            }
        return out

    def state_dict(self):
        """Everything needed to resume (plain tensors and numbers)."""
        return {
            "num_layers": self.num_layers,
            "dim": self.dim,
            "min_sigma": self.min_sigma,
            "clean_frames": self.clean_frames,
            "clean_mean": self.clean_mean,
            "clean_m2": self.clean_m2,
            "sq_diff": dict(self.sq_diff),
            "cos_sum": dict(self.cos_sum),
            "frames": dict(self.frames),
            "done": self.done,
        }

    @classmethod
    def from_state_dict(cls, state):
        """Rebuilds an accumulator saved with :meth:`state_dict`."""
        stats = cls(state["num_layers"], state["dim"], state["min_sigma"])
        for key in ("clean_frames", "clean_mean", "clean_m2", "sq_diff", "cos_sum", "frames", "done"):
            setattr(stats, key, state[key])
        return stats


def summarise_layers(values, summary="last"):
    """One number from per-layer values.

    Arguments
    ---------
    values : sequence of float
        ``[L]`` per-layer values.
    summary : str or int
        ``"last"``, ``"mean"`` (over layers), ``"best_max"`` / ``"best_min"``,
        or a layer index (negative counts from the end; clipped to the model's
        layers, so that models of different depths can share one setting).

    Example
    -------
    >>> summarise_layers([1.0, 2.0, 6.0]), summarise_layers([1.0, 2.0, 6.0], "mean")
    (6.0, 3.0)
    >>> summarise_layers([1.0, 2.0, 6.0], 0), summarise_layers([1.0, 2.0, 6.0], "best_min")
    (1.0, 1.0)
    """
    values = [float(v) for v in values]
    if summary == "last":
        return values[-1]
    if summary == "mean":
        return float(np.nanmean(values))
    if summary == "best_max":
        return float(np.nanmax(values))
    if summary == "best_min":
        return float(np.nanmin(values))
    if isinstance(summary, int) and not isinstance(summary, bool):
        return values[max(min(summary, len(values) - 1), -len(values))]
    raise ValueError(
        f"unknown layer summary {summary!r}: use 'last', 'mean', 'best_max', 'best_min' or a layer index"
    )
