"""SSL probing (ICEIC 2024): robustness metrics, linear probes, and both recipes end to end.

Real components throughout: s3prl loads the tiny real-format checkpoints, the data
is the embedded mini corpus (and the real LibriSpeech excerpt), scikit-learn fits the
probes, and the recipes run as scripts.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from yaml_keys import undefined_keys, unused_keys

from speechbrain_sslse.audio import read_audio
from speechbrain_sslse.data.layouts import LayoutError, read_demand, read_valentini
from speechbrain_sslse.lobes.ssl_encoder import SSLEncoder
from speechbrain_sslse.probing import (
    DistortionPlan,
    LogMelEncoder,
    RobustnessStats,
    encode_batches,
    evaluate_robustness,
    fit_probe,
    load_models,
    pool_segments,
    segment_frames,
    summarise_layers,
)

ROOT = Path(__file__).resolve().parents[1]
ROBUSTNESS = ROOT / "recipes" / "Valentini-DEMAND" / "robustness"
INFORMATION = ROOT / "recipes" / "TIMIT" / "probing"
SNRS = [-7, 0, 5, 10, 15]


def _prepare_module():
    sys.path.insert(0, str(INFORMATION))
    try:
        import timit_prepare
    finally:
        sys.path.remove(str(INFORMATION))
    return timit_prepare


def _run_recipe(script, hparams, args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"}
    cmd = [sys.executable, str(script), str(hparams), *args, "--device=cpu", "--noprogressbar"]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- robustness


@pytest.fixture(scope="module")
def tera(tiny_tera_ckpt):
    return SSLEncoder("tera", ckpt=tiny_tera_ckpt).eval()


def test_identical_signal_gives_zero_nmse_and_unit_cosine(real_speech, tera):
    clean = [read_audio(p)[:24000] for p in real_speech[:3]]
    for encoder in (LogMelEncoder(), tera):
        stats = RobustnessStats(encoder.num_layers, encoder.hidden_size)
        for wav in clean:
            (_, a), (_, b) = encode_batches(encoder, [wav, wav.clone()], batch_size=1)
            stats.add_clean(a)
            stats.add("same", a, b)
        res = stats.results()["same"]
        assert res["nmse"].abs().max() < 1e-10, res["nmse"]
        assert (res["cosine"] - 1).abs().max() < 1e-6, res["cosine"]
        assert res["frames"] == 3 * (24000 // 160 + 1)


def test_reverberation_is_aligned_to_the_direct_path(real_speech, tera):
    """A pure delayed impulse as RIR leaves the embeddings unchanged: the direct path is aligned."""
    clean = [read_audio(p)[:24000] for p in real_speech[3:5]]
    delay = torch.zeros(2000)
    delay[700] = 0.3
    plan = DistortionPlan({}, {"delay": delay}, {"delay": "0.3-0.5"}, [], ["0.3-0.5"], ["reverb"])
    stats = evaluate_robustness(tera, clean, plan, progress=False)
    aligned = stats.results()[("reverb", "rt60", "0.3-0.5")]
    assert aligned["nmse"].max() < 1e-6 and aligned["cosine"].min() > 1 - 1e-5
    # The same impulse response without alignment (700 samples late) changes them clearly.
    shifted = RobustnessStats(tera.num_layers, tera.hidden_size)
    for wav in clean:
        late = torch.cat([torch.zeros(700), wav])[: wav.shape[0]] * 0.3
        (_, a), (_, b) = encode_batches(tera, [wav, late])
        shifted.add_clean(a)
        shifted.add("late", a, b)
    assert shifted.results()["late"]["nmse"].min() > 100 * aligned["nmse"].max() + 1e-3


def test_nmse_rises_as_snr_falls_on_mini_corpus(mini_corpus, tera):
    items = read_valentini(mini_corpus / "Valentini", "test")[:4]
    noises = {n["name"]: read_audio(n["path"]) for n in read_demand(mini_corpus / "DEMAND")}
    plan = DistortionPlan(noises, {}, {}, SNRS, [], ["noise"], seed=0)
    clean = [read_audio(item["path"])[: 3 * 16000] for item in items]
    for encoder in (LogMelEncoder(), tera):
        results = evaluate_robustness(encoder, clean, plan, progress=False).results()
        for layer in range(encoder.num_layers):
            nmse = [float(results[("noise", "snr", str(s))]["nmse"][layer]) for s in SNRS]
            cos = [float(results[("noise", "snr", str(s))]["cosine"][layer]) for s in SNRS]
            assert all(a > b for a, b in zip(nmse, nmse[1:])), (encoder.hop_length, layer, nmse)
            assert all(a < b for a, b in zip(cos, cos[1:])), (encoder.hop_length, layer, cos)
            assert nmse[-1] > 0


def test_robustness_resumes_from_its_saved_state(real_speech, tmp_path):
    clean = [read_audio(p)[:16000] for p in real_speech[:4]]
    noise = read_audio(real_speech[10])
    plan = DistortionPlan({"babble": noise}, {}, {}, [0, 10], [], ["noise"], seed=1)
    state = tmp_path / "state.pt"
    full = evaluate_robustness(LogMelEncoder(), clean, plan, state_path=state, save_every=2, progress=False)
    # A run interrupted after two utterances (its state saved there) finishes the rest only.
    partial = evaluate_robustness(
        LogMelEncoder(), clean[:2], plan, state_path=tmp_path / "p.pt", progress=False
    )
    calls = []

    class Counting(LogMelEncoder):
        def forward(self, wavs, wav_lens=None):
            calls.append(wavs.shape[0])
            return super().forward(wavs, wav_lens)

    resumed = evaluate_robustness(Counting(), clean, plan, state_path=tmp_path / "p.pt", progress=False)
    assert partial.done == 2 and resumed.done == 4 and sum(calls) == 2 * 3
    for key, res in full.results().items():
        assert torch.allclose(res["nmse"], resumed.results()[key]["nmse"])
    # Several encoders in one pass get the same distortions: the same numbers as alone.
    both = evaluate_robustness(
        {"a": LogMelEncoder(), "b": LogMelEncoder(n_mels=40)}, clean, plan, progress=False
    )
    for key, res in full.results().items():
        assert torch.allclose(res["nmse"], both["a"].results()[key]["nmse"])
    assert both["b"].results()[key]["dims"].tolist() == [40]
    # A finished state with another fingerprint is not reused.
    again = evaluate_robustness(
        LogMelEncoder(), clean, plan, state_path=state, fingerprint="other", progress=False
    )
    assert again.done == 4


def test_unavailable_models_are_skipped_with_the_reason(tmp_path, tiny_hubert_ckpt):
    entries = [
        {"name": "HuBERT", "upstream": "hubert", "ckpt": str(tiny_hubert_ckpt)},
        {"name": "WavLM", "upstream": "wavlm"},
        {"name": "wav2vec 2.0", "upstream": "wav2vec2", "ckpt": str(tmp_path / "missing.pt")},
    ]
    models, skipped = load_models(entries, baseline={"name": "log-mel", "upstream": "logmel"})
    assert [m.name for m in models] == ["log-mel", "HuBERT"]
    assert models[1].info == {"layers": 3, "dim": 32, "hop": 320, "s3prl": "hubert_local"}
    reasons = {s.name: s.reason for s in skipped}
    assert "no hub access" in reasons["WavLM"] and "missing.pt" in reasons["wav2vec 2.0"]
    with pytest.raises(ValueError, match="unknown s3prl upstream"):
        load_models([{"name": "x", "upstream": "not_a_model"}])


# --------------------------------------------------------------------------- information


@pytest.fixture(scope="module")
def manifests(mini_corpus, tmp_path_factory):
    prep = _prepare_module()
    folder = tmp_path_factory.mktemp("timit_manifests")
    paths = prep.prepare_timit(mini_corpus / "TIMIT", folder, splits=("TRAIN", "TEST"))
    return prep, folder, paths


def test_timit_prepare_writes_manifests_and_skips_when_up_to_date(manifests, mini_corpus, tmp_path):
    prep, folder, paths = manifests
    rows = {task: prep.read_manifest(path) for task, path in paths.items()}
    assert all(rows[task] for task in prep.TASKS)
    assert not {"h#", "pau", "epi"} & {r["label"] for r in rows["sa1_phoneme"]}
    assert {r["utterance"] for r in rows["sa1_phoneme"] + rows["sa1_word"]} == {"SA1"}
    assert all(r["utterance"].startswith("SX") for r in rows["sx_sentence"])
    assert [r["label"] for r in rows["sx_sentence"]] == [r["utterance"] for r in rows["sx_sentence"]]
    assert [r["label"] for r in rows["sx_speaker"]] == [r["speaker"] for r in rows["sx_speaker"]]
    assert all(0 <= r["start"] < r["end"] for task in rows for r in rows[task])
    assert sum(bool(r["word"]) for r in rows["sa1_phoneme"]) > 0.8 * len(rows["sa1_phoneme"])
    counts = json.loads((folder / "label_counts.json").read_text())
    assert sum(counts["sx_speaker"].values()) == len(rows["sx_speaker"])
    stamp = {p: p.stat().st_mtime_ns for p in paths.values()}
    prep.prepare_timit(mini_corpus / "TIMIT", folder, splits=("TRAIN", "TEST"))  # up to date: no rewrite
    assert {p: p.stat().st_mtime_ns for p in paths.values()} == stamp
    with pytest.raises(LayoutError, match=r"TIMIT at .*DEMAND.*no 'TRAIN' folder.*\n.*Expected layout"):
        prep.prepare_timit(mini_corpus / "DEMAND", tmp_path / "m")
    with pytest.raises(LayoutError, match="folder does not exist"):
        prep.prepare_timit(tmp_path / "nowhere", tmp_path / "m")


def test_segments_map_to_frames_at_each_model_stride(manifests, tera, tiny_hubert_ckpt):
    prep, _, paths = manifests
    words = prep.read_manifest(paths["sa1_word"])
    wav = read_audio(words[0]["wav"])
    segs = [(r["start"], r["end"]) for r in words if r["wav"] == words[0]["wav"]]
    hubert = SSLEncoder("hubert", ckpt=tiny_hubert_ckpt).eval()
    for encoder in (tera, hubert):
        ((_, hidden),) = encode_batches(encoder, [wav])
        pooled = pool_segments(hidden, segs, encoder.hop_length)
        assert pooled.shape == (len(segs), encoder.num_layers, encoder.hidden_size)
        first, last = segment_frames(*segs[0], encoder.hop_length, hidden.shape[1])
        assert torch.allclose(pooled[0], hidden[:, first:last].mean(1))
        assert first == segs[0][0] // encoder.hop_length


def test_logmel_baseline_separates_speakers_above_chance(manifests):
    prep, _, paths = manifests
    rows = prep.read_manifest(paths["sx_speaker"])
    wavs = [read_audio(r["wav"]) for r in rows]
    feats = np.stack(
        [
            hidden.mean(1).numpy()
            for _, hidden in sorted(encode_batches(LogMelEncoder(), wavs), key=lambda x: x[0])
        ]
    )
    labels = [r["label"] for r in rows]
    res = fit_probe(feats[:, -1], labels, max_iter=500, seed=0)
    n_speakers = len(set(labels))
    assert n_speakers >= 2 and res["n_test"] >= n_speakers
    assert res["heldout_acc"] > max(2.0 / n_speakers, res["chance"] + 0.2), res
    assert res["train_acc"] >= res["heldout_acc"]


def test_layer_summaries():
    assert summarise_layers([0.1, 0.5, 0.3], "last") == 0.3
    assert summarise_layers([0.1, 0.5, 0.3], "best_max") == 0.5
    assert abs(summarise_layers([0.1, 0.5, 0.3], "mean") - 0.3) < 1e-12
    assert summarise_layers([0.1, 0.5, 0.3], 12) == 0.3  # clipped to the model's layers
    with pytest.raises(ValueError, match="unknown layer summary"):
        summarise_layers([1.0], "median")


# --------------------------------------------------------------------------- recipes


def test_recipe_yaml_keys_are_all_used():
    pairs = [
        (ROBUSTNESS / "hparams" / "robustness.yaml", [ROBUSTNESS / "probe_robustness.py"]),
        (
            INFORMATION / "hparams" / "information.yaml",
            [INFORMATION / "probe_information.py", INFORMATION / "timit_prepare.py"],
        ),
    ]
    for yaml_path, scripts in pairs:
        assert unused_keys(yaml_path, scripts) == [], yaml_path
        assert undefined_keys(yaml_path, scripts) == [], yaml_path


SHIPPED = "TERA small (shipped)"  # the recipes' default list includes the package's small TERA


def test_robustness_recipe_end_to_end(mini_corpus, tiny_tera_ckpt, tiny_hubert_ckpt, tmp_path):
    out = tmp_path / "robustness"
    stdout = _run_recipe(
        ROBUSTNESS / "probe_robustness.py",
        ROBUSTNESS / "hparams" / "robustness.yaml",
        [
            f"--output_folder={out}",
            f"--valentini_folder={mini_corpus / 'Valentini'}",
            f"--demand_folder={mini_corpus / 'DEMAND'}",
            f"--mit_ir_folder={mini_corpus / 'MIT_IR'}",
            f"--tera_ckpt={tiny_tera_ckpt}",
            f"--hubert_ckpt={tiny_hubert_ckpt}",
            "--max_utterances=2",
            "--max_duration=2.0",
        ],
        tmp_path,
    )
    names = ["log-mel", "TERA", "HuBERT", SHIPPED]
    text = (out / "robustness_tables.md").read_text()
    for title in ("model x SNR", "model x RT60", "MSE ↓", "CS ↑", "skipped", "no hub access"):
        assert title in text, title
    assert "(tiny random)" not in text  # real data roots: no tiny checkpoint is invented
    assert "## Noise (DEMAND): model x SNR" in stdout
    per_layer = _csv(out / "robustness_per_layer.csv")
    layers = {(r["model"], int(r["layer"])) for r in per_layer}
    assert layers == (
        {("log-mel", 0)}
        | {(m, k) for m in ("TERA", "HuBERT") for k in range(3)}
        | {(SHIPPED, k) for k in range(4)}  # the shipped small TERA: 3 layers + input projection
    )
    summary = _csv(out / "robustness_summary.csv")
    assert {r["model"] for r in summary} == set(names)
    noise = {
        (r["model"], r["condition"]) for r in summary if r["family"] == "noise" and r["metric"] == "nmse"
    }
    assert noise == {(m, str(s)) for m in names for s in SNRS}
    bins = {r["bin"] for r in _csv(out / "rir_t60.csv") if r["bin"]}
    assert bins and {r["condition"] for r in summary if r["family"] == "reverb"} == bins
    for family, axis in (("noise", "snr"), ("reverb", "rt60"), ("both", "snr"), ("both", "rt60")):
        assert (out / f"robustness_{family}_{axis}.png").read_bytes()[:4] == b"\x89PNG"


def test_information_recipe_end_to_end(mini_corpus, tiny_tera_ckpt, tiny_hubert_ckpt, tmp_path):
    out = tmp_path / "information"
    args = [
        f"--output_folder={out}",
        f"--data_folder={mini_corpus / 'TIMIT'}",
        f"--tera_ckpt={tiny_tera_ckpt}",
        f"--hubert_ckpt={tiny_hubert_ckpt}",
        "--max_iter=300",
    ]
    recipe = (INFORMATION / "probe_information.py", INFORMATION / "hparams" / "information.yaml")
    _run_recipe(*recipe, args, tmp_path)
    text = (out / "information_table.md").read_text()
    for row in ("sa1 phoneme (", "sa1 word (", "sx sentence (", "sx speaker (", "held-out", "skipped"):
        assert row in text, row
    summary = _csv(out / "information_summary.csv")
    assert {(r["model"], r["task"]) for r in summary} == {
        (m, t)
        for m in ("log-mel", "TERA", "HuBERT", SHIPPED)
        for t in ("sa1_phoneme", "sa1_word", "sx_sentence", "sx_speaker")
    }
    assert all(0.0 <= float(r["train_acc"]) <= 1.0 for r in summary)
    per_layer = _csv(out / "information_per_layer.csv")
    assert len(per_layer) == 4 * (1 + 3 + 3 + 4)
    pngs = sorted(p.name for p in out.glob("tsne_*.png"))
    assert len(pngs) == 4 and all((out / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
    # A second run reuses every model's saved results.
    stdout = _run_recipe(*recipe, args, tmp_path)
    assert _csv(out / "information_summary.csv") == summary
    assert (
        "probing sa1_phoneme" not in stdout + (out / "log.txt").read_text().split("Beginning experiment!")[-1]
    )
