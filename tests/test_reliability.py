"""Reliability: bad input through every entry point, damaged checkpoints, atomic writes, safe loading.

The bad-input tests form a matrix: every case of :data:`CASES` goes through every entry
point of :data:`EXPECTED`, whose value says what must happen:

- ``reject``: a clear error naming the file (single-file entry points);
- ``skip``: the file is left out, with the reason, in the entry point's report, and the
  run goes on (batch entry points);
- ``accept``: it works, and the output is 16 kHz mono of the right length;
- ``later``: let through by a header-only check and caught when the audio is loaded;
- ``n/a``: the case cannot arise there (the reason is in :data:`NOT_APPLICABLE`).

Entries marked in :data:`KNOWN_GAPS` do not behave as expected yet; their tests are
strict ``xfail`` (they fail loudly once fixed, so that the mark is removed).
"""

import contextlib
import csv
import importlib.util
import io
import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from recipe_helpers import DNS_RECIPE, load_recipe_module, recipe_sibling, tiny_overrides

from speechbrain_sslse.audio import AudioError, atomic_path, audio_info, read_audio, resample, write_audio
from speechbrain_sslse.checkpointing import AtomicCheckpointer, CheckpointError, damaged_files
from speechbrain_sslse.cli import enhance_main
from speechbrain_sslse.data.layouts import LayoutError
from speechbrain_sslse.inference import ModelFolderError, SpectrumAwareEnhancer
from speechbrain_sslse.packaging import PackagingError, package_model

ROOT = Path(__file__).resolve().parents[1]
EVALUATION = ROOT / "recipes" / "VCTK-NOISEX" / "evaluation"
ROBUSTNESS = ROOT / "recipes" / "Valentini-DEMAND" / "robustness"
TIMIT = ROOT / "recipes" / "TIMIT" / "probing"

BAD = ["missing", "corrupt", "empty", "nan", "inf"]
RATES = ["sr8000", "sr22050", "sr44100", "sr48000"]
CASES = BAD + ["short", "too_short", "clipped", "stereo"] + RATES + ["ten_minutes"]
SHORT, TOO_SHORT = 1600, 480  # samples at 16 kHz: exactly 0.1 s, and 0.03 s

ENTRY_POINTS = {
    "dns_prepare": "dns_prepare.prepare_dns (DNS recipe preparation)",
    "training": "training data loading (DNS recipe, file damaged after preparation)",
    "create_testset": "create_testset.py --speech_folder (VCTK-NOISEX evaluation)",
    "evaluate": "evaluate.py --system (an enhanced file)",
    "timit_prepare": "timit_prepare.prepare_timit (TIMIT probes)",
    "robustness": "probe_robustness.py data loading (Valentini utterance)",
    "interface": "SpectrumAwareEnhancer.enhance_file (pretrained interface)",
    "cli": "sslse-enhance",
}
BATCH_BAD = {"missing": "n/a", "corrupt": "skip", "empty": "skip", "nan": "skip", "inf": "skip"}
ACCEPTED = {case: "accept" for case in ["clipped", "stereo", *RATES, "ten_minutes"]}
EXPECTED = {
    "dns_prepare": {
        **BATCH_BAD,
        "nan": "later",
        "inf": "later",
        "short": "skip",
        "too_short": "skip",
        **ACCEPTED,
    },
    "training": {**BATCH_BAD, "missing": "skip", "short": "n/a", "too_short": "n/a", **ACCEPTED},
    "create_testset": {**BATCH_BAD, "short": "skip", "too_short": "skip", **ACCEPTED},
    "evaluate": {**BATCH_BAD, "missing": "skip", "short": "skip", "too_short": "skip", **ACCEPTED},
    "timit_prepare": {**BATCH_BAD, "short": "accept", "too_short": "skip", **ACCEPTED},
    "robustness": {**BATCH_BAD, "short": "accept", "too_short": "skip", **ACCEPTED},
    "interface": {**{c: "reject" for c in BAD}, "short": "accept", "too_short": "reject", **ACCEPTED},
    "cli": {**{c: "reject" for c in BAD}, "short": "accept", "too_short": "reject", **ACCEPTED},
}
NOT_APPLICABLE = {
    "missing": "files are listed from the dataset folder; a missing folder raises LayoutError",
    "short": "shorter than min_duration: skipped at preparation, never in a manifest",
}
KNOWN_GAPS = {}  # (entry point, case) -> what happens instead of the expected behaviour


def xfail_gaps(entry):
    """Parameters of the cases of ``entry``, known gaps marked as strict xfail."""
    return [
        pytest.param(case, marks=pytest.mark.xfail(reason=KNOWN_GAPS[(entry, case)], strict=True))
        if (entry, case) in KNOWN_GAPS
        else case
        for case in CASES
        if EXPECTED[entry][case] != "n/a"
    ]


def test_every_entry_point_has_every_case():
    for entry, expected in EXPECTED.items():
        assert set(expected) == set(CASES), entry
        assert set(expected.values()) <= {"reject", "skip", "accept", "later", "n/a"}
    assert set(EXPECTED) == set(ENTRY_POINTS)


# --- the bad files --------------------------------------------------------------------------


