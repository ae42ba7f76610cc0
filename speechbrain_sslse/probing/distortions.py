"""Distorted versions of clean speech, frame-aligned with it: noise, reverberation, both.

Alignment: additive noise keeps the frames as they are. Reverberation uses the
RIR scaled to unit direct-path gain and shifted so that its direct path is at lag 0
(:func:`speechbrain_sslse.data.mixing.reverberate`): the dry part of the reverberant
signal then *is* the clean signal, sample for sample, and frames with the same
index are compared. :class:`DistortionPlan` says which distortions each utterance
gets (deterministic from a seed), and which table cells (SNR, RT60 bin) each counts
toward.

Authors
 * speechbrain-sslse contributors
"""

import math
from dataclasses import dataclass

import numpy as np

from speechbrain_sslse.data.mixing import loop_to_length, mix_at_snr, reverberate
from speechbrain_sslse.data.rir import direct_path_index

__all__ = ["distort", "rt60_bins", "rt60_bin", "Condition", "DistortionPlan"]


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
    >>> import torch
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
    >>> import torch
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
