"""The DNS enhancement recipe: preparation, on-the-fly mixing, resume (debug runs: tests/recipes/DNS.csv)."""

import csv
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hyperpyyaml import load_hyperpyyaml
from recipe_helpers import DNS_RECIPE as RECIPE
from recipe_helpers import load_recipe_module, setting_overrides, tiny_overrides
from yaml_keys import unused_keys

from speechbrain_sslse.audio import read_audio, write_audio
from speechbrain_sslse.data.layouts import LayoutError
from speechbrain_sslse.data.mixing import OnTheFlyMixer, snr_db
from speechbrain_sslse.data.rir import measure_t60
from speechbrain_sslse.files import write_csv

HPARAMS = sorted((RECIPE / "hparams").glob("*.yaml"))
# The yaml entries each ablation changes in proposed.yaml (besides experiment_name), and one line of each.
ABLATIONS = {
    "baseline": {"fusion": "fusion: !new:speechbrain_sslse.lobes.SSLOnlyFusion"},
    "magnitude": {"noisy_spectrum": "    kind: magnitude"},
    "last_layer": {"layer_combination": "    last_only: True"},
    "additive": {"fusion": "fusion: !new:speechbrain_sslse.lobes.AdditiveFusion"},
    "film": {"fusion": "fusion: !new:speechbrain_sslse.lobes.FiLMFusion"},
    "film_by_spectrum": {"fusion": "fusion: !new:speechbrain_sslse.lobes.FiLMBySpectrumFusion"},
    "attention_by_spectrum": {
        "fusion": "fusion: !new:speechbrain_sslse.lobes.CrossAttentionBySpectrumFusion"
    },
    "clean_embedding": {"clean_embedding": "clean_embedding: True", "model_folder": "model_folder: null"},
}
NO_ATTENTION = ("baseline", "additive", "film", "film_by_spectrum")  # their fusion has no attention sizes
# Keys SpeechBrain's Brain reads from the hparams itself (its run options).
BRAIN_RUN_OPTIONS = {"max_grad_norm", "ckpt_interval_minutes"}


@pytest.fixture(scope="module")
def recipe():
    return load_recipe_module()


@pytest.fixture(scope="module")
def dns_prepare(recipe):
    return sys.modules["dns_prepare"]