def make_case(case, path, speech):
    """Writes the file of ``case`` at ``path`` from 16 kHz mono ``speech`` ``[T]``.

    Returns the expected length (samples at 16 kHz) of a usable file, None for a bad one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = speech.numpy().astype(np.float32)
    if case == "missing":
        return None
    if case == "corrupt":
        path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt not really a wave file" * 8)
        return None
    if case == "empty":
        path.write_bytes(b"")
        return None
    if case in ("nan", "inf"):
        y = x.copy()
        y[::97] = np.nan if case == "nan" else np.inf
        sf.write(path, y, 16000, subtype="FLOAT", format="WAV")
        return None
    if case in ("short", "too_short"):
        n = SHORT if case == "short" else TOO_SHORT
        write_audio(path, torch.from_numpy(x[:n]), file_format="WAV")
        return n
    if case == "clipped":  # saturated at +-1
        write_audio(path, torch.from_numpy(np.clip(x * 30.0, -1.0, 1.0)), file_format="WAV")
        return len(x)
    if case == "stereo":
        write_audio(path, torch.from_numpy(np.stack([x, 0.5 * x])), file_format="WAV")
        return len(x)
    if case in RATES:
        rate = int(case[2:])
        y = resample(torch.from_numpy(x), 16000, rate)
        write_audio(path, y, rate, file_format="WAV")
        return int(round(y.shape[-1] * 16000 / rate))
    if case == "ten_minutes":  # speech, then low-level noise
        y = 0.001 * np.random.default_rng(0).standard_normal(16000 * 600).astype(np.float32)
        y[: len(x)] += x
        write_audio(path, torch.from_numpy(y), file_format="WAV")
        return len(y)
    raise ValueError(case)


@pytest.fixture(scope="module")
def speech(real_speech):
    """3 s of real speech, 16 kHz mono."""
    return read_audio(real_speech[0])[:48000]


@pytest.fixture(scope="module")
def cases(tmp_path_factory, speech):
    """``case -> (path, expected 16 kHz length or None)``; the ten-minute file is written once."""
    folder = tmp_path_factory.mktemp("cases")
    return {case: (folder / f"{case}.wav", make_case(case, folder / f"{case}.wav", speech)) for case in CASES}


def place(cases, case, dest):
    """Puts the file of ``case`` at ``dest`` (the ten-minute file as a link; nothing when missing)."""
    src, _ = cases[case]
    dest.parent.mkdir(parents=True, exist_ok=True)
    if case == "ten_minutes":
        os.symlink(src, dest)
    elif src.exists():
        shutil.copyfile(src, dest)
    return dest


def load_script(path, name):
    """Imports a recipe script as a module."""
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(Path(path).parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def with_args(argv, **values):
    """``argv`` with ``--key=value`` options replaced (or added)."""
    keep = [a for a in argv if not any(a.startswith(f"--{k}=") for k in values)]
    return keep + [f"--{k}={v}" for k, v in values.items()]


def rows_of(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def copy_tree(src, dst):
    shutil.copytree(src, dst)
    return dst


# --- DNS preparation ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def recipe():
    return load_recipe_module()


@pytest.fixture(scope="module")
def dns_prepared(mini_corpus, cases, tmp_path_factory, recipe):
    root = copy_tree(mini_corpus / "DNS", tmp_path_factory.mktemp("dns_a") / "DNS")
    for case in CASES:
        place(cases, case, root / "clean" / "cases" / f"{case}.wav")
    report = sys.modules["dns_prepare"].prepare_dns(root, root.parent / "manifests", valid_fraction=0.2)
    listed = {
        Path(r["wav"]).stem: r
        for s in ("train", "valid")
        for r in rows_of(root.parent / "manifests" / f"{s}.csv")
    }
    skipped = {Path(s["file"]).stem: s["reason"] for s in report["skipped"]}
    return listed, skipped, report


@pytest.mark.parametrize("case", xfail_gaps("dns_prepare"))
def test_dns_prepare(case, dns_prepared, cases):
    listed, skipped, report = dns_prepared
    expected = EXPECTED["dns_prepare"][case]
    if expected == "skip":
        assert case not in listed and case in skipped
        assert f"{case}.wav" in skipped[case] or "shorter than" in skipped[case]
        assert report["counts"]["skipped_files"] == len(report["skipped"])
    elif expected == "later":  # only the header is read: the samples are checked when loaded
        assert case in listed and case not in skipped
    else:
        assert case in listed and float(listed[case]["duration"]) == pytest.approx(
            cases[case][1] / 16000, abs=1e-3
        )


# --- training data loading ----------------------------------------------------------------

TRAIN_BAD_COPIES = 2  # copies of each bad file: most training draws hit one


def recipe_defaults():
    """The preparation options ``train.py`` passes with hparams/proposed.yaml's defaults."""
    text = (DNS_RECIPE / "hparams" / "proposed.yaml").read_text()
    values = {}
    for key in ("valid_fraction", "t60_range", "min_duration", "seed"):
        line = next(ln for ln in text.splitlines() if ln.startswith(f"{key}:"))
        values[key] = yaml.safe_load(line.split(":", 1)[1].split("#")[0])
    return values


