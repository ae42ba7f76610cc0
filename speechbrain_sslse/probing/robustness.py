"""Robustness of embeddings to noise and reverberation (ICEIC 2024): normalised MSE and cosine.

For clean speech ``s`` and a distorted version ``x`` of it, frame-aligned
embeddings ``e_s``, ``e_x`` (``[F, D]`` per layer) are compared frame by frame:

- normalised MSE: ``d = (1/N) ((e_s - e_x) / sigma)^T ((e_s - e_x) / sigma)`` per
  frame, ``sigma`` the per-dimension standard deviation of the *clean* embeddings
  over the whole set, averaged over all frames of the set;
- cosine similarity per frame, averaged over all frames of the set.

Dimensions with ``sigma <= min_sigma`` (constant over the clean set) carry no scale
and are left out of the NMSE; ``N`` counts the remaining dimensions.

Alignment: additive noise keeps the frames as they are. Reverberation uses the
RIR scaled to unit direct-path gain and shifted so that its direct path is at lag 0
(:func:`speechbrain_sslse.data.mixing.reverberate`): the dry part of the reverberant
signal then *is* the clean signal, sample for sample, and frames with the same
index are compared. Both embeddings are cropped to the shorter frame count.

Authors
 * speechbrain-sslse contributors
"""

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from speechbrain_sslse.audio import atomic_path
from speechbrain_sslse.data.mixing import loop_to_length, mix_at_snr, reverberate
from speechbrain_sslse.data.rir import direct_path_index

from .features import encode_batches

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


def distort(clean, noise=None, snr=None, rir=None, noise_offset=0):
    """A distorted version of ``clean``, frame-aligned with it.

    Arguments
    ---------
    clean : torch.Tensor
        ``[T]`` clean speech at 16 kHz.
    noise : torch.Tensor, optional
        ``[N]`` noise, cropped or looped to ``T`` from ``noise_offset``.
    snr : float, optional
        SNR in dB of the (possibly reverberant) speech over the noise.
    rir : torch.Tensor, optional
        ``[R]`` impulse response; scaled to unit direct-path gain and aligned to its
        direct path, so that the dry part of the result equals ``clean``.
    noise_offset : int
        First noise sample used.

    Returns
    -------
    torch.Tensor
        ``[T]``.

    Example
    -------
    >>> clean = torch.randn(1600)
    >>> rir = torch.zeros(50); rir[10] = 0.5  # a pure delay: nothing but the direct path
    >>> torch.allclose(distort(clean, rir=rir), clean, atol=1e-6)
    True
    >>> from speechbrain_sslse.data.mixing import snr_db
    >>> noisy = distort(clean, noise=torch.randn(4000), snr=5.0)
    >>> round(float(snr_db(clean, noisy - clean)), 3)
    5.0
    """
    out = clean
    if rir is not None:
        rir = rir / rir[direct_path_index(rir)]
        out, _ = reverberate(clean, rir)
    if noise is not None:
        if snr is None:
            raise ValueError("noise given without an SNR")
        out, _ = mix_at_snr(out, loop_to_length(noise, clean.shape[-1], int(noise_offset)), float(snr))
    return out


def rt60_bins(edges):
    """Labels of the RT60 bins ``[e0, e1), [e1, e2), ... [e_{n-1}, e_n]`` (the last one closed).

    Example
    -------
    >>> rt60_bins([0.3, 0.5, 0.7])
    ['0.3-0.5', '0.5-0.7']
    """
    edges = [float(e) for e in edges]
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"RT60 bin edges must be increasing and at least two, got {edges}")
    return [f"{a:g}-{b:g}" for a, b in zip(edges, edges[1:])]


def rt60_bin(t60, edges):
    """The label of the bin holding ``t60``, or None outside the edges.

    Example
    -------
    >>> rt60_bin(0.5, [0.3, 0.5, 0.7]), rt60_bin(0.7, [0.3, 0.5, 0.7]), rt60_bin(1.5, [0.3, 0.5, 0.7])
    ('0.5-0.7', '0.5-0.7', None)
    """
    labels = rt60_bins(edges)
    edges = [float(e) for e in edges]
    if t60 is None or not math.isfinite(t60) or t60 < edges[0] or t60 > edges[-1]:
        return None
    for label, lo, hi in zip(labels, edges, edges[1:]):
        if lo <= t60 < hi:
            return label
    return labels[-1]


@dataclass
class Condition:
    """One distorted version of an utterance and the table cells it counts toward.

    ``keys`` are ``(family, axis, value)`` triples such as ``("noise", "snr", "5")``,
    ``("reverb", "rt60", "0.3-0.5")``; a "both" version counts toward its SNR and
    its RT60 bin.
    """

    keys: tuple
    noise: str | None = None
    noise_offset: int = 0
    snr: float | None = None
    rir: str | None = None


