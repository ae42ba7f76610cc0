"""DNSMOS P.835 (SIG, BAK, OVRL) and P.808 MOS with the ONNX models of the ``speechmos`` wheel.

The models are Microsoft's DNS Challenge files (``DNSMOS/sig_bak_ovr.onnx`` and
``DNSMOS/model_v8.onnx``) as shipped inside the ``speechmos`` wheel: nothing is
downloaded. Scoring is speechmos's implementation of Microsoft's reference script
(9.01 s windows, 1 s hop, mean over windows; clips shorter than 9.01 s are looped),
with the non-personalised P.835 polynomial fit (``personalized=False``).

torchmetrics' ``deep_noise_suppression_mean_opinion_score`` computes the same but
only reads its models from a fixed ``~/.torchmetrics/DNSMOS`` folder and downloads
them when absent, so it is not used here.
"""

import importlib.util
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE
from ..files import sha256_file
from .base import MetricUnavailable, as_waveform


def speechmos_model_files(personalized=False):
    """Paths of the DNSMOS ONNX files inside the installed ``speechmos`` wheel.

    Arguments
    ---------
    personalized : bool
        Use the personalised P.835 model (``pdnsmos_models``) instead.

    Returns
    -------
    dict
        ``p835``: path of ``sig_bak_ovr.onnx``; ``p808``: path of ``model_v8.onnx``.

    Raises
    ------
    MetricUnavailable
        When ``speechmos`` is not installed or lacks the files.

    Example
    -------
    >>> sorted(p.name for p in speechmos_model_files().values())
    ['model_v8.onnx', 'sig_bak_ovr.onnx']
    """
    spec = importlib.util.find_spec("speechmos")
    if spec is None or spec.origin is None:
        raise MetricUnavailable("DNSMOS: the `speechmos` package is not installed (pip install speechmos)")
    root = Path(spec.origin).parent
    files = {
        "p835": root / ("pdnsmos_models" if personalized else "dnsmos_models") / "sig_bak_ovr.onnx",
        "p808": root / "dnsmos_models" / "model_v8.onnx",
    }
    for path in files.values():
        if not path.is_file():
            raise MetricUnavailable(f"DNSMOS: model file {path} is missing; reinstall `speechmos`")
    return files


def _scorer(files, num_threads=None):
    """speechmos's DNSMOS scorer on ONNX Runtime CPU sessions with the given threads."""
    import onnxruntime as ort
    from speechmos.dnsmos import DNSMOS as SpeechMOSDNSMOS

    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if num_threads:
        opts.intra_op_num_threads = int(num_threads)
        opts.inter_op_num_threads = 1

    class _Scorer(SpeechMOSDNSMOS):
        def __init__(self):  # speechmos's own __init__ opens sessions with default options
            self.primary_model_path = str(files["p835"])
            self.onnx_sess = ort.InferenceSession(
                str(files["p835"]), sess_options=opts, providers=["CPUExecutionProvider"]
            )
            self.p808_onnx_sess = ort.InferenceSession(
                str(files["p808"]), sess_options=opts, providers=["CPUExecutionProvider"]
            )

    return _Scorer()


class DNSMOS:
    """DNSMOS P.835 scorer (no reference needed).

    Arguments
    ---------
    personalized : bool
        Personalised DNSMOS (penalises interfering talkers). The paper's numbers
        use the standard model (False).
    model_files : dict or None
        ``{"p835": path, "p808": path}`` to use other local ONNX files; the
        ``speechmos`` files by default.
    num_threads : int or None
        ONNX Runtime intra-op threads (its default when None). Threads never
        spin-wait, so a busy machine is not slowed further.

    Example
    -------
    >>> import torch
    >>> dnsmos = DNSMOS()
    >>> scores = dnsmos(torch.randn(16000, generator=torch.Generator().manual_seed(0)) * 0.05)
    >>> sorted(scores)
    ['dnsmos_bak', 'dnsmos_ovrl', 'dnsmos_p808', 'dnsmos_sig']
    >>> 1.0 <= scores["dnsmos_ovrl"] <= 5.0
    True
    """

    COLUMNS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")

    def __init__(self, personalized=False, model_files=None, num_threads=None):
        files = model_files or speechmos_model_files(personalized)
        files = {k: Path(v) for k, v in files.items()}
        for path in files.values():
            if not path.is_file():
                raise MetricUnavailable(f"DNSMOS: model file {path} not found")
        self.personalized = personalized
        self.files = files
        self._model = _scorer(files, num_threads)

    @property
    def info(self):
        """Which model files score (name, path, sha256), for reports.

        Example
        -------
        >>> DNSMOS().info["p835"]["sha256"][:8]
        '269fbebd'
        """
        return {
            k: {"file": f"{p.parent.name}/{p.name}", "path": str(p), "sha256": sha256_file(p)}
            for k, p in self.files.items()
        }

    def __call__(self, wav):
        """Scores one waveform.

        Arguments
        ---------
        wav : torch.Tensor, numpy.ndarray or path
            ``[T]`` speech at 16 kHz (a file is read and resampled). Samples are
            clipped to [-1, 1], as writing the file would.

        Returns
        -------
        dict
            ``dnsmos_ovrl``, ``dnsmos_sig``, ``dnsmos_bak`` (P.835) and ``dnsmos_p808``.
        """
        audio = np.clip(as_waveform(wav), -1.0, 1.0)
        if audio.size == 0 or not np.any(audio):
            raise MetricUnavailable("DNSMOS: the signal is empty or all zeros")
        out = self._model(audio, SAMPLE_RATE, self.personalized)
        return {
            "dnsmos_ovrl": float(out["ovrl_mos"]),
            "dnsmos_sig": float(out["sig_mos"]),
            "dnsmos_bak": float(out["bak_mos"]),
            "dnsmos_p808": float(out["p808_mos"]),
        }