@pytest.fixture(scope="module")
def run(mini_corpus, cases, speech, tmp_path_factory, recipe, tiny_tera_ckpt):
    """A debug run of the DNS recipe whose training files were damaged after preparation.

    Clean speech: the accepted cases, two good speakers of the mini corpus, and two copies of
    each bad case, written as good audio for the preparation and damaged afterwards.
    """
    base = tmp_path_factory.mktemp("dns_b")
    root = base / "DNS"
    for part in ("noise", "impulse_responses", "acoustic_params"):
        shutil.copytree(mini_corpus / "DNS" / part, root / part)
    for spk in sorted((mini_corpus / "DNS" / "clean").iterdir())[:2]:
        shutil.copytree(spk, root / "clean" / spk.name)
    for case in ACCEPTED:
        place(cases, case, root / "clean" / "accepted" / f"{case}.wav")
    bad = []
    for case in BAD:
        for k in range(TRAIN_BAD_COPIES):
            bad.append((case, root / "clean" / f"bad{k}" / f"{case}.wav"))
            write_audio(bad[-1][1], speech)
    manifests = base / "manifests"
    sys.modules["dns_prepare"].prepare_dns(root, manifests, **recipe_defaults())
    valid_speakers = {r["spk_id"] for r in rows_of(manifests / "valid.csv")}
    assert not valid_speakers & {"accepted", *(f"bad{k}" for k in range(TRAIN_BAD_COPIES))}, valid_speakers
    for case, path in bad:  # damaged after preparation: in the manifests, unusable on disk
        path.unlink()
        make_case(case, path, speech)
    stamp = (manifests / "train.csv").stat().st_mtime_ns
    out = base / "run"
    argv = tiny_overrides(
        DNS_RECIPE / "hparams" / "proposed.yaml", out, manifests, root, tiny_tera_ckpt, steps_per_epoch=3
    )
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        brain = recipe.main(argv)
    assert (manifests / "train.csv").stat().st_mtime_ns == stamp  # prepared once, before the damage
    return {
        "root": root,
        "manifests": manifests,
        "out": out,
        "argv": argv,
        "brain": brain,
        "printed": printed.getvalue(),
        "bad": {str(p) for _, p in bad},
    }


def bad_file_log(path):
    lines = [ln.split("\t") for ln in Path(path).read_text().splitlines() if ln]
    return [(file, reason) for file, reason in lines]


def test_training_goes_on_past_damaged_files_and_counts_them(run):
    assert run["brain"].optimizer_step == 3
    logged = bad_file_log(run["out"] / "bad_files.tsv")
    files = [f for f, _ in logged]
    assert files and len(files) == len(set(files))  # each once
    assert set(files) <= run["bad"]
    assert f"{len(files)} unusable audio files were skipped: {run['out'] / 'bad_files.tsv'}" in run["printed"]
    assert (run["out"] / "model" / "vocoder.ckpt").is_file()


@pytest.fixture(scope="module")
def loaded(run, tmp_path_factory):
    """Every training and validation item of the damaged run loaded once, and the files logged."""
    hparams = dict(vars(run["brain"].hparams))
    hparams["bad_files_log"] = tmp_path_factory.mktemp("loader") / "bad_files.tsv"
    data_pipeline = recipe_sibling("data_pipeline")
    train_data, valid_data, bad_files = data_pipeline.dataio_prepare(hparams, run["manifests"])
    items = {}
    for data in (train_data, valid_data):
        for i in range(len(data)):
            items[data.data_ids[i]] = data[i]
    return items, dict(bad_file_log(hparams["bad_files_log"])), bad_files


@pytest.mark.parametrize("case", xfail_gaps("training"))
def test_training_data_loading(case, run, loaded):
    items, logged, bad_files = loaded
    if EXPECTED["training"][case] == "skip":
        for k in range(TRAIN_BAD_COPIES):
            path = str(run["root"] / "clean" / f"bad{k}" / f"{case}.wav")
            assert path in logged and path in logged[path]  # the reason names the file
            item = items[f"bad{k}_{case}"]  # replaced by another utterance
            assert item["noisy_sig"].shape == (8000,) and torch.isfinite(item["noisy_sig"]).all()
        assert bad_files.count() == len(logged)
    else:
        item = items[f"accepted_{case}"]
        assert item["noisy_sig"].shape == item["clean_sig"].shape == (8000,)
        assert float(item["clean_sig"].abs().max()) > 0 and torch.isfinite(item["noisy_sig"]).all()
        assert not [f for f in logged if f.endswith(f"accepted/{case}.wav")]


# --- test-set creation ----------------------------------------------------------------------


def create_testset(speech_folder, out, assets):
    module = load_script(EVALUATION / "create_testset.py", "reliability_create_testset")
    argv = [
        "--speech_folder", speech_folder, "--noise_folder", assets / "noise", "--rir_folder", assets / "rir",
        "--output_folder", out, "--num_utterances", "0", "--seed", "1",
    ]  # fmt: skip
    return module.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def testset_accepted(cases, real_speech, assets, tmp_path_factory):
    base = tmp_path_factory.mktemp("testset")
    speech = base / "speech"
    speech.mkdir()
    shutil.copyfile(real_speech[1], speech / real_speech[1].name)
    for case in CASES:
        if EXPECTED["create_testset"][case] in ("accept", "skip") and case not in BAD:
            place(cases, case, speech / f"case_{case}.wav")
    manifest = create_testset(speech, base / "out", assets)
    return {r["id"]: r for r in rows_of(manifest)}, base / "out"


