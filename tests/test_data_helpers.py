"""Signal helpers shared by the corpus, the training mixer and the test-set builder."""

import numpy as np
import pyroomacoustics as pra
import pytest
import torch

from speechbrain_sslse.audio import AudioError, read_audio, write_audio
from speechbrain_sslse.data.mixing import mix_at_snr, reverberate, snr_db
from speechbrain_sslse.data.rir import measure_t60


@pytest.mark.parametrize("snr", [-7.0, -5.0, 0.0, 5.0, 12.5, 20.0])
def test_mix_at_snr_hits_requested_snr(snr):
    g = torch.Generator().manual_seed(1)
    speech = torch.randn(32000, generator=g) * torch.linspace(0, 1, 32000)
    noise = torch.randn(32000, generator=g) * 3.0
    noisy, added = mix_at_snr(speech, noise, snr)
    assert abs(float(snr_db(speech, noisy - speech)) - snr) < 0.1
    assert torch.allclose(noisy - speech, added, atol=1e-5)


@pytest.mark.parametrize("t60", [0.3, 0.6, 1.0, 1.3])
def test_measure_t60_on_pyroomacoustics_room(t60):
    dims = [6.0, 5.0, 3.0]
    absorption, max_order = pra.inverse_sabine(t60, dims)
    room = pra.ShoeBox(
        dims, fs=16000, materials=pra.Material(absorption), max_order=max_order, use_rand_ism=True
    )
    room.add_source([2.0, 3.1, 1.5])
    room.add_microphone([4.0, 1.8, 1.2])
    room.compute_rir()
    rir = np.asarray(room.rir[0][0])
    assert abs(measure_t60(rir, 16000) - t60) / t60 < 0.2


def test_reverberate_aligns_target_with_direct_path():
    g = torch.Generator().manual_seed(0)
    speech = torch.randn(16000, generator=g)
    rir = torch.zeros(4000)
    rir[100] = 0.8
    rir[300:] = 0.01 * torch.randn(3700, generator=g)
    reverberant, target = reverberate(speech, rir)
    # Direct path at lag 0: the reverberant signal correlates best with the target at lag 0.
    xc = [float((reverberant[100 + k : 15000 + k] * target[100:15000]).sum()) for k in range(-5, 6)]
    assert int(np.argmax(xc)) == 5
    assert torch.allclose(target, 0.8 * speech)


# --- the library functions used for mixing, checked against the formulas they replaced ---------


def _gain_as_before(clean, noise, snr, eps=1e-10):
    """The noise gain mix_at_snr computed itself before it used torchaudio's add_noise."""
    p_clean, p_noise = clean.double().pow(2).mean(), noise.double().pow(2).mean()
    return torch.sqrt(p_clean / ((p_noise + eps) * 10.0 ** (snr / 10.0)))


def _fftconvolve_as_before(x, h):
    """The FFT convolution reverberate computed itself before it used torchaudio's fftconvolve."""
    n = x.shape[-1] + h.shape[-1] - 1
    nfft = 1 << (n - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(x.double(), nfft) * torch.fft.rfft(h.double(), nfft), nfft)
    return y[..., :n].to(x.dtype)


