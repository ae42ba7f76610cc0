"""One evaluator for every metric of the paper, usable without any recipe.

:class:`Evaluator` scores (estimate, reference) pairs with STOI, wide-band PESQ,
DNSMOS P.835, NISQA v2 and speaker cosine similarity, and returns one flat dict
per pair. A metric whose model is absent (or that cannot score a file) is
reported as NaN with its reason in the ``missing`` entry, never as 0.
"""

import math
import time
from pathlib import Path

from tqdm import tqdm

from ..audio import SAMPLE_RATE
from .base import MetricUnavailable, as_waveform
from .dnsmos import DNSMOS
from .intrusive import pesq_wb, stoi
from .nisqa import NISQA
from .speaker import SpeakerSimilarity, parse_speaker_model

#: metric groups and the columns each one fills, in the paper's table order
GROUPS = {
    "stoi": ("stoi",),
    "pesq": ("pesq",),
    "dnsmos": ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"),
    "nisqa": ("nisqa_mos", "nisqa_nois", "nisqa_dis", "nisqa_col", "nisqa_loud"),
    "spk": ("spk_cs",),
}
#: groups that need the clean reference
INTRUSIVE = ("stoi", "pesq", "spk")


def parse_metrics(spec):
    """Parses a metric selection (``"all"``, ``"stoi,pesq"``, a list) into group names.

    Example
    -------
    >>> parse_metrics("stoi, nisqa")
    ['stoi', 'nisqa']
    >>> parse_metrics("all")
    ['stoi', 'pesq', 'dnsmos', 'nisqa', 'spk']
    """
    if spec is None or spec == "all":
        return list(GROUPS)
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}: choose among {list(GROUPS)} or 'all'")
    return [g for g in GROUPS if g in names]