@pytest.fixture(scope="module")
def manifests(mini_corpus, dns_prepare, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dns_manifests")
    dns_prepare.prepare_dns(mini_corpus / "DNS", folder, valid_fraction=0.2)
    return folder


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --- preparation --------------------------------------------------------------------------


def test_prepare_writes_manifests_split_by_speaker(manifests, mini_corpus):
    train, valid = _rows(manifests / "train.csv"), _rows(manifests / "valid.csv")
    assert train and valid
    assert not {r["spk_id"] for r in train} & {r["spk_id"] for r in valid}
    assert all(float(r["duration"]) >= 1.0 and Path(r["wav"]).is_file() for r in train + valid)
    rirs = _rows(manifests / "rir.csv")
    assert rirs and all(0.3 <= float(r["t60"]) <= 1.3 for r in rirs)
    assert {r["t60_source"] for r in rirs} == {"table"}  # the mini corpus has RIR_table_simple.csv
    report = json.loads((manifests / "prepare_report.json").read_text())
    assert report["counts"]["noises"] == len(_rows(manifests / "noise.csv")) > 0


def test_prepare_skips_when_up_to_date_and_redoes_on_new_options(manifests, mini_corpus, dns_prepare):
    before = (manifests / "train.csv").stat().st_mtime_ns
    dns_prepare.prepare_dns(mini_corpus / "DNS", manifests, valid_fraction=0.2)
    assert (manifests / "train.csv").stat().st_mtime_ns == before


def test_prepare_measures_t60_without_table_and_skips_bad_files(tmp_path, mini_corpus, dns_prepare):
    root = tmp_path / "DNS"
    for part in ("clean", "noise", "impulse_responses"):
        src = mini_corpus / "DNS" / part
        for f in sorted(src.rglob("*.wav"))[:6]:
            dst = root / part / f.relative_to(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(f.read_bytes())
    (root / "clean" / "broken").mkdir()
    (root / "clean" / "broken" / "corrupt.wav").write_bytes(b"RIFF....not audio")
    write_audio(root / "clean" / "broken" / "short.wav", torch.zeros(1600))
    report = dns_prepare.prepare_dns(root, tmp_path / "m", valid_fraction=0.2)
    rirs = _rows(tmp_path / "m" / "rir.csv")
    assert rirs and {r["t60_source"] for r in rirs} == {"measured"}
    for row in rirs:
        assert abs(measure_t60(read_audio(row["wav"]), 16000) - float(row["t60"])) < 1e-3
    skipped = {Path(s["file"]).name for s in report["skipped"]}
    assert {"corrupt.wav", "short.wav"} <= skipped


def test_train_min_bak_filters_training_speakers_only(manifests, mini_corpus, dns_prepare, tmp_path):
    """Low-BAK training utterances leave train.csv; valid.csv stays the unfiltered one."""
    root = tmp_path / "DNS"
    root.mkdir()
    for part in ("clean", "noise", "impulse_responses", "acoustic_params"):
        (root / part).symlink_to((mini_corpus / "DNS" / part).resolve())
    with pytest.raises(FileNotFoundError, match="build_cpu_data.py --score_dnsmos"):
        dns_prepare.prepare_dns(root, tmp_path / "m", valid_fraction=0.2, train_min_bak=3.0)
    train, valid = _rows(manifests / "train.csv"), _rows(manifests / "valid.csv")
    corpus = (mini_corpus / "DNS").resolve()

    def rel(row):
        return Path(row["wav"]).resolve().relative_to(corpus).as_posix()

    # made-up scores: every third training utterance is "noisy", every validation one too
    scores = {rel(r): 4.0 for r in train} | {rel(r): 2.0 for r in train[::3]} | {rel(r): 1.0 for r in valid}
    write_csv(
        root / "clean_dnsmos.csv",
        [{"wav": k, "dnsmos_bak": v} for k, v in scores.items()],
        ["wav", "dnsmos_bak"],
    )
    report = dns_prepare.prepare_dns(root, tmp_path / "m", valid_fraction=0.2, train_min_bak=3.0)
    kept, kept_valid = _rows(tmp_path / "m" / "train.csv"), _rows(tmp_path / "m" / "valid.csv")
    assert sorted(r["ID"] for r in kept) == sorted(r["ID"] for r in train[1::3] + train[2::3])
    assert sorted(r["ID"] for r in kept_valid) == sorted(r["ID"] for r in valid)
    assert report["counts"]["train_low_bak_left_out"] == len(train[::3])
    assert report["options"]["train_min_bak"] == 3.0


def test_prepare_names_the_expected_layout(tmp_path, dns_prepare):
    with pytest.raises(LayoutError, match="Expected layout: DNS Challenge 2021 root"):
        dns_prepare.prepare_dns(tmp_path / "nope", tmp_path / "m")
    (tmp_path / "wrong" / "clean").mkdir(parents=True)
    with pytest.raises(LayoutError, match="'clean' holds no .wav files"):
        dns_prepare.prepare_dns(tmp_path / "wrong", tmp_path / "m")


# --- on-the-fly mixing --------------------------------------------------------------------


def test_mixtures_have_the_requested_snr_and_t60(manifests):
    noises = [{"wav": r["wav"], "duration": float(r["duration"])} for r in _rows(manifests / "noise.csv")]
    rirs = [{"wav": r["wav"], "t60": float(r["t60"]), "channel": 0} for r in _rows(manifests / "rir.csv")]
    mixer = OnTheFlyMixer(noises, rirs, segment_seconds=1.0, rir_probability=0.5)
    rng = np.random.default_rng(0)
    train = _rows(manifests / "train.csv")
    reverberated = 0
    for i in range(24):
        row = train[i % len(train)]
        mix = mixer.mix(row["wav"], float(row["duration"]), rng)
        assert mix["noisy"].shape == mix["target"].shape == (16000,)
        assert -5.0 <= mix["snr"] <= 20.0
        measured = float(snr_db(mix["speech"], mix["noisy"] - mix["speech"]))
        assert abs(measured - mix["snr"]) < 0.5, (measured, mix["snr"])
        assert float(mix["noisy"].abs().max()) <= 0.99 + 1e-6
        if mix["rir"] is not None:
            reverberated += 1
            assert 0.3 <= mix["t60"] <= 1.3
            assert 0.3 * 0.85 <= measure_t60(read_audio(mix["rir"]), 16000) <= 1.3 * 1.15
    assert 0 < reverberated < 24
    again = OnTheFlyMixer(noises, rirs, segment_seconds=1.0, rir_probability=0.5)
    first = again.mix(train[0]["wav"], float(train[0]["duration"]), np.random.default_rng(7))
    second = mixer.mix(train[0]["wav"], float(train[0]["duration"]), np.random.default_rng(7))
    assert torch.equal(first["noisy"], second["noisy"])  # a seeded generator fixes the mixture


def test_babble_sums_other_training_utterances_at_the_requested_snr(manifests):
    noises = [{"wav": r["wav"], "duration": float(r["duration"])} for r in _rows(manifests / "noise.csv")]
    train = _rows(manifests / "train.csv")
    talkers = [{"wav": r["wav"], "duration": float(r["duration"])} for r in train]
    babbler = OnTheFlyMixer(segment_seconds=1.0, rir_probability=0.0, babble_probability=1.0)
    babbler.use_files(noises, [], babble_speech=talkers)
    row = train[0]
    for seed in range(4):
        mix = babbler.mix(row["wav"], float(row["duration"]), np.random.default_rng(seed))
        assert re.fullmatch(r"babble:[3-7]", mix["noise"]), mix["noise"]
        measured = float(snr_db(mix["speech"], mix["noisy"] - mix["speech"]))
        assert abs(measured - mix["snr"]) < 0.5, (measured, mix["snr"])
    # babble=False (validation) draws exactly the mixture of a mixer without babble.
    plain = OnTheFlyMixer(noises, [], segment_seconds=1.0, rir_probability=0.0)
    off = babbler.mix(row["wav"], float(row["duration"]), np.random.default_rng(5), babble=False)
    assert torch.equal(
        off["noisy"], plain.mix(row["wav"], float(row["duration"]), np.random.default_rng(5))["noisy"]
    )
    with pytest.raises(ValueError, match="babble_speech"):
        OnTheFlyMixer(rir_probability=0.0, babble_probability=0.3).use_files(noises, [])


def test_unusable_noise_is_dropped_and_reported(tmp_path, manifests):
    bad = tmp_path / "bad_noise.wav"
    bad.write_bytes(b"garbage")
    good = _rows(manifests / "noise.csv")[0]
    reported = []
    mixer = OnTheFlyMixer(
        [{"wav": str(bad), "duration": 1.0}, {"wav": good["wav"], "duration": float(good["duration"])}],
        [],
        rir_probability=0.0,
        on_bad_file=lambda path, reason: reported.append(path),
    )
    row = _rows(manifests / "train.csv")[0]
    for seed in range(6):
        assert (
            mixer.mix(row["wav"], float(row["duration"]), np.random.default_rng(seed))["noise"] == good["wav"]
        )
    assert reported == [str(bad)]


# --- hparams files ------------------------------------------------------------------------


@pytest.mark.parametrize("hparams_file", HPARAMS, ids=lambda p: p.stem)
def test_every_yaml_key_is_used(hparams_file):
    packaging = sorted((RECIPE.parents[2] / "speechbrain_sslse" / "packaging").glob("*.py"))
    recipe_modules = ("train", "data_pipeline", "validation", "run_setup", "dns_prepare")
    scripts = [*(RECIPE / f"{name}.py" for name in recipe_modules), *packaging]
    unused = set(unused_keys(hparams_file, scripts))
    assert unused - BRAIN_RUN_OPTIONS - {"__set_seed"} == set()


def yaml_entries(path):
    """Top-level entries of a yaml file: key -> its text (its line and the indented lines below it)."""
    entries, key = {}, None
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z_]\w*):", line)
        if match:
            key = match.group(1)
            entries[key] = [line]
        elif key and line.startswith(" "):
            entries[key].append(line)
        elif not line.startswith(" "):
            key = None  # comments and blank lines at the top level end an entry
    return {k: "\n".join(v) for k, v in entries.items()}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_ablation_differs_from_proposed_only_where_the_paper_does(name):
    proposed = yaml_entries(RECIPE / "hparams" / "proposed.yaml")
    ablation = yaml_entries(RECIPE / "hparams" / f"{name}.yaml")
    changed = {k for k in proposed.keys() | ablation.keys() if proposed.get(k) != ablation.get(k)}
    expected = set(ABLATIONS[name]) | {"experiment_name"}
    if name in NO_ATTENTION:  # no attention: its sizes go too
        expected |= {"num_heads", "ffn_dim"}
        assert "num_heads" not in ablation
    assert changed == expected
    for key, line in ABLATIONS[name].items():
        assert line in ablation[key].splitlines()
    assert ablation["experiment_name"] == f"experiment_name: {name}"