@pytest.mark.parametrize("snr", [-7.0, 0.0, 15.0])
def test_mix_at_snr_through_add_noise_equals_the_former_formula(snr):
    g = torch.Generator().manual_seed(2)
    speech = torch.randn(24000, generator=g) * torch.linspace(0, 1, 24000)
    noise = torch.randn(24000, generator=g) * 0.05
    noisy, added = mix_at_snr(speech, noise, snr)
    before = (noise.double() * _gain_as_before(speech, noise, snr)).float()
    torch.testing.assert_close(added, before, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(noisy, speech + before, rtol=1e-6, atol=2.5e-7)  # a float32 ulp
    assert torch.equal(noisy, speech + added)


def test_mix_at_snr_rules_add_noise_lacks():
    speech = torch.randn(1600)
    noisy, added = mix_at_snr(speech, torch.zeros(1600), 5.0)  # add_noise: NaN (0 / 0 energy)
    assert torch.equal(noisy, speech) and not added.any()
    noisy, added = mix_at_snr(torch.zeros(1600), torch.randn(1600), 5.0)  # silent speech: no noise
    assert not noisy.any() and not added.any()


def test_reverberate_through_fftconvolve_equals_the_former_convolution():
    from speechbrain_sslse.data.signals import _fftconvolve

    g = torch.Generator().manual_seed(3)
    for length, taps in ((16000, 4000), (16001, 7919), (3, 5)):
        x, h = torch.randn(length, generator=g), torch.randn(taps, generator=g)
        assert torch.equal(_fftconvolve(x, h), _fftconvolve_as_before(x, h))
    x, h = torch.randn(50, generator=g), torch.randn(9, generator=g)
    direct = torch.from_numpy(np.convolve(x.double().numpy(), h.double().numpy())).float()
    torch.testing.assert_close(_fftconvolve(x, h), direct, rtol=1e-5, atol=1e-6)


def test_speechbrain_reverberate_is_circular_so_ours_stays():
    """SpeechBrain's ``reverberate`` (and ``AddReverb``) convolves circularly over the input's
    length and rescales the level; ours is the linear convolution cut to the input's length at
    the RIR's gain, with a direct-path target: both put the direct path at lag 0, nothing else
    agrees, so the project keeps its own (speechbrain_sslse.data.mixing.reverberate)."""
    from speechbrain.processing.signal_processing import reverberate as sb_reverberate

    x = torch.zeros(8)
    x[-1] = 1.0  # an impulse at the end: its reverberant tail runs past the input
    rir = torch.tensor([0.0, 0.5, 0.0, 0.25])
    ours, _ = reverberate(x, rir)
    theirs = sb_reverberate(x, rir, rescale_amp=None)
    expected = torch.zeros(8)
    expected[-1] = 0.5
    torch.testing.assert_close(ours, expected, atol=1e-7, rtol=0)  # the tail past the end is cut
    assert float(theirs[1]) == pytest.approx(0.25)  # the tail wraps round to the start


def test_measure_t60_agrees_with_pyroomacoustics_measure_rt60(mini_corpus):
    """pyroomacoustics' ``measure_rt60`` fits the same Schroeder curve (T20 from -5 dB), but its
    range ends 20 dB below the first sample under -5 dB (ours: at -25 dB), it starts at sample 0
    (ours: at the direct path), and where the decay is too short it narrows the range, returns 0.0
    or fails with an IndexError (ours: a ValueError saying why). The mini corpus' RIRs are
    generated until *our* measure hits the target, so switching would change the corpus; the
    two agree to 0.01 %."""
    import json

    import soundfile as sf
    from pyroomacoustics.experimental import measure_rt60

    from speechbrain_sslse.data.rir import direct_path_index

    rirs = json.loads((mini_corpus / "corpus.json").read_text())["rirs"]
    assert rirs
    for record in rirs:
        h, sr = sf.read(str(mini_corpus / record["path"]), dtype="float64")
        ours = measure_t60(h, sr)
        assert ours == pytest.approx(record["measured_t60"], abs=5e-5)  # (rounded in corpus.json)
        assert measure_rt60(h[direct_path_index(h) :], fs=sr, decay_db=20) == pytest.approx(ours, rel=1e-4)
    impulse = np.r_[1.0, 0.1, np.zeros(100)]  # no decay to measure
    with pytest.raises(ValueError, match="cannot estimate T60"):
        measure_t60(impulse, 16000)
    assert measure_rt60(impulse, fs=16000, decay_db=20) == 0.0


def test_read_audio_errors_name_the_file(tmp_path):
    with pytest.raises(AudioError, match="missing.wav: file not found"):
        read_audio(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty.wav: file is empty"):
        read_audio(tmp_path / "empty.wav")
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(AudioError, match="text.wav: not a readable audio file"):
        read_audio(tmp_path / "text.wav")
    write_audio(tmp_path / "short.wav", torch.zeros(1600))
    with pytest.raises(AudioError, match="shorter than"):
        read_audio(tmp_path / "short.wav", min_duration=0.5)
    x = np.zeros(1600, dtype=np.float32)
    x[3] = np.nan
    import soundfile as sf

    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or Inf"):
        read_audio(tmp_path / "nan.wav")


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_read_audio_resamples_and_downmixes(tmp_path, sr):
    t = torch.arange(sr) / sr
    tone = 0.5 * torch.sin(2 * torch.pi * 440 * t)
    write_audio(tmp_path / "x.wav", torch.stack([tone, tone]), sr)
    wav = read_audio(tmp_path / "x.wav")
    assert wav.shape == (16000,)
    spec = torch.fft.rfft(wav).abs()
    assert abs(int(spec.argmax()) - 440) <= 1
