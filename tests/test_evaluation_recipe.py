"""The VCTK-NOISEX evaluation recipe: create_testset.py on the mini corpus and on the real
assets, then evaluate.py with every metric, run as a user runs them (subprocesses)."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from speechbrain_sslse.audio import audio_info, read_audio
from speechbrain_sslse.data.mixing import snr_db

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "VCTK-NOISEX" / "evaluation"
SNRS = {-7.0, 0.0, 5.0, 10.0, 15.0}
HEADER = ["id", "clean", "noisy", "snr", "noise", "rir", "t60", "speaker"]


def run(script, *args, ok=True):
    proc = subprocess.run(
        [sys.executable, str(RECIPE / script), *map(str, args)], capture_output=True, text=True, cwd=ROOT
    )
    if ok:
        assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def mini_args(mini_corpus, out):
    return [
        "--vctk_folder", mini_corpus / "VCTK", "--noisex_folder", mini_corpus / "NOISEX",
        "--mit_ir_folder", mini_corpus / "MIT_IR", "--output_folder", out, "--seed", 3,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def mini_testset(mini_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("testset") / "mini"
    run("create_testset.py", *mini_args(mini_corpus, out))
    return out


def test_testset_layout_balance_and_t60(mini_testset, mini_corpus):
    with open(mini_testset / "manifest.csv") as f:
        assert f.readline().strip().split(",")[:8] == HEADER
    rows = read_rows(mini_testset / "manifest.csv")
    n_utts = sum(1 for _ in (mini_corpus / "VCTK").rglob("*_mic1.flac"))
    assert len(rows) == n_utts and len({r["id"] for r in rows}) == len(rows)
    snrs = [float(r["snr"]) for r in rows]
    assert set(snrs) <= SNRS
    counts = [snrs.count(s) for s in SNRS]
    assert max(counts) - min(counts) <= 1  # balanced
    noises = [r["noise"] for r in rows]
    n_types = len(list((mini_corpus / "NOISEX").glob("*.wav")))
    noise_counts = [noises.count(n) for n in set(noises)]
    assert len(set(noises)) == min(n_types, len(rows)) and max(noise_counts) - min(noise_counts) <= 1
    for r in rows:
        assert 0.3 <= float(r["t60"]) <= 1.3
        assert r["snr_reference"] == "reverberant"
        for key in ("clean", "noisy", "reverberant"):
            assert not Path(r[key]).is_absolute()  # relative to the manifest's folder
            assert audio_info(mini_testset / r[key])[0] == 16000
        assert r["speaker"] == r["id"].split("_")[0]


def test_noisy_files_have_the_manifest_snr(mini_testset):
    for r in read_rows(mini_testset / "manifest.csv"):
        noisy = read_audio(mini_testset / r["noisy"])
        reverberant = read_audio(mini_testset / r["reverberant"])
        clean = read_audio(mini_testset / r["clean"])
        assert noisy.shape == reverberant.shape == clean.shape
        assert abs(float(snr_db(reverberant, noisy - reverberant)) - float(r["snr"])) < 0.5, r["id"]
        # the clean target is time-aligned with the reverberant speech (direct path at lag 0)
        assert float((clean * reverberant).sum()) > 0


def test_testset_is_identical_across_runs_and_resumes(mini_testset, mini_corpus, tmp_path):
    again = tmp_path / "again"
    run("create_testset.py", *mini_args(mini_corpus, again))
    first = sorted(p.relative_to(mini_testset) for p in mini_testset.rglob("*.wav"))
    assert first == sorted(p.relative_to(again) for p in again.rglob("*.wav"))
    for rel in first:
        assert (mini_testset / rel).read_bytes() == (again / rel).read_bytes(), rel
    assert (mini_testset / "manifest.csv").read_text() == (again / "manifest.csv").read_text()

    # resuming keeps what is there; other options on the same folder are refused
    mtimes = {p: p.stat().st_mtime_ns for p in again.rglob("*.wav")}
    run("create_testset.py", *mini_args(mini_corpus, again))
    assert {p: p.stat().st_mtime_ns for p in again.rglob("*.wav")} == mtimes
    assert (again / "manifest.csv").read_text() == (mini_testset / "manifest.csv").read_text()
    proc = run("create_testset.py", *mini_args(mini_corpus, again)[:-1], 4, ok=False)
    assert proc.returncode != 0 and "made with other options" in proc.stderr


def test_testset_from_assets_folders_with_held_out_speakers(assets, tmp_path):
    speech = assets / "speech" / "librispeech-train-clean-100-excerpt"
    speakers = sorted({p.name.split("-")[0] for p in speech.glob("*.flac")})[:4]
    out = tmp_path / "assets_ts"
    rirs = tmp_path / "rirs"  # the four WAV RIRs only (rir/ also holds 56 measured FLAC ones)
    rirs.mkdir()
    for wav in sorted((assets / "rir").glob("rir*.wav")):
        (rirs / wav.name).symlink_to(wav)
    proc = run(
        "create_testset.py", "--speech_folder", speech, "--noise_folder", assets / "noise",
        "--rir_folder", rirs, "--output_folder", out, "--crop_duration", 4,
        "--held_out_speakers", ",".join(speakers),
    )  # fmt: skip
    rows = read_rows(out / "manifest.csv")
    assert {r["speaker"] for r in rows} == set(speakers) and len(rows) == 4
    assert "RIRs: 4 found, 1 kept" in proc.stderr  # rir1 (T60 0.62 s); the others are outside
    for r in rows:
        assert r["rir"] == "rir1" and float(r["duration"]) == pytest.approx(4.0)
        noisy, rev = read_audio(out / r["noisy"]), read_audio(out / r["reverberant"])
        assert abs(float(snr_db(rev, noisy - rev)) - float(r["snr"])) < 0.5


def test_bad_layout_names_the_expected_one(tmp_path, assets):
    (tmp_path / "empty").mkdir()
    proc = run(
        "create_testset.py", "--vctk_folder", tmp_path / "empty", "--noise_folder", assets / "noise",
        "--rir_folder", assets / "rir", "--output_folder", tmp_path / "o", ok=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "wav48_silence_trimmed" in proc.stderr and str(tmp_path / "empty") in proc.stderr


def test_evaluate_all_metrics_tables_plot_and_resume(mini_testset, tmp_path, assets):
    out = tmp_path / "eval"
    args = [
        "--manifest", mini_testset / "manifest.csv", "--output_dir", out,
        "--system", f"reverberant={mini_testset / 'reverberant'}",
        "--nisqa_path", assets / "nisqa" / "nisqa.tar", "--max_files", 5,
    ]  # fmt: skip
    run("evaluate.py", *args)
    n = min(5, len(read_rows(mini_testset / "manifest.csv")))
    rows = read_rows(out / "per_file.csv")
    assert len(rows) == 3 * n and [r["system"] for r in rows[:: n]] == ["distorted", "reverberant", "clean"]
    metrics = ["stoi", "pesq", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "nisqa_mos", "nisqa_nois",
               "nisqa_dis", "nisqa_col", "nisqa_loud", "spk_cs"]  # fmt: skip
    for r in rows:
        assert r["missing"] == "", r
        assert all(0.0 < float(r[m]) <= 5.0 for m in metrics), r

    def mean(system, metric):
        vals = [float(r[metric]) for r in rows if r["system"] == system]
        return sum(vals) / len(vals)

    assert mean("clean", "stoi") == pytest.approx(1.0, abs=1e-6)
    assert mean("clean", "spk_cs") == pytest.approx(1.0, abs=1e-6)
    assert mean("distorted", "stoi") < mean("reverberant", "stoi") < 1.0
    assert mean("distorted", "dnsmos_ovrl") < mean("clean", "dnsmos_ovrl")

    per_snr = read_rows(out / "per_snr.csv")
    snrs_present = {float(r["snr"]) for r in rows}
    assert len(per_snr) == 3 * len(snrs_present)
    assert sum(int(r["n"]) for r in per_snr if r["system"] == "distorted") == n

    table, per_snr_md = (out / "table.md").read_text().split("## Per SNR")
    lines = [ln for ln in table.splitlines() if ln.startswith("| ")]
    assert per_snr_md.count("| distorted |") == len(snrs_present)
    assert lines[0].startswith("| system | STOI | PESQ | DNSMOS OVRL | DNSMOS SIG | DNSMOS BAK | NISQA MOS")
    assert [ln.split(" | ")[0][2:] for ln in lines[1:]] == ["distorted", "reverberant", "clean"]
    assert lines[-1].startswith("| clean | 1.000 |") and "sig_bak_ovr.onnx" in table
    png = (out / "metrics_vs_snr.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000

    # resume: nothing is scored again; a new metric choice only adds what is absent
    before = (out / "per_file.csv").read_text()
    proc = run("evaluate.py", *args)
    assert f"0 rows to score ({3 * n} already scored)" in proc.stderr
    assert (out / "per_file.csv").read_text() == before


def test_evaluate_reports_a_missing_model_as_nan_with_reason(mini_testset, tmp_path):
    out = tmp_path / "eval_missing"
    run(
        "evaluate.py", "--manifest", mini_testset / "manifest.csv", "--output_dir", out,
        "--metrics", "stoi,nisqa", "--nisqa_path", tmp_path / "none" / "nisqa.tar", "--max_files", 2,
    )  # fmt: skip
    rows = read_rows(out / "per_file.csv")
    assert len(rows) == 4
    for r in rows:
        assert r["nisqa_mos"] == "nan" and "nisqa: NISQA: weights not found" in r["missing"]
        assert float(r["stoi"]) > 0
    table = (out / "table.md").read_text()
    assert "| distorted |" in table and "n/a" in table and "nisqa: n/a, NISQA: weights not found" in table


def test_evaluate_enhances_with_a_packaged_model_and_the_peers(mini_testset, tmp_path, tiny_model_dir):
    out = tmp_path / "eval_systems"
    run(
        "evaluate.py", "--manifest", mini_testset / "manifest.csv", "--output_dir", out,
        "--metrics", "stoi,pesq", "--model", f"vocoder={tiny_model_dir}",
        "--peer", "rnnoise", "--peer", "spectral_gating", "--max_files", 3,
    )  # fmt: skip
    rows = read_rows(out / "per_file.csv")
    assert {r["system"] for r in rows} == {"distorted", "vocoder", "rnnoise", "spectral_gating", "clean"}
    assert len(rows) == 5 * 3
    for system in ("vocoder", "rnnoise", "spectral_gating"):
        files = sorted((out / "enhanced" / system).glob("*.wav"))
        assert len(files) == 3 and all(audio_info(f)[0] == 16000 for f in files)
    assert all(0 <= float(r["stoi"]) <= 1 for r in rows if r["stoi"] != "nan")
    table = (out / "table.md").read_text()
    assert "| vocoder |" in table and "| rnnoise |" in table
