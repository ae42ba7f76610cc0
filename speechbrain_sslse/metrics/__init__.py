"""Speech quality metrics of the paper, offline: STOI, PESQ (wb), DNSMOS P.835, NISQA v2
and speaker cosine similarity (SpeechBrain ECAPA from a local folder, or Resemblyzer's
GE2E), with one :class:`Evaluator` over all of them.

Example
-------
>>> import torch
>>> from speechbrain_sslse.metrics import Evaluator
>>> ev = Evaluator(metrics="stoi,pesq")
>>> x = torch.randn(32000, generator=torch.Generator().manual_seed(0)) * 0.1
>>> sorted(ev.evaluate(x, x))
['missing', 'pesq', 'stoi']
"""

from .base import MetricUnavailable, default_nisqa_path
from .dnsmos import DNSMOS, speechmos_model_files
from .ecapa_folder import write_ecapa_folder
from .evaluator import GROUPS, Evaluator, parse_metrics
from .intrusive import pesq_wb, stoi
from .nisqa import NISQA
from .report import group_means, markdown_per_snr, markdown_table, plot_vs_snr
from .speaker import SpeakerSimilarity, cosine

__all__ = [
    "DNSMOS",
    "GROUPS",
    "NISQA",
    "Evaluator",
    "MetricUnavailable",
    "SpeakerSimilarity",
    "cosine",
    "default_nisqa_path",
    "group_means",
    "markdown_per_snr",
    "markdown_table",
    "parse_metrics",
    "pesq_wb",
    "plot_vs_snr",
    "speechmos_model_files",
    "stoi",
    "write_ecapa_folder",
]
