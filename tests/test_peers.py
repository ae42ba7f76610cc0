"""The classic peers: RNNoise (aligned with its input) and spectral gating."""

import numpy as np
import torch

from speechbrain_sslse.audio import read_audio
from speechbrain_sslse.data.mixing import mix_at_snr, snr_db
from speechbrain_sslse.peers import rnnoise, rnnoise_delay, spectral_gating


def _noisy(real_speech):
    speech = read_audio(real_speech[3])[:48000]
    noise = torch.randn(48000, generator=torch.Generator().manual_seed(0))
    noisy, _ = mix_at_snr(speech, noise, 5.0)
    return speech, noisy


def test_rnnoise_output_is_aligned_with_its_input_and_denoises(real_speech):
    speech, noisy = _noisy(real_speech)
    out = rnnoise(noisy)
    assert out.shape == noisy.shape and torch.isfinite(out).all()
    lags = range(-100, 101)
    xcorr = [float((out[2000 + lag : 44000 + lag] * speech[2000:44000]).sum()) for lag in lags]
    assert list(lags)[int(np.argmax(xcorr))] == 0  # delay compensated
    assert rnnoise_delay() > 0  # RNNoise does delay its output
    assert float(snr_db(speech, out - speech)) > float(snr_db(speech, noisy - speech))


def test_spectral_gating_keeps_length_and_removes_noise(real_speech):
    speech = torch.cat([torch.zeros(8000), read_audio(real_speech[3])[:40000]])
    noise = 0.01 * torch.randn(48000, generator=torch.Generator().manual_seed(0))
    out = spectral_gating(speech + noise)
    assert out.shape == speech.shape
    # the noise alone (first 0.5 s) loses at least 10 dB; the speech stays
    assert float(snr_db(noise[:8000], out[:8000])) > 10.0
    cosine = torch.nn.functional.cosine_similarity(out[8000:], speech[8000:], dim=0)
    assert float(cosine) > 0.8