@pytest.mark.parametrize("case", xfail_gaps("create_testset"))
def test_create_testset(case, cases, testset_accepted, real_speech, assets, tmp_path, caplog):
    if case in BAD:  # each in its own run, beside a good file
        (tmp_path / "speech").mkdir()
        shutil.copyfile(real_speech[1], tmp_path / "speech" / real_speech[1].name)
        place(cases, case, tmp_path / "speech" / f"case_{case}.wav")
        manifest = create_testset(tmp_path / "speech", tmp_path / "out", assets)
        rows = rows_of(manifest)
        assert [r["id"] for r in rows] == [real_speech[1].stem]
        assert f"case_{case}.wav" in caplog.text  # the skipped file is named in the log
        return
    rows, out = testset_accepted
    if EXPECTED["create_testset"][case] == "skip":
        assert f"case_{case}" not in rows
        return
    row = rows[f"case_{case}"]
    expected = cases[case][1]
    assert float(row["duration"]) == pytest.approx(expected / 16000, abs=1e-3)
    for key in ("clean", "noisy", "reverberant"):
        assert audio_info(out / row[key]) == (16000, expected, 1)


# --- evaluation -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def eval_testset(mini_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval_testset") / "ts"
    module = load_script(EVALUATION / "create_testset.py", "reliability_create_testset")
    argv = [
        "--vctk_folder", mini_corpus / "VCTK", "--noisex_folder", mini_corpus / "NOISEX",
        "--mit_ir_folder", mini_corpus / "MIT_IR", "--output_folder", out, "--num_utterances", "2",
    ]  # fmt: skip
    manifest = module.main([str(a) for a in argv])
    return manifest, rows_of(manifest)


def system_folder(folder, case, cases, manifest_rows, base):
    """Enhanced files of a system: the clean targets, the first one replaced by the file of ``case``."""
    folder.mkdir(parents=True)
    for row in manifest_rows[1:]:
        shutil.copyfile(base / row["clean"], folder / f"{row['id']}.wav")
    place(cases, case, folder / f"{manifest_rows[0]['id']}.wav")
    return folder


def evaluate(manifest, out, systems):
    module = load_script(EVALUATION / "evaluate.py", "reliability_evaluate")
    argv = ["--manifest", manifest, "--output_dir", out, "--metrics", "stoi", "--no_reference_rows"]
    for name, folder in systems.items():
        argv += ["--system", f"{name}={folder}"]
    module.main([str(a) for a in argv])
    return {(r["system"], r["id"]): r for r in rows_of(out / "per_file.csv")}


@pytest.fixture(scope="module")
def evaluated_accepted(eval_testset, cases, tmp_path_factory):
    manifest, rows = eval_testset
    base = tmp_path_factory.mktemp("eval_systems")
    systems = {
        case: system_folder(base / case, case, cases, rows, manifest.parent)
        for case in CASES
        if case not in BAD and EXPECTED["evaluate"][case] != "n/a"
    }
    return evaluate(manifest, base / "out", systems)


@pytest.mark.parametrize("case", xfail_gaps("evaluate"))
def test_evaluate(case, eval_testset, cases, evaluated_accepted, tmp_path):
    manifest, rows = eval_testset
    first = rows[0]["id"]
    if case in BAD:  # each in its own run: the other files are scored, this one reported
        scores = evaluate(
            manifest,
            tmp_path / "out",
            {case: system_folder(tmp_path / case, case, cases, rows, manifest.parent)},
        )
    else:
        scores = evaluated_accepted
    row = scores[(case, first)]
    if EXPECTED["evaluate"][case] == "accept":
        assert 0.0 < float(row["stoi"]) <= 1.0 and row["missing"] == ""
    else:  # not scorable: NaN, with the reason
        assert row["stoi"] == "nan" and row["missing"]
    for other in rows[1:]:
        assert float(scores[(case, other["id"])]["stoi"]) == pytest.approx(1.0, abs=1e-6)


# --- probing: TIMIT preparation and the robustness recipe's data ------------------------------


@pytest.fixture(scope="module")
def timit_prepared(mini_corpus, cases, speech, tmp_path_factory):
    prep = load_script(TIMIT / "timit_prepare.py", "timit_prepare")
    root = copy_tree(mini_corpus / "TIMIT", tmp_path_factory.mktemp("timit") / "TIMIT")
    speaker = root / "TRAIN" / "DR1" / "MCAS0"
    names = {}
    for k, case in enumerate(CASES):
        names[case] = f"SX{200 + k}"
        path = speaker / f"{names[case]}.WAV"
        if case not in ("corrupt", "empty", "nan", "inf", "missing", "ten_minutes"):
            expected = cases[case][1]
            wav, rate = sf.read(cases[case][0], dtype="float32", always_2d=True)
            sf.write(path, wav, rate, format="NIST", subtype="PCM_16")  # TIMIT's NIST SPHERE
            assert audio_info(path)[1] * 16000 / rate == pytest.approx(expected, abs=1)
        else:
            place(cases, case, path)
    save = root.parent / "manifests"
    paths = prep.prepare_timit(root, save, splits=("TRAIN",))
    rows = {r["ID"]: r for r in prep.read_manifest(paths["sx_sentence"])}
    skipped = {
        Path(s["file"]).stem: s["reason"] for s in json.loads((save / "skipped_files.json").read_text())
    }
    return rows, skipped, names


@pytest.mark.parametrize("case", xfail_gaps("timit_prepare"))
def test_timit_prepare(case, timit_prepared, cases):
    rows, skipped, names = timit_prepared
    uid = f"MCAS0_{names[case]}"
    if EXPECTED["timit_prepare"][case] == "skip":
        assert uid not in rows and f"{names[case]}.WAV" in skipped[names[case]]
    else:
        assert rows[uid]["start"] == 0 and rows[uid]["end"] == pytest.approx(cases[case][1], abs=1)