class Evaluator:
    """Scores enhanced speech against clean references with the paper's metrics.

    Arguments
    ---------
    metrics : str or list of str
        Groups to compute: ``stoi``, ``pesq``, ``dnsmos``, ``nisqa``, ``spk`` (or ``"all"``).
    nisqa_path : str or None
        NISQA v2 ``nisqa.tar``; the default is ``$SSLSE_NISQA`` or
        ``../shared/assets/nisqa/nisqa.tar``.
    speaker_model : str
        ``"ge2e"`` (Resemblyzer's bundled encoder) or ``"ecapa:DIR"`` (SpeechBrain
        ECAPA folder, the paper's metric).
    device : str
        Torch device of the neural metrics.
    num_threads : int or None
        ONNX Runtime threads of DNSMOS (its default when None).

    Example
    -------
    >>> import torch
    >>> ev = Evaluator(metrics="stoi,pesq,nisqa", nisqa_path="/no/such/nisqa.tar")
    >>> sorted(ev.missing)
    ['nisqa']
    >>> x = torch.randn(32000, generator=torch.Generator().manual_seed(0)) * 0.1
    >>> row = ev.evaluate(x, x)
    >>> round(row["stoi"], 3), math.isnan(row["nisqa_mos"])
    (1.0, True)
    >>> row["missing"].startswith("nisqa: NISQA: weights not found")
    True
    """

    def __init__(self, metrics="all", nisqa_path=None, speaker_model="ge2e", device="cpu", num_threads=None):
        self.groups = parse_metrics(metrics)
        self.missing = {}
        self.models = {}
        self.timing = {g: 0.0 for g in self.groups}
        self.audio_seconds = {g: 0.0 for g in self.groups}
        self.speaker_model = speaker_model
        loaders = {
            "dnsmos": lambda: DNSMOS(num_threads=num_threads),
            "nisqa": lambda: NISQA(nisqa_path, device=device),
            "spk": lambda: SpeakerSimilarity(*parse_speaker_model(speaker_model), device=device),
        }
        for group in self.groups:
            if group in loaders:
                try:
                    self.models[group] = loaders[group]()
                except MetricUnavailable as err:
                    self.missing[group] = err.reason
        self._ref_embeddings = {}

    @property
    def columns(self):
        """Metric columns filled by :meth:`evaluate`, in table order.

        Example
        -------
        >>> Evaluator("stoi,pesq").columns
        ['stoi', 'pesq']
        """
        return [c for g in self.groups for c in GROUPS[g]]

    @property
    def info(self):
        """Which model scored each metric (files and hashes) and which are missing, for reports.

        Example
        -------
        >>> Evaluator("stoi").info["stoi"]
        {'implementation': 'pystoi'}
        """
        out = {}
        for group in self.groups:
            if group in self.missing:
                out[group] = {"missing": self.missing[group]}
            elif group == "stoi":
                out[group] = {"implementation": "pystoi"}
            elif group == "pesq":
                out[group] = {"implementation": "pesq (ITU-T P.862.2 wide band)"}
            else:
                out[group] = self.models[group].info
        return out

    def _run(self, group, estimate, reference, reference_key):
        if group == "stoi":
            return {"stoi": stoi(estimate, reference)}
        if group == "pesq":
            return {"pesq": pesq_wb(estimate, reference)}
        if group == "spk":
            model = self.models["spk"]
            emb = self._ref_embeddings.get(reference_key) if reference_key is not None else None
            if emb is None:
                emb = model.embed(reference)
                if reference_key is not None:
                    self._ref_embeddings[reference_key] = emb
            return model(estimate, None, reference_embedding=emb)
        return self.models[group](estimate)

    def evaluate(self, estimate, reference=None, groups=None, reference_key=None):
        """Scores one estimate.

        Arguments
        ---------
        estimate : torch.Tensor, numpy.ndarray or path
            ``[T]`` speech to score (16 kHz; files are resampled on read).
        reference : torch.Tensor, numpy.ndarray, path or None
            ``[T]`` clean reference (needed by STOI, PESQ and speaker similarity).
        groups : list of str or None
            Subset of this evaluator's groups (all by default).
        reference_key : str or None
            A name for ``reference``; its speaker embedding is computed once per key.

        Returns
        -------
        dict
            One float per column of the chosen groups (NaN when missing) and
            ``missing``: ``"group: reason | ..."`` (empty when all were computed).
        """
        groups = self.groups if groups is None else [g for g in self.groups if g in groups]
        est = as_waveform(estimate)
        ref = as_waveform(reference) if reference is not None else None
        row, reasons = {}, []
        for group in groups:
            try:
                if group in self.missing:
                    raise MetricUnavailable(self.missing[group])
                if group in INTRUSIVE and ref is None:
                    raise MetricUnavailable("needs a clean reference")
                start = time.perf_counter()
                values = self._run(group, est, ref, reference_key)
                self.timing[group] += time.perf_counter() - start
                self.audio_seconds[group] += est.size / SAMPLE_RATE
                for name, value in values.items():
                    if not math.isfinite(value):
                        raise MetricUnavailable(f"non-finite {name} ({value})")
                row.update(values)
            except MetricUnavailable as err:
                row.update({c: float("nan") for c in GROUPS[group]})
                reasons.append(f"{group}: {err.reason}")
        row["missing"] = " | ".join(reasons)
        return row

    def evaluate_files(self, pairs, progress=True):
        """Scores a list of ``(estimate, reference)`` pairs (paths or waveforms).

        Arguments
        ---------
        pairs : list of tuple
            ``(estimate, reference)``; ``reference`` may be None.
        progress : bool
            Show a tqdm progress bar.

        Returns
        -------
        list of dict
            One :meth:`evaluate` result per pair.
        """
        return [
            self.evaluate(est, ref, reference_key=str(ref) if isinstance(ref, (str, Path)) else None)
            for est, ref in tqdm(pairs, desc="scoring", unit="file", disable=not progress)
        ]

    def real_time_factors(self):
        """Seconds of computation per second of audio for each computed group.

        Example
        -------
        >>> Evaluator("stoi").real_time_factors()
        {}
        """
        return {g: self.timing[g] / self.audio_seconds[g] for g in self.groups if self.audio_seconds[g] > 0}