# The values of the paper's and the shipped setting (the former schedules.paper and schedules.shipped).
SETTINGS = {
    "paper": {
        "number_of_epochs": 250, "steps_per_epoch": 2000, "batch_size": 16, "segment_seconds": 1.0,
        "num_workers": 8, "generator_preset": "v1", "generator_channels": None, "discriminator_width": 1.0,
        "adversarial_start_step": 0, "d_model": 256, "num_heads": 4, "ffn_dim": 1024,
        "ckpt_interval_minutes": 30, "num_valid_mixtures": 100, "feat_match_reduction": "sum",
        "feat_match_loss_weight": 2, "require_ssl_ckpt": True,
    },
    "shipped": {
        "number_of_epochs": 20, "steps_per_epoch": 200, "d_model": 192, "sample_by_duration": True,
        "num_heads": 4, "ffn_dim": 768, "adversarial_start_step": 1500, "ckpt_interval_minutes": 10,
        "num_valid_mixtures": 32,
    },
}  # fmt: skip


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("hparams_file", [p for p in HPARAMS if p.stem != "mask_head"], ids=lambda p: p.stem)
def test_override_files_give_every_hparams_file_its_setting(hparams_file, setting):
    run_opts = {}
    overrides = setting_overrides(hparams_file, setting, "--batch_size=3", run_opts=run_opts)
    assert overrides.pop("batch_size") == 3  # typed after the file's values: it wins
    entries = yaml_entries(hparams_file)
    assert set(overrides) <= set(entries)  # hyperpyyaml refuses an override of a key the yaml lacks
    expected = {k: v for k, v in SETTINGS[setting].items() if k not in ("num_heads", "ffn_dim", "batch_size")}
    # ckpt_interval_minutes is one of SpeechBrain's run options: its parser keeps it, the Brain reads it.
    assert run_opts["ckpt_interval_minutes"] == expected.pop("ckpt_interval_minutes")
    assert overrides == expected
    if "num_heads" in entries:  # the attention sizes follow d_model: 4 heads, 4 x d_model
        assert entries["num_heads"] == "num_heads: 4"
        assert entries["ffn_dim"].startswith("ffn_dim: !ref <d_model> * 4")