class DistortionPlan:
    """Which distortions each utterance gets, deterministic from a seed.

    - ``noise``: one noise recording and offset per utterance (drawn at random), added
      at every SNR of ``snrs``;
    - ``reverb``: for every RT60 bin that holds impulse responses, one of them (drawn
      at random);
    - ``both``: at every SNR, the utterance's noise on top of reverberation by an
      impulse response from a bin chosen in turn (utterance index + SNR index), so
      all bins are used evenly; it counts toward its SNR and its bin.

    Arguments
    ---------
    noises : dict
        ``name -> [N]`` noise waveforms (16 kHz).
    rirs : dict
        ``name -> [R]`` impulse responses (16 kHz).
    rir_bins : dict
        ``name -> bin label`` (from :func:`rt60_bin`); impulse responses without a
        bin (None) are not used.
    snrs : list of float
        SNRs in dB.
    bins : list of str
        The bin labels, in table order.
    families : list of str
        Any of ``noise``, ``reverb``, ``both``.
    seed : int
        Seed of the draws.

    Example
    -------
    >>> plan = DistortionPlan({"n": torch.randn(800)}, {"r": torch.tensor([1.0, 0.2])}, {"r": "0.3-0.5"},
    ...                       snrs=[0, 5], bins=["0.3-0.5", "0.5-0.7"], seed=0)
    >>> [c.keys for c in plan.conditions(0, 400)][:3]
    [(('noise', 'snr', '0'),), (('noise', 'snr', '5'),), (('reverb', 'rt60', '0.3-0.5'),)]
    >>> len(plan.wavs(0, torch.randn(400)))  # clean + 2 noisy + 1 reverberant + 2 both
    6
    """

    FAMILIES = ("noise", "reverb", "both")

    def __init__(self, noises, rirs, rir_bins, snrs, bins, families=FAMILIES, seed=0):
        unknown = set(families) - set(self.FAMILIES)
        if unknown:
            raise ValueError(f"unknown distortion families {sorted(unknown)}: expected {self.FAMILIES}")
        self.noises = dict(noises)
        self.rirs = dict(rirs)
        self.snrs = [float(s) for s in snrs]
        self.bins = list(bins)
        self.families = list(families)
        self.seed = int(seed)
        self.by_bin = {
            b: sorted(n for n, lab in rir_bins.items() if lab == b and n in self.rirs) for b in self.bins
        }
        self.used_bins = [b for b in self.bins if self.by_bin[b]]
        if ("noise" in families or "both" in families) and not (self.noises and self.snrs):
            raise ValueError("noise distortions need at least one noise and one SNR")
        if ("reverb" in families or "both" in families) and not self.used_bins:
            raise ValueError(f"reverberation needs impulse responses with an RT60 in the bins {self.bins}")

    @staticmethod
    def label(value):
        """Table label of an SNR value (``5.0 -> '5'``)."""
        return f"{float(value):g}"

    def conditions(self, index, length):
        """The :class:`Condition` list of utterance ``index`` (``length`` samples)."""
        rng = np.random.default_rng([self.seed, int(index)])
        out = []
        noise_names = sorted(self.noises)
        noise = offset = None
        if noise_names:
            noise = noise_names[int(rng.integers(len(noise_names)))]
            offset = int(rng.integers(max(self.noises[noise].shape[-1] - length, 1)))
        if "noise" in self.families:
            for snr in self.snrs:
                out.append(Condition((("noise", "snr", self.label(snr)),), noise, offset, snr))
        if "reverb" in self.families:
            for b in self.used_bins:
                rir = self.by_bin[b][int(rng.integers(len(self.by_bin[b])))]
                out.append(Condition((("reverb", "rt60", b),), rir=rir))
        if "both" in self.families:
            for k, snr in enumerate(self.snrs):
                b = self.used_bins[(int(index) + k) % len(self.used_bins)]
                rir = self.by_bin[b][int(rng.integers(len(self.by_bin[b])))]
                keys = (("both", "snr", self.label(snr)), ("both", "rt60", b))
                out.append(Condition(keys, noise, offset, snr, rir))
        return out

    def wavs(self, index, clean):
        """``[clean, distorted_1, ...]`` (all ``[T]``) and the matching conditions (None for clean)."""
        conds = self.conditions(index, clean.shape[-1])
        wavs = [clean]
        for c in conds:
            wavs.append(
                distort(
                    clean,
                    noise=self.noises[c.noise] if c.noise is not None else None,
                    snr=c.snr,
                    rir=self.rirs[c.rir] if c.rir is not None else None,
                    noise_offset=c.noise_offset,
                )
            )
        return list(zip([None] + conds, wavs))

    def axis_values(self, family, axis):
        """Column labels of a table (SNRs or RT60 bins)."""
        return [self.label(s) for s in self.snrs] if axis == "snr" else list(self.used_bins)


def _save(state, path):
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
        See :func:`normalised_mse`.
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
    from pathlib import Path

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
