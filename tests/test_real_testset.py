"""The developers' held-out real test set (``create_real_testset.py``) and the held-out split it
draws from, and folders given through symbolic links or as relative paths in ``create_testset.py``.

Everything runs on the real asset collection (``../shared/assets`` or $SSLSE_ASSETS); the
module is skipped only when that folder is absent (on a user's machine).
"""

import csv
import importlib.util
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_sslse.audio import audio_info, read_audio
from speechbrain_sslse.data.assets import split_assets
from speechbrain_sslse.data.mixing import snr_db
from speechbrain_sslse.data.rir import measure_t60

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "VCTK-NOISEX" / "evaluation"
ASSETS = Path(os.environ.get("SSLSE_ASSETS", ROOT.parent / "shared" / "assets"))
SNRS = {-5.0, 0.0, 5.0, 10.0, 15.0, 20.0}
SMALL = ["--num_items", "6", "--max_seconds", "2"]

pytestmark = pytest.mark.skipif(
    not (ASSETS / "speech").is_dir(), reason=f"asset folder {ASSETS} absent (set SSLSE_ASSETS)"
)


def load(name):
    """Imports a recipe script of the evaluation recipe as a module."""
    key = f"real_testset_{name}"
    if key not in sys.modules:
        sys.path.insert(0, str(RECIPE))
        spec = importlib.util.spec_from_file_location(key, RECIPE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def rows_of(manifest):
    with open(manifest, newline="") as f:
        return list(csv.DictReader(f))


def build(out):
    return load("create_real_testset").main(["--assets", str(ASSETS), "--output_folder", str(out), *SMALL])


@pytest.fixture(scope="module")
def split():
    return split_assets(ASSETS)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("real_heldout") / "set"
    return out, rows_of(build(out))


def test_training_lists_are_disjoint_from_the_held_out_lists(split):
    train_files = {p for _, p in split.train_speech}
    held_files = {p for _, p in split.heldout_speech}
    assert train_files and held_files and not train_files & held_files
    assert not {s for s, _ in split.train_speech} & {s for s, _ in split.heldout_speech}
    assert not set(split.train_noises) & set(split.heldout_noises)
    assert not set(split.train_rirs) & set(split.heldout_rirs)
    paired = set(split.paired)
    assert paired and not paired & (train_files | set(split.train_noises) | set(split.train_rirs))
    # what the asset README holds out is what split_assets holds out
    root = ASSETS.resolve()
    held_speakers = {s for s, _ in split.heldout_speech}
    assert len({s for s in held_speakers if s.startswith("libri-")}) == 32
    listed = (root / "speech/speechocean762/test_speakers.txt").read_text().split()
    assert {s for s in held_speakers if s.startswith("so762-")} == {f"so762-{s[7:]}" for s in listed}
    assert {p for p in held_files if "vctk-excerpt" in p.parts} == set(
        (root / "speech/vctk-excerpt").rglob("*.flac")
    )
    esc = set((root / "noise/esc10").rglob("*.ogg"))
    assert {p for p in split.heldout_noises if p in esc} == {p for p in esc if p.name.startswith("5-")}
    assert {root / "noise/noise4.wav", root / "noise/noise5.wav"} <= set(split.heldout_noises)
    assert set((root / "noise/misc/speech-commands-background").iterdir()) <= set(split.heldout_noises)
    assert len(split.heldout_rirs) == 7 and all(p.suffix == ".flac" for p in split.heldout_rirs)


def test_the_built_set_uses_only_held_out_files(built, split):
    _, rows = built
    speech = {str(p): s for s, p in split.heldout_speech}
    noises, rooms = set(map(str, split.heldout_noises)), set(map(str, split.heldout_rirs))
    training = {str(p) for _, p in split.train_speech} | set(map(str, split.train_noises + split.train_rirs))
    synthetic = [r for r in rows if r["kind"] == "synthetic"]
    assert len(synthetic) == 6
    for r in synthetic:
        assert speech[r["source"]] == r["speaker"], r["id"]  # a held-out file of that speaker
        assert r["noise_source"] in noises and r["rir_source"] in rooms, r["id"]
        assert 0.3 <= float(r["t60"]) <= 1.3
        assert not {r["source"], r["noise_source"], r["rir_source"]} & training
    # balanced: two per corpus, every SNR once, no noise type and no room twice
    assert (
        sorted(r["corpus"] for r in synthetic) == ["librispeech"] * 2 + ["speechocean762"] * 2 + ["vctk"] * 2
    )
    assert {float(r["snr"]) for r in synthetic} == SNRS
    types = [load("create_real_testset").noise_type(r["noise"]) for r in synthetic]
    assert len(set(types)) == 6 and len({r["rir"] for r in synthetic}) == 6
    for r in rows:
        assert float(r["duration"]) <= 2.0 and audio_info(built[0] / r["noisy"])[1] <= 32000


def test_snrs_match_the_manifest(built):
    out, rows = built
    for r in rows:
        if r["kind"] != "synthetic":
            continue
        noisy, rev = read_audio(out / r["noisy"]), read_audio(out / r["reverberant"])
        assert abs(float(snr_db(rev, noisy - rev)) - float(r["snr"])) < 0.1, r["id"]
        assert float((read_audio(out / r["clean"]) * rev).sum()) > 0  # target aligned with the mixture


def test_the_recorded_pairs_are_items_of_their_own(built, split):
    out, rows = built
    real = [r for r in rows if r["kind"] == "real"]
    assert len(real) == len(split.paired) // 2 == 7
    assert {r["source"] for r in real} | {r["noisy_source"] for r in real} == set(map(str, split.paired))
    assert sum(r["corpus"] == "voicebank-demand-denoiser-debug" for r in real) == 6
    for r in real:
        assert r["snr"] == "real" and r["t60"] == "" and r["reverberant"] == ""
        for key, source in (("clean", r["source"]), ("noisy", r["noisy_source"])):
            assert audio_info(out / r[key])[0::2] == (16000, 1)
            written = read_audio(out / r[key])
            original = read_audio(source)[: written.shape[-1]]  # levels as recorded, only cropped
            assert torch.allclose(written, original, atol=2 / 32768), r["id"]


def test_building_twice_gives_identical_files(built, tmp_path):
    first, _ = built
    again = tmp_path / "again"
    build(again)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_evaluate_scores_the_real_items_in_a_row_of_their_own(built, tmp_path):
    out, rows = built
    small = tmp_path / "manifest.csv"  # one synthetic and one real item (audio paths made absolute)
    picked = [next(r for r in rows if r["kind"] == k) for k in ("synthetic", "real")]
    with open(small, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(
            [{**r, "clean": str(out / r["clean"]), "noisy": str(out / r["noisy"])} for r in picked]
        )
    load("evaluate").main(
        ["--manifest", str(small), "--output_dir", str(tmp_path / "eval"), "--metrics", "stoi"]
    )
    per_snr = rows_of(tmp_path / "eval" / "per_snr.csv")
    assert [(r["system"], r["snr"]) for r in per_snr if r["system"] == "distorted"] == [
        ("distorted", picked[0]["snr"]),
        ("distorted", "real"),
    ]
    assert "| distorted | real |" in (tmp_path / "eval" / "table.md").read_text()
    assert "real recordings" in (tmp_path / "eval" / "report" / "index.html").read_text()


# --- issue 19: linked and relative folders, repeated file names (create_testset.py) ----------


@pytest.fixture
def linked_tree(tmp_path, split):
    """speech/ with repeated names and a linked subfolder, rirs/ with a linked measured folder
    and a two-channel FLAC, and noise/ linked to the assets' Speech Commands noises."""
    vctk = sorted(p for s, p in split.heldout_speech if s.startswith("vctk-"))[:4]
    (tmp_path / "speech" / "a").mkdir(parents=True)
    (tmp_path / "speech" / "b").mkdir()
    (tmp_path / "elsewhere").mkdir()
    shutil.copyfile(vctk[0], tmp_path / "speech" / "a" / "x.flac")
    shutil.copyfile(vctk[1], tmp_path / "speech" / "b" / "x.flac")
    shutil.copyfile(vctk[2], tmp_path / "speech" / "b_x.flac")
    shutil.copyfile(vctk[3], tmp_path / "elsewhere" / "x.flac")
    os.symlink(tmp_path / "elsewhere", tmp_path / "speech" / "linked")
    (tmp_path / "rirs").mkdir()
    os.symlink(ASSETS / "rir" / "measured" / "pymixconsole", tmp_path / "rirs" / "measured")
    first, _ = sf.read(ASSETS / "rir" / "measured" / "auralizr-openair" / "st.flac", dtype="float32")
    stereo = np.stack([first, np.roll(first, 3000) * 0.5], axis=1)
    sf.write(tmp_path / "rirs" / "stereo.flac", stereo, 16000, subtype="PCM_24")
    os.symlink(ASSETS / "noise" / "misc" / "speech-commands-background", tmp_path / "noise")
    (tmp_path / "work").mkdir()
    return tmp_path, measure_t60(torch.from_numpy(first), 16000)


def test_create_testset_takes_linked_and_relative_folders(linked_tree, monkeypatch):
    tmp_path, stereo_t60 = linked_tree
    monkeypatch.chdir(tmp_path / "work")
    main = load("create_testset").main
    common = [
        "--speech_folder", "../speech", "--rir_folder", "../rirs", "--num_utterances", "0",
        "--crop_duration", "1",
    ]  # fmt: skip
    # the README's case: a relative path with '..' to the real folder; then the same through a link
    real_noise = os.path.relpath(ASSETS / "noise" / "misc" / "speech-commands-background")
    via_path = rows_of(main([*common, "--noise_folder", real_noise, "--output_folder", "out1"]))
    via_link = rows_of(main([*common, "--noise_folder", "../noise", "--output_folder", "out2"]))
    assert via_path == via_link
    assert sorted(r["id"] for r in via_path) == ["b_x", "b_x_2", "linked_x", "x"]  # no two alike
    assert len({r["source"] for r in via_path}) == 4
    for r in via_path:
        assert (tmp_path / "work" / "out1" / r["noisy"]).is_file()
        assert Path(r["noise_source"]).parent == (ASSETS / "noise/misc/speech-commands-background").resolve()
    rooms = {r["rir"]: float(r["t60"]) for r in via_path}
    assert set(rooms) <= {"stereo", "measured/medium_room", "measured/large_room", "measured/small_room"}
    # every kept room is used (4 items, at most 4 rooms); the two-channel FLAC by its first channel
    assert rooms["stereo"] == pytest.approx(stereo_t60, abs=1e-3)