def test_paper_setting_builds_the_paper_sizes(tiny_tera_ckpt):
    overrides = setting_overrides(
        RECIPE / "hparams" / "proposed.yaml", "paper", f"--ssl_ckpt={tiny_tera_ckpt}"
    )
    with open(RECIPE / "hparams" / "proposed.yaml") as f:
        hparams = load_hyperpyyaml(f, overrides)
    generator = hparams["waveform_generator"]
    assert hparams["generator"].generator is generator
    assert generator.conv_pre.conv.out_channels == 512  # HiFi-GAN V1
    assert sum(p.numel() for p in hparams["discriminator"].parameters()) == 70724591  # SpeechBrain's MPD+MSD
    assert hparams["batch_size"] == 16 and hparams["generator"].fusion.d_model == 256
    assert hparams["adversarial_start_step"] == 0 and hparams["segment_seconds"] == 1.0
    run_options = {"ckpt_interval_minutes"}  # SpeechBrain's run options, tested above
    assert {k: hparams[k] for k in SETTINGS["paper"].keys() - run_options} == {
        k: v for k, v in SETTINGS["paper"].items() if k not in run_options
    }  # ffn_dim: 4 x 256


# --- training -----------------------------------------------------------------------------


# The debug run of every hparams file is a row of tests/recipes/DNS.csv (tests/test_recipe_rows.py).


def test_run_resumes_from_its_checkpoint(recipe, tmp_path, manifests, mini_corpus, tiny_tera_ckpt):
    hparams_file = RECIPE / "hparams" / "proposed.yaml"
    argv = tiny_overrides(hparams_file, tmp_path / "proposed", manifests, mini_corpus / "DNS", tiny_tera_ckpt)
    first = recipe.main(argv)
    weights = {k: v.clone() for k, v in first.modules.generator.state_dict().items()}
    resumed = recipe.main(
        [a if not a.startswith("--number_of_epochs") else "--number_of_epochs=2" for a in argv]
    )
    assert resumed.hparams.epoch_counter.current == 2
    assert resumed.optimizer_step == 4  # two recovered steps, then one more epoch of two
    assert resumed.scheduler_g.last_epoch == 2 and resumed.scheduler_d.last_epoch == 2
    changed = [k for k, v in resumed.modules.generator.state_dict().items() if not torch.equal(v, weights[k])]
    assert changed  # it trained on from the recovered weights
    assert len(_rows(tmp_path / "proposed" / "layer_weights.csv")) == 2


