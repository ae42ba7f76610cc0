"""TERA pretraining: s3prl's alteration, the recipe (two steps, resume, s3prl export), the
project-wide speaker split, and the shipped small TERA."""

import csv
import importlib.util
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from speechbrain_sslse.audio import read_audio
from speechbrain_sslse.data.splits import SpeechFolderError, librispeech_excerpt_split, speaker_of
from speechbrain_sslse.tera import (
    MaskedAcousticModel,
    TeraFeatures,
    alter_frames,
    copy_input_loss,
    default_tera_checkpoint,
    export_tera,
    normalize_level,
    reconstruction_loss,
    tera_base_config,
    tera_tiny_config,
)

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "LibriSpeech" / "tera_pretraining"
TASK = {**tera_base_config()["task"], "position_encoding_size": 16}

# The project-wide held-out speakers (seed 0, 32 speakers): never to change.
HELD_OUT_SPEAKERS = [
    "103", "1088", "1447", "1502", "1553", "163", "1926", "2514", "2836", "2843", "2893",
    "3830", "3857", "3947", "4297", "4362", "4406", "460", "4680", "4859", "5104", "5456",
    "5750", "5789", "6064", "6385", "6476", "669", "7794", "8088", "8747", "911",
]  # fmt: skip


def _load_prepare():
    spec = importlib.util.spec_from_file_location("tera_prepare", RECIPE / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------
# Alteration (s3prl's own function)
# ---------------------------------------------------------------------------
def test_time_masking_proportion_and_untouched_frames():
    feats = torch.randn(16, 400, 80) + 3.0  # no frame sums to zero
    original = feats.clone()
    task = {**TASK, "mask_frequency": 0.0, "noise_proportion": 0.0}
    out = alter_frames(feats, feats, task, seed=3)
    assert out.kept.tolist() == list(range(16))
    masked_frames = out.mask_label.all(dim=-1)  # time masking labels whole frames
    assert torch.equal(masked_frames, out.mask_label.any(dim=-1))
    proportion = masked_frames.float().mean().item()
    # round(400 * 0.15 / 7) = 9 blocks of 7 frames, possibly overlapping: at most 63/400.
    assert 0.10 <= proportion <= 63 / 400 + 1e-6, proportion
    starts = masked_frames[:, 1:] & ~masked_frames[:, :-1]
    assert starts.sum(dim=1).max() <= 9
    unmasked = ~out.mask_label
    assert torch.equal(out.altered[unmasked], feats[unmasked])
    assert torch.equal(out.target, feats)
    # s3prl zeroes the masked frames of about 80 % of the items.
    zeroed = [(out.altered[i][masked_frames[i]] == 0).all().item() for i in range(16)]
    assert 8 <= sum(zeroed) <= 16
    assert torch.equal(feats, original)  # the caller's tensor is not modified


def test_frequency_masking_and_magnitude_alteration():
    feats = torch.randn(4, 120, 80) + 3.0
    task = {**TASK, "mask_proportion": 0.0, "mask_frequency": 0.2, "noise_proportion": 0.0}
    out = alter_frames(feats, feats, task, seed=1)
    for item in range(len(out.kept)):
        band = out.mask_label[item].all(dim=0)  # channels masked on every frame
        assert torch.equal(band, out.mask_label[item].any(dim=0))
        width = int(band.sum())
        assert 1 <= width <= int(0.2 * 80)
        channels = band.nonzero().flatten()
        assert channels.max() - channels.min() + 1 == width  # one contiguous band
        assert (out.altered[item][:, band] == 0).all()
        assert torch.equal(out.altered[item][:, ~band], feats[out.kept[item]][:, ~band])
    noisy = alter_frames(feats, feats, {**TASK, "mask_frequency": 0.0, "noise_proportion": 1.0}, seed=0)
    changed = noisy.altered != feats
    assert changed.float().mean() > 0.99  # Gaussian noise on all frames
    assert 0.1 < (noisy.altered - feats)[~noisy.mask_label].std() < 0.3  # std 0.2


def test_alteration_seed_is_reproducible_and_leaves_global_rng_alone():
    feats = torch.randn(2, 200, 80) + 3.0
    torch.manual_seed(7)
    random.seed(7)
    expected_torch, expected_py = torch.rand(1), random.random()
    torch.manual_seed(7)
    random.seed(7)
    first = alter_frames(feats, feats, TASK, seed=11)
    second = alter_frames(feats, feats, TASK, seed=11)
    assert torch.equal(torch.rand(1), expected_torch) and random.random() == expected_py
    assert torch.equal(first.mask_label, second.mask_label) and torch.equal(first.altered, second.altered)
    assert not torch.equal(alter_frames(feats, feats, TASK, seed=12).mask_label, first.mask_label)


def test_padding_frames_are_neither_masked_nor_attended():
    feats = torch.randn(2, 300, 80) + 3.0
    out = alter_frames(feats, feats, {**TASK, "noise_proportion": 0.0}, lengths=torch.tensor([300, 150]))
    assert out.attn_mask[1, :150].eq(1).all() and out.attn_mask[1, 150:].eq(0).all()
    assert not out.mask_label[1, 150:].any()
    assert out.target[1, 150:].eq(0).all()


def test_losses():
    target = torch.ones(1, 5, 3)
    mask = torch.zeros(1, 5, 3, dtype=torch.bool)
    mask[0, 2] = True
    altered = target.clone()
    altered[0, 2] = 0.0
    assert copy_input_loss(altered, target, mask).item() == pytest.approx(1.0)
    assert reconstruction_loss(target + 2, target, mask, "MSE").item() == pytest.approx(4.0)
    with pytest.raises(ValueError, match="nothing is masked"):
        reconstruction_loss(target, target, torch.zeros_like(mask))


# ---------------------------------------------------------------------------
# Features and export: what pretraining sees is what tera_local computes
# ---------------------------------------------------------------------------
def test_pretraining_features_and_export_match_tera_local(tmp_path, real_speech):
    from s3prl.pretrain.mockingjay.task import fast_position_encoding
    from s3prl.upstream.tera.hubconf import tera_local

    cfg = tera_tiny_config(hidden_size=32, num_layers=2)
    torch.manual_seed(0)
    model = MaskedAcousticModel(cfg["transformer"], cfg["audio"]).eval()
    path = export_tera(model, cfg, tmp_path / "states-7.ckpt", step=7)
    assert torch.load(path, weights_only=True)["Step"] == 7
    wav = read_audio(real_speech[0])[: 3 * 16000]
    reference = tera_local(str(path)).eval()([wav])["hidden_states"]
    features = TeraFeatures(cfg["audio"])
    inputs, _, frame_lens = features(normalize_level(wav, cfg["audio"]["target_level"]).unsqueeze(0))
    assert frame_lens.tolist() == [3 * 16000 // 160 + 1]
    with torch.no_grad():
        ours = model.hidden_states(inputs, fast_position_encoding(inputs.shape[1], 32))
    assert len(ours) == len(reference) == 3
    for mine, theirs in zip(ours, reference):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------
# Split and manifests
# ---------------------------------------------------------------------------
def test_project_wide_speaker_split(real_speech):
    train, test = librispeech_excerpt_split(real_speech[0].parent)
    assert (len(train), len(test)) == (219, 32)
    assert sorted(speaker_of(f) for f in test) == sorted(HELD_OUT_SPEAKERS)
    assert {speaker_of(f) for f in train}.isdisjoint(HELD_OUT_SPEAKERS)
    assert librispeech_excerpt_split(list(reversed(real_speech))) == (train, test)
    with pytest.raises(ValueError, match="cannot hold out"):
        librispeech_excerpt_split(real_speech[:3], num_test_speakers=3)


def test_prepare_writes_manifests_skips_when_up_to_date_and_explains_bad_folders(tmp_path, real_speech):
    prepare = _load_prepare()
    data = tmp_path / "speech"
    data.mkdir()
    for path in real_speech[:5]:
        (data / path.name).symlink_to(path)
    short = tmp_path / "extra" / "short.wav"
    short.parent.mkdir()
    from speechbrain_sslse.audio import write_audio

    write_audio(short, torch.zeros(8000))  # 0.5 s: left out
    write_audio(short.with_name("long.wav"), 0.1 * torch.randn(40000))
    outputs = prepare.prepare_tera_pretraining(data, tmp_path / "out", [short.parent], num_test_speakers=2)
    rows = {name: list(csv.DictReader(open(path))) for name, path in outputs.items()}
    assert len(rows["heldout"]) == 2 and len(rows["train"]) == 4
    assert {r["spk_id"] for r in rows["heldout"]}.isdisjoint(r["spk_id"] for r in rows["train"])
    assert "extra0/long" in {r["ID"] for r in rows["train"]}
    stamp = outputs["train"].stat().st_mtime_ns
    prepare.prepare_tera_pretraining(data, tmp_path / "out", [short.parent], num_test_speakers=2)
    assert outputs["train"].stat().st_mtime_ns == stamp
    with pytest.raises(SpeechFolderError, match="does not exist"):
        prepare.prepare_tera_pretraining(tmp_path / "missing", tmp_path / "out2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpeechFolderError, match="holds no audio"):
        prepare.prepare_tera_pretraining(data, tmp_path / "out3", [tmp_path / "empty"])


# ---------------------------------------------------------------------------
# The recipe: hparams consistency, two steps, s3prl export, resume
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tera_small", "tera_base"])
def test_every_hparams_key_is_used(name):
    from speechbrain.core import RunOptions
    from yaml_keys import undefined_keys, unused_keys

    scripts = [RECIPE / "train.py", RECIPE / "prepare.py"]
    hparams_file = RECIPE / "hparams" / f"{name}.yaml"
    # Keys read by hyperpyyaml itself (__set_seed) or by SpeechBrain's Brain (run options).
    consumed_elsewhere = {"__set_seed"} | set(RunOptions().as_dict())
    assert set(unused_keys(hparams_file, scripts)) <= consumed_elsewhere
    assert undefined_keys(hparams_file, scripts) == []


TINY = (
    "--transformer={input_dim: -1, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, "
    "intermediate_size: 64, hidden_act: gelu, hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1, "
    "initializer_range: 0.02, layer_norm_eps: 1.0e-12, share_layer: False, pre_layer_norm: False}"
)


def _run_recipe(data, out, epochs, extra_folders=()):
    command = [
        sys.executable,
        str(RECIPE / "train.py"),
        str(RECIPE / "hparams" / "tera_small.yaml"),
        f"--data_folder={data}",
        f"--output_folder={out}",
        f"--extra_folders=[{', '.join(str(f) for f in extra_folders)}]",
        "--num_test_speakers=2",
        f"--number_of_epochs={epochs}",
        "--steps_per_epoch=2",
        "--batch_size=2",
        "--log_interval=1",
        "--export_dtype=float32",
        "--noprogressbar",
        TINY,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=RECIPE, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def test_two_step_pretraining_exports_tera_local_checkpoint_and_resumes(tmp_path, real_speech, mini_corpus):
    from s3prl.upstream.tera.hubconf import tera_local

    data = tmp_path / "speech"
    data.mkdir()
    for path in real_speech[:6]:
        (data / path.name).symlink_to(path)
    out = tmp_path / "exp"
    extra = [mini_corpus / "DNS" / "clean"]  # the mini corpus's eSpeak speech, for training
    log = _run_recipe(data, out, epochs=1, extra_folders=extra)
    sources = {row["source"] for row in csv.DictReader(open(out / "train.csv"))}
    assert sources == {"data", "extra0"}
    ckpt = out / "s3prl" / "states-2.ckpt"
    assert f"s3prl TERA checkpoint: {ckpt}" in log
    states = torch.load(ckpt, weights_only=True)
    assert states["Step"] == 2 and states["Upstream_Config"]["transformer"]["hidden_size"] == 32

    upstream = tera_local(str(ckpt)).eval()
    lengths = [16000, 12345]
    hidden = upstream([torch.randn(n) for n in lengths])["hidden_states"]
    assert len(hidden) == 3  # input representation + 2 layers
    assert all(tuple(h.shape) == (2, max(lengths) // 160 + 1, 32) for h in hidden)
    single = upstream([torch.randn(12345)])["hidden_states"]
    assert tuple(single[-1].shape) == (1, 12345 // 160 + 1, 32)

    curve = list(csv.DictReader(open(out / "loss_curve.csv")))
    assert [(r["step"], r["split"]) for r in curve] == [
        ("0", "init"),
        ("1", "train"),
        ("2", "train"),
        ("2", "heldout"),
    ]
    assert float(curve[0]["copy_baseline"]) > 0

    log = _run_recipe(data, out, epochs=2, extra_folders=extra)  # resumes from step 2
    assert "Loading a checkpoint from" in log
    resumed = torch.load(out / "s3prl" / "states-4.ckpt", weights_only=True)
    assert resumed["Step"] == 4
    assert any(
        not torch.equal(resumed["Transformer"][k], states["Transformer"][k]) for k in states["Transformer"]
    )
    curve = list(csv.DictReader(open(out / "loss_curve.csv")))
    assert [r["step"] for r in curve if r["split"] == "train"] == ["1", "2", "3", "4"]
    assert [r["step"] for r in curve if r["split"] == "init"] == ["0"]  # not recomputed on resume
    assert float(curve[-1]["cpu_s"]) > float(curve[3]["cpu_s"])  # clock carried over


# ---------------------------------------------------------------------------
# The shipped small TERA
# ---------------------------------------------------------------------------
def test_shipped_checkpoint_loads_through_ssl_encoder():
    from speechbrain_sslse.lobes import SSLEncoder

    ckpt = default_tera_checkpoint()
    assert ckpt.stat().st_size < 8 * 2**20
    encoder = SSLEncoder("tera", ckpt=ckpt)
    assert (encoder.num_layers, encoder.hop_length) == (4, 160)
    hidden, frame_lens = encoder(torch.randn(2, 16000), torch.tensor([1.0, 0.5]))
    assert tuple(hidden.shape) == (4, 2, 101, encoder.hidden_size)
    assert frame_lens.tolist() == [101, 51]
    card = (ckpt.parent / "MODEL_CARD.md").read_text()
    step = torch.load(ckpt, weights_only=True)["Step"]
    assert f"{step}" in card and "held-out" in card


def test_shipped_checkpoint_reconstructs_held_out_speech(real_speech):
    """On held-out speakers, the shipped model beats both its initial weights and copying the input."""
    states = torch.load(default_tera_checkpoint(), weights_only=True)
    cfg = states["Upstream_Config"]
    trained = MaskedAcousticModel(cfg["transformer"], cfg["audio"]).eval()
    trained.transformer.load_state_dict({k: v.float() for k, v in states["Transformer"].items()})
    trained.spec_head.load_state_dict({k: v.float() for k, v in states["SpecHead"].items()})
    torch.manual_seed(0)
    untrained = MaskedAcousticModel(cfg["transformer"], cfg["audio"]).eval()
    _, test = librispeech_excerpt_split(real_speech[0].parent)
    features = TeraFeatures(cfg["audio"])
    clips = [read_audio(f) for f in test[:6]]
    clips = [clip[:48000] for clip in clips if len(clip) >= 48000][:4]
    wavs = torch.stack([normalize_level(clip, cfg["audio"]["target_level"]) for clip in clips])
    inputs, targets, lens = features(wavs)
    task = {**cfg["task"], "noise_proportion": 0.0}
    out = alter_frames(inputs, targets, task, lens, seed=0)
    with torch.no_grad():
        losses = {
            name: reconstruction_loss(
                m(out.altered, out.pos_enc, out.attn_mask), out.target, out.mask_label
            ).item()
            for name, m in (("trained", trained), ("untrained", untrained))
        }
    copy = copy_input_loss(out.altered, out.target, out.mask_label).item()
    assert losses["trained"] < 0.85 * min(copy, losses["untrained"]), (losses, copy)
