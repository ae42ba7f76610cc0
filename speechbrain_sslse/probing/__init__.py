"""Probes of self-supervised speech representations (Song, Kim, Madhu, Kang, ICEIC 2024).

- :mod:`.robustness`: normalised MSE and cosine similarity between frame-aligned
  embeddings of clean and distorted speech (noise, reverberation, both), per layer;
  the distortions in :mod:`.distortions`, the measures in :mod:`.measures`.
- :mod:`.linear_probe`: multinomial logistic-regression probes (training accuracy =
  linear separability; held-out accuracy as an extra).
- :mod:`.features`: the log-mel reference encoder, batched extraction, segment pooling.
- :mod:`.models`: models from a list of s3prl names and local checkpoints; unavailable
  ones are skipped with the reason.
- :mod:`.plots`: CSV, markdown tables in the paper's form, line plots, t-SNE.

Usable without any recipe; the recipes ``recipes/Valentini-DEMAND/robustness`` and
``recipes/TIMIT/probing`` drive them on real corpora or the embedded mini corpus.
"""

from .distortions import Condition, DistortionPlan, distort, rt60_bin, rt60_bins
from .features import LogMelEncoder, encode_batches, pool_segments, segment_frames
from .linear_probe import fit_probe, probe_layers, stratified_split
from .measures import RobustnessStats, crop_frames, frame_cosine, normalised_mse, summarise_layers
from .models import (
    TINY_WARNING,
    ProbeModel,
    SkippedModel,
    load_models,
    load_recipe_models,
    start_recipe,
    tiny_checkpoint,
)
from .plots import (
    information_table,
    models_table,
    plot_robustness,
    plot_tsne,
    robustness_table,
)
from .robustness import evaluate_robustness

__all__ = [
    "LogMelEncoder",
    "encode_batches",
    "pool_segments",
    "segment_frames",
    "fit_probe",
    "probe_layers",
    "stratified_split",
    "TINY_WARNING",
    "ProbeModel",
    "SkippedModel",
    "load_models",
    "load_recipe_models",
    "start_recipe",
    "tiny_checkpoint",
    "information_table",
    "models_table",
    "plot_robustness",
    "plot_tsne",
    "robustness_table",
    "Condition",
    "DistortionPlan",
    "RobustnessStats",
    "crop_frames",
    "distort",
    "evaluate_robustness",
    "frame_cosine",
    "normalised_mse",
    "rt60_bin",
    "rt60_bins",
    "summarise_layers",
]
