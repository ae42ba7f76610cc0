"""NISQA v2 (MOS, noisiness, discontinuity, coloration, loudness) from local weights.

The network and its feature extraction are torchmetrics' port of NISQA
(``torchmetrics.functional.audio.nisqa``); the weights (``nisqa.tar``, as published
by the NISQA project) are read from a path given here, never downloaded.
torchmetrics' own entry point only looks in a fixed ``~/.torchmetrics/NISQA``
folder and downloads the file when it is absent, so this module loads the
checkpoint itself and calls the same model code.

NISQA accepts at most ``ms_max_segments`` (1300) windows, about 52 s of audio.
Longer signals are split into equal consecutive parts of at most ``max_seconds``
(50 s by default); each part is scored and the scores are averaged weighted by
the parts' durations.
"""

import math
from pathlib import Path

import numpy as np
import torch

from ..audio import SAMPLE_RATE
from ..files import sha256_file
from .base import MetricUnavailable, as_waveform, default_nisqa_path

COLUMNS = ("nisqa_mos", "nisqa_nois", "nisqa_dis", "nisqa_col", "nisqa_loud")


def _load_checkpoint(path):
    path = Path(path).expanduser()
    if not path.is_file():
        raise MetricUnavailable(
            f"NISQA: weights not found at {path}. Pass the path of NISQA v2's nisqa.tar "
            "(--nisqa_path / NISQA(path=...)) or set SSLSE_NISQA"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        args = checkpoint["args"]
        state = checkpoint["model_state_dict"]
    except Exception as err:
        raise MetricUnavailable(
            f"NISQA: {path} is not a NISQA v2 checkpoint ({type(err).__name__}: {err}); "
            "use the published nisqa.tar (not a Git LFS pointer)"
        ) from err
    return args, state


class NISQA:
    """NISQA v2 quality scorer (no reference needed).

    Arguments
    ---------
    path : str, Path or None
        ``nisqa.tar``; by default ``$SSLSE_NISQA`` or ``../shared/assets/nisqa/nisqa.tar``.
    max_seconds : float
        Longest part scored at once (NISQA's limit is about 52 s).
    device : str
        Torch device.

    Raises
    ------
    MetricUnavailable
        When the weights are absent or unreadable (the message names the path).

    Example
    -------
    >>> import torch
    >>> nisqa = NISQA()  # the default weights path must exist
    >>> scores = nisqa(torch.randn(16000, generator=torch.Generator().manual_seed(0)) * 0.05)
    >>> list(scores)
    ['nisqa_mos', 'nisqa_nois', 'nisqa_dis', 'nisqa_col', 'nisqa_loud']
    >>> NISQA("/no/such/nisqa.tar")
    Traceback (most recent call last):
    ...
    speechbrain_sslse.metrics.base.MetricUnavailable: NISQA: weights not found at /no/such/nisqa.tar...
    """

    COLUMNS = COLUMNS

    def __init__(self, path=None, max_seconds=50.0, device="cpu"):
        from torchmetrics.functional.audio.nisqa import _NISQADIM

        self.path = Path(path if path is not None else default_nisqa_path()).expanduser()
        self.args, state = _load_checkpoint(self.path)
        self.model = _NISQADIM(self.args)
        self.model.load_state_dict(state, strict=True)
        self.model.eval().to(device)
        self.device = device
        a = self.args
        hop = a["ms_hop_length"]
        limit = (a["ms_max_segments"] * a["ms_seg_hop_length"] + a["ms_seg_length"] - 2) * hop
        self.max_seconds = min(float(max_seconds), limit - 1.0)
        self.min_seconds = (a["ms_seg_length"] + 1) * hop

    @property
    def info(self):
        """Path and sha256 of the weights, for reports.

        Example
        -------
        >>> len(NISQA().info["sha256"])
        64
        """
        return {"path": str(self.path), "sha256": sha256_file(self.path)}

    @torch.no_grad()
    def _score(self, wav):
        from torchmetrics.functional.audio.nisqa import _get_librosa_melspec, _segment_specs

        spec = _get_librosa_melspec(wav[None, :], SAMPLE_RATE, self.args)
        # Pad to the windows this signal needs, not to the model's maximum (1300): the padded
        # windows are masked out, so the scores are the same, three times faster.
        args = dict(self.args)
        seg, hop = args["ms_seg_length"], args["ms_seg_hop_length"]
        args["ms_max_segments"] = min(args["ms_max_segments"], math.ceil((spec.shape[2] - seg + 1) / hop))
        x, n_wins = _segment_specs(torch.from_numpy(spec), args)
        out = self.model(x.to(self.device), n_wins.expand(x.shape[0]).cpu())
        return out[0].cpu().double().numpy()

    def __call__(self, wav):
        """Scores one waveform.

        Arguments
        ---------
        wav : torch.Tensor, numpy.ndarray or path
            ``[T]`` speech at 16 kHz (a file is read and resampled). Any length of
            at least ~0.16 s; long signals are scored in parts.

        Returns
        -------
        dict
            ``nisqa_mos``, ``nisqa_nois``, ``nisqa_dis``, ``nisqa_col``, ``nisqa_loud``.
        """
        audio = as_waveform(wav)
        duration = audio.size / SAMPLE_RATE
        if duration < self.min_seconds:
            raise MetricUnavailable(f"NISQA: signal of {duration:.3f} s is shorter than {self.min_seconds} s")
        n_parts = max(1, math.ceil(duration / self.max_seconds))
        bounds = np.linspace(0, audio.size, n_parts + 1).round().astype(int)
        scores, weights = [], []
        for a, b in zip(bounds[:-1], bounds[1:]):
            scores.append(self._score(audio[a:b]))
            weights.append(b - a)
        mean = np.average(np.stack(scores), axis=0, weights=np.asarray(weights, dtype=np.float64))
        return {name: float(v) for name, v in zip(COLUMNS, mean)}
