"""Metrics with the real models, offline: STOI, PESQ, DNSMOS (speechmos ONNX files),
NISQA v2 (../shared/assets weights), speaker similarity (Resemblyzer GE2E, SpeechBrain
ECAPA from a real-format folder) and the evaluator. Every test here runs with the
network blocked."""

import math
import socket

import numpy as np
import pytest
import torch

from speechbrain_sslse.audio import read_audio
from speechbrain_sslse.data.mixing import loop_to_length, mix_at_snr, snr_db
from speechbrain_sslse.metrics import (
    DNSMOS,
    NISQA,
    Evaluator,
    MetricUnavailable,
    SpeakerSimilarity,
    cosine,
    pesq_wb,
    stoi,
    write_ecapa_folder,
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a connection (a download) fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="module")
def mixtures(real_speech, assets):
    """Two real utterances (5 s: one DNSMOS window) and their -7 dB mixtures with two real noises."""
    out = []
    for k, (speech, noise) in enumerate(zip(real_speech[:2], ("noise1.wav", "noise4.wav"))):
        clean = read_audio(speech)[16000 : 16000 * 6]
        n = loop_to_length(read_audio(assets / "noise" / noise), clean.shape[0], offset=8000 * k)
        noisy, _ = mix_at_snr(clean, n, -7.0)
        assert abs(float(snr_db(clean, noisy - clean)) + 7.0) < 1e-3
        out.append((clean, noisy))
    return out


@pytest.fixture(scope="module")
def nisqa_model(assets):
    return NISQA(assets / "nisqa" / "nisqa.tar")


@pytest.fixture(scope="module")
def dnsmos_model():
    return DNSMOS()


def test_stoi_of_identical_real_speech_is_one(real_speech):
    x = read_audio(real_speech[3])[: 16000 * 5]
    assert stoi(x, x) == pytest.approx(1.0, abs=1e-6)
    assert pesq_wb(x, x) > 4.5


def test_clean_beats_its_minus_7_db_mixture_on_stoi_dnsmos_nisqa(mixtures, dnsmos_model, nisqa_model):
    for clean, noisy in mixtures:
        assert stoi(noisy, clean) < 0.9 < stoi(clean, clean)
        assert pesq_wb(noisy, clean) < 2.0
        d_clean, d_noisy = dnsmos_model(clean), dnsmos_model(noisy)
        assert d_clean["dnsmos_ovrl"] > d_noisy["dnsmos_ovrl"] + 0.5
        assert d_clean["dnsmos_bak"] > d_noisy["dnsmos_bak"]
        q_clean, q_noisy = nisqa_model(clean), nisqa_model(noisy)
        assert q_clean["nisqa_mos"] > q_noisy["nisqa_mos"] + 0.5
        for scores in (d_clean, d_noisy, q_clean, q_noisy):
            assert all(0.5 < v < 5.5 for v in scores.values()), scores


def test_dnsmos_matches_speechmos_reference_and_records_its_files(mixtures, dnsmos_model):
    import speechmos.dnsmos

    clean, _ = mixtures[0]
    ours = dnsmos_model(clean)
    ref = speechmos.dnsmos.run(clean.numpy(), 16000)
    assert ours["dnsmos_ovrl"] == pytest.approx(ref["ovrl_mos"], abs=1e-5)
    assert ours["dnsmos_sig"] == pytest.approx(ref["sig_mos"], abs=1e-5)
    info = dnsmos_model.info
    assert info["p835"]["file"] == "dnsmos_models/sig_bak_ovr.onnx"
    assert info["p808"]["file"] == "dnsmos_models/model_v8.onnx"
    assert len(info["p835"]["sha256"]) == 64


def test_nisqa_matches_torchmetrics_with_the_same_local_weights(mixtures, nisqa_model, assets, monkeypatch):
    import torchmetrics.functional.audio.nisqa as tm_nisqa

    # torchmetrics' own entry point, pointed at the folder holding the same nisqa.tar
    monkeypatch.setattr(tm_nisqa, "NISQA_DIR", str(assets / "nisqa"))
    tm_nisqa._load_nisqa_model.cache_clear()
    try:
        _, noisy = mixtures[1]
        ref = tm_nisqa.non_intrusive_speech_quality_assessment(noisy, 16000)
    finally:
        tm_nisqa._load_nisqa_model.cache_clear()
    ours = nisqa_model(noisy)
    assert list(ours.values()) == pytest.approx(ref.tolist(), abs=1e-4)


def test_nisqa_scores_long_files_in_parts(real_speech, nisqa_model):
    long = torch.cat([read_audio(p) for p in real_speech[:6]])[: 16000 * 75]  # 75 s > NISQA's 52 s limit
    scores = nisqa_model(long)
    assert all(math.isfinite(v) and 0.5 < v < 5.5 for v in scores.values())
    part = nisqa_model(long[: 16000 * 40])
    assert scores != part  # both parts count