@pytest.fixture(scope="module")
def robustness_data(mini_corpus, cases, tmp_path_factory):
    module = load_script(ROBUSTNESS / "probe_robustness.py", "reliability_probe_robustness")
    base = tmp_path_factory.mktemp("robustness")
    valentini = copy_tree(mini_corpus / "Valentini", base / "Valentini")
    for case in CASES:
        place(cases, case, valentini / "clean_testset_wav" / f"case_{case}.wav")
    skipped = []
    items, loaders = module.select_utterances(valentini, "test", None, 0, 4.0, skipped)
    return {Path(item["path"]).stem: loader for item, loader in zip(items, loaders)}, skipped, module, base


@pytest.mark.parametrize("case", xfail_gaps("robustness"))
def test_robustness_utterances(case, robustness_data, cases):
    loaders, skipped, _, _ = robustness_data
    name = f"case_{case}"
    if EXPECTED["robustness"][case] == "skip":
        assert name not in loaders
        assert any(s["file"].endswith(f"{name}.wav") and f"{name}.wav" in s["reason"] for s in skipped)
    else:  # cropped to max_duration (4 s)
        assert loaders[name]().shape == (min(cases[case][1], 64000),)


def test_robustness_skips_unusable_noises_and_impulse_responses(robustness_data, mini_corpus, cases):
    _, _, module, base = robustness_data
    demand = copy_tree(mini_corpus / "DEMAND", base / "DEMAND")
    place(cases, "corrupt", demand / "ZBROKEN" / "ch01.wav")
    skipped = []
    noises = module.load_noises(demand, "ch01", 2.0, skipped)
    assert "ZBROKEN" not in noises and len(noises) == len(list((mini_corpus / "DEMAND").iterdir()))
    assert skipped[0]["file"].endswith("ZBROKEN/ch01.wav")
    mit = copy_tree(mini_corpus / "MIT_IR", base / "MIT_IR")
    place(cases, "nan", mit / "broken.wav")
    rirs, bins, rows = module.load_rirs(mit, [0.3, 0.5, 0.7, 0.9, 1.1, 1.3], base / "rir_t60.csv")
    note = next(r["note"] for r in rows if r["name"] == "broken")
    assert "broken" not in rirs and note.startswith("excluded:") and "NaN" in note
    assert "excluded:" in (base / "rir_t60.csv").read_text()


# --- pretrained interface and CLI ---------------------------------------------------------------


@pytest.fixture(scope="module")
def enhancer(run):
    return SpectrumAwareEnhancer.from_hparams(source=run["out"] / "model")


@pytest.mark.parametrize("case", xfail_gaps("interface"))
def test_pretrained_interface(case, enhancer, cases, tmp_path):
    path, expected = cases[case]
    out = tmp_path / "out.wav"
    if EXPECTED["interface"][case] == "reject":
        with pytest.raises(AudioError) as info:
            enhancer.enhance_file(path, out)
        assert str(path) in str(info.value) and info.value.file == str(path)
        assert not out.exists()
        return
    enhanced = enhancer.enhance_file(path, out)
    assert enhanced.shape == (expected,) and torch.isfinite(enhanced).all()
    assert audio_info(out) == (16000, expected, 1)


def test_cli_reports_each_bad_file_and_enhances_the_others(run, cases, tmp_path, capsys):
    folder = tmp_path / "in"
    for case in CASES:
        if case not in ("missing", "ten_minutes"):  # the ten-minute file: see the interface test
            place(cases, case, folder / f"{case}.wav")
    missing = tmp_path / "missing.wav"
    status = enhance_main(
        [str(folder), str(missing), "-o", str(tmp_path / "out"), "--model", str(run["out"] / "model")]
    )
    captured = capsys.readouterr()
    assert status == 1
    errors = [ln for ln in captured.err.splitlines() if ln.startswith("error:")]
    rejected = [c for c in CASES if EXPECTED["cli"][c] == "reject" and c not in ("missing",)]
    assert len(errors) == len(rejected) + 1
    assert f"error: {missing}: no such file or folder" in errors
    for case in CASES:
        out = tmp_path / "out" / "in" / f"{case}.wav"
        if case in ("missing", "ten_minutes"):
            continue
        if EXPECTED["cli"][case] == "reject":
            assert sum(f"{case}.wav" in ln for ln in errors) == 1 and not out.exists()
        else:
            assert audio_info(out) == (16000, cases[case][1], 1)
    accepted = sum(1 for c in CASES if EXPECTED["cli"][c] == "accept" and c != "ten_minutes")
    assert f"{accepted} enhanced, 0 skipped" in captured.out and f"{len(errors)} failed" in captured.out


# --- missing dataset folders and wrong layouts ----------------------------------------------------