def _draws(prefix):
    path = Path(f"{prefix}.rank0")
    return [tuple(line.split("\t")) for line in path.read_text().splitlines()]


def test_resumed_run_draws_the_mixtures_of_an_uninterrupted_one(
    recipe, tmp_path, manifests, mini_corpus, tiny_tera_ckpt, monkeypatch
):
    """Two epochs in one go, and one epoch then a resumed second: the same mixtures, in the same order."""
    runs = {}
    for name, epochs in (("whole", [2]), ("resumed", [1, 2])):
        monkeypatch.setenv("SSLSE_SAMPLE_LOG", str(tmp_path / f"{name}_draws"))
        for number in epochs:
            argv = tiny_overrides(
                RECIPE / "hparams" / "proposed.yaml", tmp_path / name, manifests, mini_corpus / "DNS",
                tiny_tera_ckpt, number_of_epochs=number, adversarial_start_step=3,
            )  # fmt: skip
            runs[name] = recipe.main(argv)
    whole, resumed = _draws(tmp_path / "whole_draws"), _draws(tmp_path / "resumed_draws")
    assert len(whole) == 2 * 2 * 2  # epochs x steps x batch
    assert resumed == whole  # file, SNR and noise of every mixture
    first, second = whole[:4], whole[4:]
    assert [snr for _, snr, _ in first] != [snr for _, snr, _ in second]  # no epoch replays another
    # What resuming needs is what the checkpoints held before: no recoverable was added.
    checkpoint = max((tmp_path / "resumed" / "save").glob("CKPT+*"))
    assert {p.name for p in checkpoint.iterdir()} == {
        "CKPT.yaml", "generator.ckpt", "discriminator.ckpt", "optimizer_g.ckpt", "optimizer_d.ckpt",
        "scheduler_g.ckpt", "scheduler_d.ckpt", "counter.ckpt", "brain.ckpt", "dataloader-TRAIN.ckpt",
    }  # fmt: skip
    # The learning rates held through the warm-up (steps 1-2, epoch 1) and decayed after epoch 2.
    for brain in runs.values():
        assert brain.scheduler_g.last_epoch == brain.scheduler_d.last_epoch == 1
        assert brain.optimizer_g.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.999)
    log = (tmp_path / "whole" / "log.txt").read_text()
    assert "SSL encoder: s3prl tera_local, 3 hidden states, checkpoint" in log


def test_gradient_accumulation_steps_the_optimizers_once_per_factor_batches(
    recipe, tmp_path, manifests, mini_corpus, tiny_tera_ckpt
):
    argv = tiny_overrides(
        RECIPE / "hparams" / "proposed.yaml", tmp_path / "run", manifests, mini_corpus / "DNS",
        tiny_tera_ckpt, steps_per_epoch=4, grad_accumulation_factor=2, model_folder="null",
        valid_dnsmos=False,
    )  # fmt: skip
    brain = recipe.main(argv)
    assert brain.optimizer_step == 2  # 4 batches, factor 2
    # Step 1 (batches 1-2): mel loss alone; step 2 (batches 3-4): the discriminator too.
    g_steps = {int(s["step"]) for s in brain.optimizer_g.state_dict()["state"].values()}
    d_steps = {int(s["step"]) for s in brain.optimizer_d.state_dict()["state"].values()}
    assert g_steps == {2} and d_steps == {1}
    log = (tmp_path / "run" / "train_log.txt").read_text()
    assert "train G_grad_norm:" in log and "train D_grad_norm_max:" in log
    assert "train G_grad_norm_clipped:" in log  # the fraction of steps max_grad_norm clipped
    # The discriminator's mean scores of real and generated speech, and their gap (a blind one: ~0).
    assert "train D_score_real:" in log and "train D_score_fake:" in log and "train D_score_gap:" in log


def _relative_run(tiny_trained_run, where):
    """The tiny run laid out as if trained from ``where`` with relative paths (SpeechBrain keeps them)."""
    import shutil

    run, _ = tiny_trained_run
    root = run.parent
    shutil.copytree(run, where / "results" / "run")
    shutil.copytree(root / "manifests", where / "results" / "manifests")
    hparams = (where / "results" / "run" / "hyperparams.yaml").read_text()
    (where / "results" / "run" / "hyperparams.yaml").write_text(hparams.replace(str(root), "results"))
    return where / "results" / "run"


