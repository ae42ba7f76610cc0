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