def test_missing_or_wrong_dataset_folders_name_the_expected_layout(tmp_path, recipe, tiny_tera_ckpt, assets):
    module = load_script(ROBUSTNESS / "probe_robustness.py", "reliability_probe_robustness")
    (tmp_path / "wrong").mkdir()
    with pytest.raises(LayoutError, match=r"Valentini at .*wrong.*\n.*clean_testset_wav"):
        module.select_utterances(tmp_path / "wrong", "test", None, 0, None)
    with pytest.raises(LayoutError, match="DEMAND at .*ch01.wav"):
        module.load_noises(tmp_path / "wrong", "ch01", None)
    with pytest.raises(LayoutError, match="MIT_IR at .*folder does not exist"):
        module.load_rirs(tmp_path / "nowhere", [0.3, 1.3], tmp_path / "t.csv")
    with pytest.raises(SystemExit, match="NOISEX-92 folder with one file per noise type"):
        create_testset_main = load_script(EVALUATION / "create_testset.py", "reliability_create_testset").main
        create_testset_main(
            ["--speech_folder", str(assets / "speech"), "--noisex_folder", str(tmp_path / "wrong"),
             "--rir_folder", str(assets / "rir"), "--output_folder", str(tmp_path / "o")]
        )  # fmt: skip
    argv = tiny_overrides(
        DNS_RECIPE / "hparams" / "proposed.yaml",
        tmp_path / "run",
        tmp_path / "m",
        tmp_path / "wrong",
        tiny_tera_ckpt,
    )
    with pytest.raises(
        LayoutError, match=r"DNS at .*wrong.*no 'clean' folder.*\n.*Expected layout: DNS Challenge"
    ):
        recipe.main(argv)


def test_unknown_upstream_on_the_recipe_command_line_lists_the_names(
    recipe, tmp_path, mini_corpus, tiny_tera_ckpt
):
    argv = tiny_overrides(
        DNS_RECIPE / "hparams" / "proposed.yaml", tmp_path / "run", tmp_path / "m", mini_corpus / "DNS",
        tiny_tera_ckpt, ssl_upstream="terra",
    )  # fmt: skip
    with pytest.raises(ValueError) as info:
        recipe.main(argv)
    message = str(info.value)
    assert "unknown s3prl upstream 'terra'" in message and "Did you mean" in message
    for name in ("tera_local", "hubert_local", "wavlm_local", "wav2vec2_local"):
        assert name in message


# --- damaged checkpoints ------------------------------------------------------------------------


def truncate(path):
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])


def latest_checkpoint(save_folder):
    return max(AtomicCheckpointer(save_folder).list_checkpoints(), key=lambda c: c.meta["unixtime"]).path


def test_resuming_from_a_truncated_checkpoint_names_it_and_the_fix(run, recipe, tmp_path):
    out = shutil.copytree(run["out"], tmp_path / "run", symlinks=True)
    ckpt = latest_checkpoint(out / "save")
    truncate(ckpt / "generator.ckpt")
    with pytest.raises(CheckpointError) as info:
        recipe.main(with_args(run["argv"], output_folder=out, number_of_epochs=2))
    message = str(info.value)
    assert f"cannot resume from the checkpoint {ckpt}: generator.ckpt is damaged or incomplete" in message
    assert f"Delete {ckpt}" in message and "another output_folder" in message


def test_resuming_with_another_ssl_encoder_is_refused(run, recipe, tmp_path):
    from speechbrain_sslse.testing import write_tiny_tera

    out = shutil.copytree(run["out"], tmp_path / "run", symlinks=True)
    other = write_tiny_tera(tmp_path / "other_tera.ckpt", seed=7)
    argv = with_args(run["argv"], output_folder=out, ssl_ckpt=other, number_of_epochs=2)
    with pytest.raises(
        CheckpointError, match=r"cannot resume from the checkpoint .*trained on another SSL encoder"
    ):
        recipe.main(argv)


def damage_model(model, how, tmp_path):
    from speechbrain_sslse.testing import write_tiny_tera

    folder = shutil.copytree(model, tmp_path / "model")
    if how == "truncated vocoder.ckpt":
        truncate(folder / "vocoder.ckpt")
    elif how == "truncated ssl.ckpt":
        truncate(folder / "ssl.ckpt")
    elif how == "ssl.ckpt of another encoder":
        write_tiny_tera(folder / "ssl.ckpt", seed=7)
    elif how == "damaged hyperparams.yaml":
        truncate(folder / "hyperparams.yaml")
    elif how == "no vocoder.ckpt":
        (folder / "vocoder.ckpt").unlink()
    return folder


MODEL_DAMAGE = {
    "truncated vocoder.ckpt": (ModelFolderError, "vocoder.ckpt is damaged or incomplete"),
    "truncated ssl.ckpt": (CheckpointError, r"cannot load the checkpoint .*ssl\.ckpt"),
    "ssl.ckpt of another encoder": (CheckpointError, "trained on another SSL encoder"),
    "damaged hyperparams.yaml": (
        ModelFolderError,
        r"hyperparams\.yaml \(or a file it refers to\) is damaged",
    ),
    "no vocoder.ckpt": (ModelFolderError, r"not a model folder \(missing vocoder\.ckpt\)"),
}


@pytest.mark.parametrize("how", sorted(MODEL_DAMAGE))
def test_damaged_model_folder_gives_a_clear_error(how, run, tmp_path, capsys):
    folder = damage_model(run["out"] / "model", how, tmp_path)
    error, pattern = MODEL_DAMAGE[how]
    with pytest.raises(error, match=pattern) as info:
        SpectrumAwareEnhancer.from_hparams(source=folder)
    assert str(folder) in str(info.value)
    write_audio(tmp_path / "a.wav", torch.zeros(16000))
    assert enhance_main([str(tmp_path / "a.wav"), "-o", str(tmp_path / "o"), "--model", str(folder)]) == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: cannot load the model:")