def test_packaging_reads_the_run_from_any_folder(tiny_trained_run, tmp_path, monkeypatch):
    from speechbrain_sslse.packaging import package_model

    run = _relative_run(tiny_trained_run, tmp_path / "recipe")
    assert "manifest_folder: results/manifests" in (run / "hyperparams.yaml").read_text()
    monkeypatch.chdir(tmp_path)  # not the folder it was trained from
    card = (package_model(run, tmp_path / "model") / "README.md").read_text()
    assert "not recorded" not in card
    assert "training utterances" in card and "DNS-layout root" in card
    # The packaged checkpoint is chosen by the run's own selection key.
    assert "selection_key: quality" in (run / "hyperparams.yaml").read_text()


def test_layer_weight_table_takes_the_packaged_checkpoint(tiny_trained_run, tmp_path):
    sys.path.insert(0, str(RECIPE))
    import layer_weight_table

    run, brain = tiny_trained_run
    # A later checkpoint than the packaged one: the table must not take it.
    later = tmp_path / "run"
    import shutil

    shutil.copytree(run, later)
    from speechbrain_sslse.checkpointing import AtomicCheckpointer

    checkpointer = AtomicCheckpointer(later / "save")
    best = checkpointer.find_checkpoint()
    state = torch.load(best.path / "generator.ckpt", weights_only=True)
    packaged = state["combination.weight"].tolist()
    state["combination.weight"] = torch.full((len(packaged),), 9.0)
    newer = later / "save" / "CKPT+9999-12-31+23-59-59+00"
    shutil.copytree(best.path, newer)
    torch.save(state, newer / "generator.ckpt")
    import yaml

    meta = yaml.safe_load((newer / "CKPT.yaml").read_text())
    meta.update(epoch=2, quality=meta["quality"] - 1.0, unixtime=meta["unixtime"] + 60)
    (newer / "CKPT.yaml").write_text(yaml.safe_dump(meta))
    assert layer_weight_table.main([str(later), "--output_folder", str(tmp_path / "table")]) == 0
    rows = _rows(tmp_path / "table" / "layer_weights.csv")
    assert len(rows) == 1 and rows[0]["variant"] == "1" and rows[0]["system"] == "proposed"
    layers = range(1, len(packaged) + 1)
    assert [float(rows[0][f"layer{i}"]) for i in layers] == pytest.approx(packaged, abs=1e-4)
    assert "packaged" in rows[0]["chosen_by"]
    md = (tmp_path / "table" / "layer_weights.md").read_text()
    assert "| Variant | system | run | Layer1 | Layer2 | Layer3 |" in md and "-1.495" in md
    assert (tmp_path / "table" / "layer_weights.png").read_bytes()[:4] == b"\x89PNG"
    # Without the packaged model, the best checkpoint by the run's selection key (not the latest).
    shutil.rmtree(later / "model")
    assert layer_weight_table.main([str(later), "--output_folder", str(tmp_path / "table2")]) == 0
    row = _rows(tmp_path / "table2" / "layer_weights.csv")[0]
    assert row["chosen_by"].startswith("best quality") and row["epoch"] == "1"


def test_build_cpu_data_scores_dnsmos_in_parallel_as_it_does_serially(assets, tmp_path):
    """``--min_bak --num_jobs 2`` gives each file the serial DNSMOS scores; unreadable files are named."""
    build = load_recipe_module("dns_build_cpu_data", RECIPE / "build_cpu_data.py")
    files = sorted((assets / "speech" / "cmu-arctic-excerpt").glob("*.flac"))[:2]
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"not audio")
    serial, parallel = {}, {}
    assert build._score_all(files, serial, num_jobs=1) == {}
    errors = build._score_all([*files, broken], parallel, num_jobs=2)
    assert list(errors) == [str(broken)]
    assert sorted(parallel) == sorted(map(str, files))
    for key in serial:
        assert parallel[key]["dnsmos_bak"] == pytest.approx(serial[key]["dnsmos_bak"], abs=1e-5)
        assert 1.0 <= serial[key]["dnsmos_bak"] <= 5.0
    # files already scored are not scored again
    cached = {key: {"dnsmos_bak": -1.0} for key in serial}
    assert build._score_all(files, cached, num_jobs=2) == {}
    assert all(value == {"dnsmos_bak": -1.0} for value in cached.values())