def test_ge2e_same_speaker_above_different_speaker(real_speech):
    sim = SpeakerSimilarity("ge2e")
    halves = []
    for path in real_speech[10:16]:  # one utterance per speaker: its two halves are the same speaker
        x = read_audio(path)[: 16000 * 8]
        n = x.shape[0] // 2
        halves.append((sim.embed(x[:n]), sim.embed(x[n:])))
    same = [cosine(a, b) for a, b in halves]
    diff = [cosine(halves[i][0], halves[j][1]) for i in range(6) for j in range(6) if i != j]
    assert np.mean(same) > np.mean(diff) + 0.15
    assert sum(s > np.mean(diff) for s in same) >= 5
    assert halves[0][0].shape == (256,)


def test_ecapa_from_a_real_format_folder_through_encoder_classifier(tmp_path, real_speech):
    from speechbrain.inference.classifiers import EncoderClassifier

    folder = write_ecapa_folder(tmp_path / "ecapa", channels=32, lin_neurons=16, seed=1)
    # The folder is SpeechBrain's own format: the plain loader takes it as it is.
    plain = EncoderClassifier.from_hparams(source=str(folder), savedir=str(tmp_path / "save"))
    x = read_audio(real_speech[0])[: 16000 * 3]
    y = read_audio(real_speech[1])[: 16000 * 3]
    assert plain.encode_batch(x[None]).shape == (1, 1, 16)

    moved = tmp_path / "moved"
    folder.rename(moved)  # pretrained_path in the yaml is now stale: our loader points it at the folder
    sim = SpeakerSimilarity("ecapa", moved)
    assert isinstance(sim.model, EncoderClassifier)
    emb = sim.embed(x)
    assert emb.shape == (16,)
    np.testing.assert_allclose(emb, plain.encode_batch(x[None]).reshape(-1).double().numpy(), atol=1e-5)
    assert sim(x, x)["spk_cs"] == pytest.approx(1.0, abs=1e-6)
    assert sim(y, x)["spk_cs"] < 0.9999

    ev = Evaluator("spk", speaker_model=f"ecapa:{moved}")
    row = ev.evaluate(y, x)
    assert row["missing"] == "" and -1.0 <= row["spk_cs"] < 0.9999
    assert ev.info["spk"]["backend"] == "ecapa"


def test_missing_models_are_nan_with_a_reason_never_zero(tmp_path, real_speech):
    ev = Evaluator(
        "stoi,pesq,nisqa,spk", nisqa_path=tmp_path / "nope" / "nisqa.tar", speaker_model=f"ecapa:{tmp_path}"
    )
    assert set(ev.missing) == {"nisqa", "spk"}
    x = read_audio(real_speech[2])[: 16000 * 3]
    row = ev.evaluate(x, x)
    assert row["stoi"] == pytest.approx(1.0)
    assert all(math.isnan(row[c]) for c in ("nisqa_mos", "nisqa_loud", "spk_cs"))
    assert "nisqa: NISQA: weights not found at" in row["missing"] and "nope" in row["missing"]
    assert "spk: speaker similarity (ecapa)" in row["missing"]
    assert ev.info["nisqa"]["missing"].startswith("NISQA: weights not found")

    # a Git LFS pointer instead of the weights
    pointer = tmp_path / "nisqa.tar"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n")
    with pytest.raises(MetricUnavailable, match="not a NISQA v2 checkpoint"):
        NISQA(pointer)


def test_per_file_failures_are_nan_with_a_reason(real_speech):
    ev = Evaluator("stoi,pesq,dnsmos")
    silence = torch.zeros(16000 * 2)
    row = ev.evaluate(silence, silence)
    assert math.isnan(row["pesq"]) and math.isnan(row["stoi"]) and math.isnan(row["dnsmos_ovrl"])
    assert "pesq: PESQ: NoUtterancesError" in row["missing"]
    assert "stoi: STOI: the reference is silent" in row["missing"]
    assert "dnsmos: DNSMOS: the signal is empty or all zeros" in row["missing"]


def test_evaluator_scores_files_and_reports_timing(tmp_path, real_speech):
    from speechbrain_sslse.audio import write_audio

    x = read_audio(real_speech[5])[: 16000 * 3]
    write_audio(tmp_path / "ref.wav", x)
    noise = torch.randn(x.shape[0], generator=torch.Generator().manual_seed(0))
    write_audio(tmp_path / "est.wav", mix_at_snr(x, noise, 25.0)[0])
    ev = Evaluator("stoi,pesq,spk")
    rows = ev.evaluate_files([(tmp_path / "est.wav", tmp_path / "ref.wav")], progress=False)
    assert 0.9 < rows[0]["stoi"] < 1.0 and 2.0 < rows[0]["pesq"] < 4.64 and rows[0]["spk_cs"] > 0.9
    assert set(ev.real_time_factors()) == {"stoi", "pesq", "spk"}