def test_packaging_a_truncated_checkpoint_names_it(run, tmp_path):
    out = shutil.copytree(run["out"], tmp_path / "run", symlinks=True)
    ckpt = latest_checkpoint(out / "save")
    truncate(ckpt / "generator.ckpt")
    with pytest.raises(PackagingError, match=re.escape(f"{ckpt / 'generator.ckpt'}: cannot be read")):
        package_model(out, tmp_path / "model", checkpoint=ckpt)
    assert not (tmp_path / "model").exists()


# --- loading safety: the project's checkpoints load with weights_only=True ------------------------


def test_project_checkpoints_load_with_weights_only(run, tmp_path, tiny_tera_ckpt, tiny_hubert_ckpt):
    from speechbrain_sslse.probing import DistortionPlan, evaluate_robustness
    from speechbrain_sslse.probing.features import LogMelEncoder
    from speechbrain_sslse.tera.export import default_tera_checkpoint
    from speechbrain_sslse.testing import write_tiny_wav2vec2, write_tiny_wavlm

    torch_files = [p for p in (run["out"] / "save").rglob("*.ckpt") if p.read_bytes()[:4] == b"PK\x03\x04"]
    assert {p.name for p in torch_files} >= {
        "generator.ckpt", "discriminator.ckpt", "optimizer_g.ckpt", "optimizer_d.ckpt",
        "scheduler_g.ckpt", "scheduler_d.ckpt",
    }  # fmt: skip
    for text in set((run["out"] / "save").rglob("*.ckpt")) - set(
        torch_files
    ):  # SpeechBrain's yaml/text files
        yaml.safe_load(text.read_text())
    plan = DistortionPlan({"n": torch.randn(8000)}, {}, {}, snrs=[0], bins=[], families=["noise"])
    state = tmp_path / "robustness_state.pt"
    evaluate_robustness(
        LogMelEncoder(),
        [torch.randn(4000)],
        plan,
        state_path=state,
        fingerprint={"a": [1, (2, "x")]},
        progress=False,
    )
    torch_files += [
        run["out"] / "model" / "vocoder.ckpt",
        run["out"] / "model" / "ssl.ckpt",
        tiny_tera_ckpt,
        tiny_hubert_ckpt,
        write_tiny_wav2vec2(tmp_path / "w2v.pt"),
        write_tiny_wavlm(tmp_path / "wavlm.pt"),
        default_tera_checkpoint(),
        state,
    ]
    for path in torch_files:
        torch.load(path, map_location="cpu", weights_only=True)
    assert not damaged_files(run["out"] / "model")


def test_readme_tells_which_checkpoints_are_loaded_with_pickle():
    text = " ".join((ROOT / "README.md").read_text().split())
    assert "weights_only=True" in text
    assert "pickle" in text and "trust" in text


# --- atomic writes: an interrupted writer leaves the old file or none, and no temporary file -------


class Interrupted(BaseException):
    """Stands for a kill in the middle of a write (BaseException, like KeyboardInterrupt)."""


def interrupt_after(monkeypatch, target, name, calls=1):
    """Makes ``target.name`` raise :class:`Interrupted` on call number ``calls`` (after doing its work)."""
    original = getattr(target, name)
    count = {"n": 0}

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        count["n"] += 1
        if count["n"] >= calls:
            raise Interrupted(f"{name} interrupted")
        return result

    monkeypatch.setattr(target, name, wrapper)


def leftovers(folder):
    """Temporary files (``*.part``) and staging folders (``.name.*``) under ``folder``."""
    return [p for p in Path(folder).rglob("*") if p.name.endswith(".part") or p.name.startswith(".")]


def test_interrupted_manifest_writing_keeps_the_old_manifests(
    dns_prepared, mini_corpus, tmp_path, monkeypatch
):
    dns_prepare = sys.modules["dns_prepare"]
    manifests = tmp_path / "m"
    dns_prepare.prepare_dns(mini_corpus / "DNS", manifests, valid_fraction=0.2)
    before = {p.name: p.read_bytes() for p in manifests.iterdir()}
    interrupt_after(monkeypatch, csv.DictWriter, "writeheader", calls=2)  # in the middle of valid.csv
    with pytest.raises(Interrupted):
        dns_prepare.prepare_dns(mini_corpus / "DNS", manifests, valid_fraction=0.5)
    assert (manifests / "valid.csv").read_bytes() == before["valid.csv"]  # whole, never half written
    assert not (manifests / "prepare_report.json").exists()  # the set is marked incomplete
    assert not leftovers(manifests)
    monkeypatch.undo()
    dns_prepare.prepare_dns(mini_corpus / "DNS", manifests, valid_fraction=0.2)  # redone, not reused
    assert {p.name: p.read_bytes() for p in manifests.iterdir()}.keys() == before.keys()
    for name in ("train.csv", "valid.csv", "noise.csv", "rir.csv"):
        assert (manifests / name).read_bytes() == before[name]
    interrupt_after(monkeypatch, csv.DictWriter, "writeheader", calls=2)
    with pytest.raises(Interrupted):
        dns_prepare.prepare_dns(mini_corpus / "DNS", tmp_path / "new", valid_fraction=0.5)
    assert not (tmp_path / "new" / "valid.csv").exists() and not leftovers(tmp_path / "new")


def test_interrupted_test_set_writing_leaves_no_half_files(eval_testset, mini_corpus, tmp_path, monkeypatch):
    module = load_script(EVALUATION / "create_testset.py", "reliability_create_testset")
    argv = [
        "--vctk_folder", mini_corpus / "VCTK", "--noisex_folder", mini_corpus / "NOISEX",
        "--mit_ir_folder", mini_corpus / "MIT_IR", "--output_folder", tmp_path / "ts",
        "--num_utterances", "2",
    ]  # fmt: skip
    interrupt_after(monkeypatch, sf, "write", calls=4)  # the second item's first file
    with pytest.raises(Interrupted):
        module.main([str(a) for a in argv])
    written = sorted(p.relative_to(tmp_path / "ts").as_posix() for p in (tmp_path / "ts").rglob("*.wav"))
    assert len(written) == 3 and not (tmp_path / "ts" / "manifest.csv").exists()
    assert not leftovers(tmp_path / "ts")
    for p in written:
        read_audio(tmp_path / "ts" / p)  # complete files
    monkeypatch.undo()
    manifest = module.main([str(a) for a in argv])  # resumes
    assert rows_of(manifest) == rows_of(eval_testset[0])


def test_interrupted_evaluation_csv_keeps_the_old_one(tmp_path, monkeypatch):
    from speechbrain_sslse.files import write_csv

    path = tmp_path / "per_file.csv"
    write_csv(path, [{"system": "a", "stoi": 0.5}], ["system", "stoi"])
    before = path.read_bytes()
    interrupt_after(monkeypatch, csv.DictWriter, "writerow", calls=2)
    with pytest.raises(Interrupted):
        write_csv(path, [{"system": "b", "stoi": 0.7}, {"system": "c", "stoi": 0.8}], ["system", "stoi"])
    assert path.read_bytes() == before and not leftovers(tmp_path)


def test_interrupted_packaging_keeps_the_previous_model(run, tmp_path, monkeypatch):
    model = package_model(run["out"], tmp_path / "model")
    before = {p.name: p.read_bytes() for p in model.iterdir()}
    interrupt_after(monkeypatch, shutil, "copyfile", calls=2)
    with pytest.raises(Interrupted):
        package_model(run["out"], model, overwrite=True)
    assert {p.name: p.read_bytes() for p in model.iterdir()} == before
    assert not leftovers(tmp_path)
    with pytest.raises(Interrupted):
        package_model(run["out"], tmp_path / "new_model")
    assert not (tmp_path / "new_model").exists() and not leftovers(tmp_path)
    assert oct(model.stat().st_mode & 0o777) != oct(0o700)  # the usual permissions, not mkdtemp's


def test_interrupted_audio_and_probe_outputs_leave_nothing(tmp_path, monkeypatch):
    from speechbrain_sslse.files import write_csv as probe_csv
    from speechbrain_sslse.probing.robustness import _save

    write_audio(tmp_path / "a.wav", torch.zeros(1600))
    before = (tmp_path / "a.wav").read_bytes()
    interrupt_after(monkeypatch, sf, "write")
    with pytest.raises(Interrupted):
        write_audio(tmp_path / "a.wav", torch.ones(3200) * 0.5)
    with pytest.raises(Interrupted):
        write_audio(tmp_path / "b.wav", torch.ones(3200) * 0.5)
    assert (tmp_path / "a.wav").read_bytes() == before and not (tmp_path / "b.wav").exists()
    interrupt_after(monkeypatch, torch, "save")
    with pytest.raises(Interrupted):
        _save({"x": torch.zeros(2)}, tmp_path / "state.pt")
    interrupt_after(monkeypatch, csv.DictWriter, "writeheader")
    with pytest.raises(Interrupted):
        probe_csv(tmp_path / "t.csv", [{"a": 1}], ["a"])
    assert not (tmp_path / "state.pt").exists() and not (tmp_path / "t.csv").exists()
    assert not leftovers(tmp_path)
    with pytest.raises(Interrupted):
        with atomic_path(tmp_path / "x.txt") as tmp:
            Path(tmp).write_text("half")
            raise Interrupted
    assert not (tmp_path / "x.txt").exists() and not leftovers(tmp_path)


def test_checkpoint_interrupted_while_saving_is_not_used(tmp_path, monkeypatch):
    model = torch.nn.Linear(4, 4)
    other = torch.nn.Linear(4, 4)
    ckpt = AtomicCheckpointer(tmp_path, recoverables={"model": model, "other": other})
    first = ckpt.save_checkpoint(meta={"n": 1})
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    interrupt_after(monkeypatch, torch, "save")  # the kill lands after model.ckpt, before other.ckpt
    with torch.no_grad():
        model.weight.add_(1.0)
    with pytest.raises(Interrupted):
        ckpt.save_checkpoint(meta={"n": 2})
    monkeypatch.undo()
    assert [c.meta["n"] for c in ckpt.list_checkpoints()] == [1]
    assert len(ckpt.incomplete_folders()) == 1
    recovered = AtomicCheckpointer(
        tmp_path, recoverables={"model": model, "other": other}
    ).recover_if_possible()
    assert recovered.path == first.path and not ckpt.incomplete_folders()
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    truncate(first.path / "model.ckpt")
    with pytest.raises(
        CheckpointError, match=re.escape(f"{first.path}: model.ckpt is damaged or incomplete")
    ):
        AtomicCheckpointer(tmp_path, recoverables={"model": model, "other": other}).recover_if_possible()
