"""The VCTK-NOISEX evaluation recipe: create_testset.py on the mini corpus and on the real
assets, then evaluate.py with every metric, run as a user runs them (subprocesses)."""

import csv
import json
import re
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
    assert len(rows) == 3 * n and [r["system"] for r in rows[::n]] == ["distorted", "reverberant", "clean"]
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

    table, rest = (out / "table.md").read_text().split("## Paired differences")
    diffs, per_snr_md = rest.split("## Per SNR")
    lines = [ln for ln in table.splitlines() if ln.startswith("| ")]
    assert per_snr_md.count("| distorted |") == len(snrs_present)
    assert lines[0].startswith("| system | STOI | PESQ | DNSMOS OVRL | DNSMOS SIG | DNSMOS BAK | NISQA MOS")
    assert [ln.split(" | ")[0][2:] for ln in lines[1:]] == ["distorted", "reverberant", "clean"]
    assert lines[-1].startswith("| clean | 1.000 ± 0.000 |") and "sig_bak_ovr.onnx" in table
    assert " ± " in lines[1] and "can fall outside 1-5" in table
    assert "| reverberant | +" in diffs and "to the unprocessed input (distorted)" in diffs
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


@pytest.fixture(scope="module")
def evaluated_systems(mini_testset, tmp_path_factory, tiny_model_dir):
    """evaluate.py with a packaged model and two peers on 3 files (STOI, PESQ): its output folder."""
    out = tmp_path_factory.mktemp("eval") / "eval_systems"
    run(
        "evaluate.py", "--manifest", mini_testset / "manifest.csv", "--output_dir", out,
        "--metrics", "stoi,pesq", "--model", f"vocoder={tiny_model_dir}",
        "--peer", "rnnoise", "--peer", "spectral_gating", "--max_files", 3, "--listen_per_snr", 1,
    )  # fmt: skip
    return out


def test_evaluate_enhances_with_a_packaged_model_and_the_peers(evaluated_systems):
    out = evaluated_systems
    rows = read_rows(out / "per_file.csv")
    assert {r["system"] for r in rows} == {"distorted", "vocoder", "rnnoise", "spectral_gating", "clean"}
    assert len(rows) == 5 * 3
    for system in ("vocoder", "rnnoise", "spectral_gating"):
        files = sorted((out / "enhanced" / system).glob("*.wav"))
        assert len(files) == 3 and all(audio_info(f)[0] == 16000 for f in files)
    assert all(0 <= float(r["stoi"]) <= 1 for r in rows if r["stoi"] != "nan")
    table = (out / "table.md").read_text()
    assert "| vocoder |" in table and "| rnnoise |" in table


def test_evaluate_peer_choices_are_every_peer():
    from speechbrain_sslse.peers import PEERS

    proc = run("evaluate.py", "--help")
    for name in PEERS:
        assert name in proc.stdout
    proc = run("evaluate.py", "--manifest", "m.csv", "--output_dir", "o", "--peer", "no_such_peer", ok=False)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_the_peers_cache_key_covers_every_file_of_the_peers_package(tmp_path):
    """A peer's enhanced files are reused only under the checksum of all of ``speechbrain_sslse/peers/``
    (hashed in sorted order): editing any one of its files, or adding one, changes the key."""
    import shutil

    from recipe_helpers import load_recipe_module

    evaluate = load_recipe_module("evaluation_evaluate", RECIPE / "evaluate.py")
    package = evaluate.peers_code_path()
    assert package.is_dir() and (package / "__init__.py").is_file()
    modules = sorted(p.name for p in package.glob("*.py"))
    assert len(modules) >= 4, modules  # __init__ and the peers' modules
    provenance = evaluate.peer_provenance("nsnet2")
    assert provenance["path"] == str(package) and provenance["sha256"] == evaluate.peers_code_checksum()
    copy = tmp_path / "peers"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    key = evaluate.peers_code_checksum(copy)
    assert key == provenance["sha256"]  # the files' names and contents, not where they are
    seen = {key}
    for name in modules:
        original = (copy / name).read_bytes()
        (copy / name).write_bytes(original + b"\n# edited\n")
        edited = evaluate.peers_code_checksum(copy)
        assert edited not in seen, f"editing {name} left the key unchanged"
        seen.add(edited)
        (copy / name).write_bytes(original)
    assert evaluate.peers_code_checksum(copy) == key
    (copy / "extra.py").write_text("X = 1\n")
    assert evaluate.peers_code_checksum(copy) not in seen


# --- significance: bootstrap intervals of means and of paired differences ---


def test_bootstrap_interval_of_a_known_distribution():
    import numpy as np

    from speechbrain_sslse.metrics.significance import bootstrap_mean_ci

    rng = np.random.default_rng(1)
    x = rng.normal(0.5, 0.1, size=400)
    iv = bootstrap_mean_ci(x)
    assert iv.n == 400 and iv.mean == pytest.approx(float(x.mean()))
    assert iv.lo < 0.5 < iv.hi  # covers the true mean
    assert iv.hi - iv.lo == pytest.approx(2 * 1.96 * 0.1 / np.sqrt(400), rel=0.2)  # normal-theory width
    assert bootstrap_mean_ci(x) == iv  # seeded: the same interval every time
    # coverage over repeated test sets of 30 files: about 95% of the intervals hold the true mean
    covered = [bootstrap_mean_ci(rng.normal(0.0, 1.0, 30), n_resamples=500) for _ in range(300)]
    coverage = np.mean([c.lo <= 0.0 <= c.hi for c in covered])
    assert 0.88 <= coverage <= 0.99, coverage
    # NaN left out; one file: a mean, no interval; none: NaN
    one = bootstrap_mean_ci([float("nan"), 0.7])
    assert (one.mean, one.n) == (0.7, 1) and np.isnan(one.lo) and np.isnan(one.hi)
    assert bootstrap_mean_ci([]).n == 0 and np.isnan(bootstrap_mean_ci([]).mean)


def test_paired_difference_intervals():
    import numpy as np

    from speechbrain_sslse.metrics.significance import paired_difference_ci

    rng = np.random.default_rng(2)
    a = rng.uniform(0.6, 0.95, size=30)
    same = paired_difference_ci(a, a.copy())
    assert (same.mean, same.lo, same.hi, same.n) == (0.0, 0.0, 0.0, 30)  # identical systems
    shift = paired_difference_ci(a + 0.05, a)
    assert shift.mean == pytest.approx(0.05) and shift.hi - shift.lo < 1e-9
    # a 0.02 gain on 30 files: noise of 0.1 per file hides it, noise of 0.005 does not
    noise = rng.normal(0, 1.0, 30)
    noise = (noise - noise.mean()) / noise.std()  # zero mean: the gain is exactly 0.02
    noisy = paired_difference_ci(a + 0.02 + 0.1 * noise, a)
    assert noisy.mean == pytest.approx(0.02) and noisy.lo < 0.0 < noisy.hi
    clear = paired_difference_ci(a + 0.02 + 0.005 * noise, a)
    assert 0.0 < clear.lo < 0.02 < clear.hi
    # pairing: the per-file difference, not the difference of two independent means
    b = a - 0.01
    assert paired_difference_ci(a, b).lo > 0.0
    # ids pair dicts; NaN on either side leaves the file out
    d = paired_difference_ci({"x": 1.0, "y": float("nan"), "z": 0.5}, {"x": 0.5, "y": 0.1, "z": 0.0})
    assert (d.mean, d.n) == (0.5, 2)
    with pytest.raises(ValueError, match="equal counts"):
        paired_difference_ci([1.0, 2.0], [1.0])


def test_tables_carry_intervals_and_paired_differences(evaluated_systems):
    out = evaluated_systems
    rows = read_rows(out / "per_file.csv")
    ci = read_rows(out / "table_ci.csv")
    assert {r["metric"] for r in ci} == {"stoi", "pesq"}
    for r in ci:
        values = [float(x[r["metric"]]) for x in rows if x["system"] == r["system"]]
        values = [v for v in values if v == v]  # NaN left out
        assert float(r["mean"]) == pytest.approx(sum(values) / len(values)) and int(r["n"]) == len(values)
        assert float(r["lo"]) <= float(r["mean"]) <= float(r["hi"])
    clean = [r for r in ci if r["system"] == "clean" and r["metric"] == "stoi"][0]
    assert float(clean["lo"]) == pytest.approx(1.0) and float(clean["hi"]) == pytest.approx(1.0)

    diffs = read_rows(out / "differences.csv")
    against = {(d["system"], d["against"], d["metric"]): d for d in diffs}
    for system in ("vocoder", "rnnoise", "spectral_gating"):
        assert (system, "distorted", "stoi") in against
    best = {m: max(("rnnoise", "spectral_gating"), key=lambda s: float(against[s, "distorted", m]["mean"]))
            for m in ("stoi", "pesq")}  # fmt: skip
    for metric, peer in best.items():
        d = against["vocoder", "best peer", metric]
        assert d["reference_system"] == peer and (peer, "best peer", metric) not in against
        per_file = {r["id"]: float(r[metric]) for r in rows if r["system"] == "vocoder"}
        other = {r["id"]: float(r[metric]) for r in rows if r["system"] == peer}
        diff = [per_file[k] - other[k] for k in per_file]
        diff = [v for v in diff if v == v]
        assert float(d["mean"]) == pytest.approx(sum(diff) / len(diff))
        assert float(d["lo"]) <= float(d["mean"]) <= float(d["hi"])

    table = (out / "table.md").read_text()
    main_table = table.split("## Paired differences")[0]
    assert all(" ± " in ln for ln in main_table.splitlines() if ln.startswith("| vocoder |"))
    assert "| *best peer* |" in table and "### Paired difference to the best peer" in table
    per_snr = read_rows(out / "per_snr.csv")
    for r in per_snr:  # one file per SNR here: a mean without an interval, shown without "±"
        if int(r["n"]) == 1:
            assert r["stoi_lo"] == r["stoi_hi"] == "nan" and float(r["stoi"]) == float(r["stoi"])
        else:
            assert float(r["stoi_lo"]) <= float(r["stoi"]) <= float(r["stoi_hi"])
    per_snr_md = table.split("## Per SNR")[1]
    assert "| vocoder |" in per_snr_md and (" ± " in per_snr_md) == any(int(r["n"]) > 1 for r in per_snr)


# --- the listening page, rendered by a real browser ---


def _chromium():
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-headless-shell")


def _browser(page, tmp_path, screenshot=None):
    """Headless Chromium on ``page``: the DOM after the page's scripts ran (and a PNG of it)."""
    import os
    import signal

    cmd = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,2000",
        "--virtual-time-budget=20000", "--dump-dom",
    ]  # fmt: skip
    if screenshot:
        cmd.append(f"--screenshot={screenshot}")
    pipe = subprocess.PIPE
    cmd.append(page.as_uri())
    proc = subprocess.Popen(cmd, stdout=pipe, stderr=pipe, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=600)  # seconds when idle; a loaded machine is much slower
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # chromium and its helper processes
        proc.communicate()
        raise
    return out, err


def test_listening_page_renders_offline_in_chromium(evaluated_systems, tmp_path):
    from html.parser import HTMLParser

    if _chromium() is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
    out = evaluated_systems
    page = out / "report" / "index.html"
    assert page.is_file()

    class Sources(HTMLParser):
        def __init__(self):
            super().__init__()
            self.audio, self.img, self.tables, self.links = [], [], 0, []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "audio":
                self.audio.append(attrs["src"])
            elif tag == "img":
                self.img.append(attrs["src"])
            elif tag == "table":
                self.tables += 1
            for key in ("src", "href"):
                if key in attrs:
                    self.links.append(attrs[key])

    parsed = Sources()
    parsed.feed(page.read_text())
    items = read_rows(out / "per_file.csv")
    snrs = {r["snr"] for r in items}
    systems = ["distorted", "vocoder", "rnnoise", "spectral_gating", "clean"]
    # one file per SNR (--listen_per_snr 1), every system side by side: a player and a spectrogram each
    assert len(parsed.audio) == len(snrs) * len(systems)
    assert len(parsed.img) == len(parsed.audio) + 1 and "metrics_vs_snr.png" in parsed.img
    assert parsed.tables >= 3  # results, paired differences, per SNR
    for link in parsed.links:  # offline: relative paths inside report/, each file there
        assert "://" not in link and not link.startswith("/") and ".." not in link, link
        assert (out / "report" / link).is_file(), link
    for src in parsed.audio:
        assert audio_info(out / "report" / src)[0] == 16000

    # the browser loads every image and recording (the page's own check) and shows the tables
    png = tmp_path / "page.png"
    dom, err = _browser(page, tmp_path, screenshot=png)
    assert "<table>" in dom and "± " in dom, err[-2000:]
    assert "Paired difference to the best peer" in dom
    status = re.search(r'<p id="load-status"([^>]*)>([^<]*)<', dom)
    assert status, dom[-2000:]
    attrs = dict(re.findall(r'data-([a-z]+)="([^"]*)"', status.group(1)))
    assert attrs["ok"] == "true", status.group(2)
    assert int(attrs["audio"]) == len(parsed.audio) and int(attrs["images"]) == len(parsed.img)
    assert png.is_file(), err[-2000:]
    import matplotlib.image

    pixels = matplotlib.image.imread(png)
    assert pixels.shape[:2] == (2000, 1280) and pixels.std() > 0.05  # a rendered page, not a blank one

    # a missing file is reported by the page itself
    victim = out / "report" / parsed.audio[0]
    saved = victim.read_bytes()
    victim.unlink()
    try:
        dom, _ = _browser(page, tmp_path)
    finally:
        victim.write_bytes(saved)
    assert 'data-ok="false"' in dom and parsed.audio[0] in dom


# --- results keyed on the model's checksum ---


def _perturb_model(model_dir):
    import torch

    path = model_dir / "vocoder.ckpt"
    state = torch.load(path, weights_only=True, map_location="cpu")
    gen = torch.Generator().manual_seed(0)
    for key, value in state.items():
        if torch.is_tensor(value) and value.is_floating_point() and key != "encoder.fingerprint":
            state[key] = value + 0.05 * torch.randn(value.shape, generator=gen)
    torch.save(state, path)


def test_a_changed_model_is_enhanced_and_scored_again(mini_testset, tmp_path, tiny_model_dir):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    out = tmp_path / "eval_provenance"
    args = [
        "--manifest", mini_testset / "manifest.csv", "--output_dir", out, "--metrics", "stoi",
        "--model", f"mine={model}", "--max_files", 2, "--listen_per_snr", 0, "--precision", "fp32",
    ]  # fmt: skip
    run("evaluate.py", *args)
    enhanced = sorted((out / "enhanced" / "mine").glob("*.wav"))
    first = {p.name: p.read_bytes() for p in enhanced}
    mtimes = {p.name: p.stat().st_mtime_ns for p in enhanced}
    info = json.loads((out / "model_info.json").read_text())["systems"]["mine"]
    assert info["kind"] == "model" and info["path"] == str(model.resolve()) and len(info["sha256"]) == 64
    stamp = json.loads((out / "enhanced" / "mine" / "source.json").read_text())
    assert stamp["sha256"] == info["sha256"]
    table = (out / "table.md").read_text()
    assert f"model folder `{model.resolve()}` (sha256 of its files {info['sha256'][:12]}; fp32)" in table
    assert info["precision"] == "fp32"
    rows = [r for r in read_rows(out / "per_file.csv") if r["system"] == "mine"]
    assert len(rows) == 2 and all(r["system_sha256"] == info["sha256"] for r in rows)

    # the same model: everything reused
    proc = run("evaluate.py", *args)
    assert "0 rows to score (6 already scored)" in proc.stderr
    assert {p.name: p.stat().st_mtime_ns for p in enhanced} == mtimes

    # the model card rewritten (ship_model.py adds the test results): still the same model
    (model / "README.md").write_text((model / "README.md").read_text() + "\n## Test results\n")
    proc = run("evaluate.py", *args)
    assert "0 rows to score (6 already scored)" in proc.stderr
    assert {p.name: p.stat().st_mtime_ns for p in enhanced} == mtimes

    # the same model in bf16: another version of it, enhanced and scored again; back in fp32 likewise
    proc = run("evaluate.py", *args[:-1], "bf16")
    assert "enhancing them again" in proc.stderr and "2 rows to score (4 already scored)" in proc.stderr
    rows = [r for r in read_rows(out / "per_file.csv") if r["system"] == "mine"]
    assert all(r["system_sha256"] == info["sha256"] + ":bf16" for r in rows)
    proc = run("evaluate.py", *args)
    assert "2 rows to score (4 already scored)" in proc.stderr

    # another model under the same folder and name: enhanced again, scored again
    _perturb_model(model)
    proc = run("evaluate.py", *args)
    assert "enhancing them again" in proc.stderr and "2 rows to score (4 already scored)" in proc.stderr
    new_info = json.loads((out / "model_info.json").read_text())["systems"]["mine"]
    assert new_info["sha256"] != info["sha256"]
    second = {p.name: p.read_bytes() for p in sorted((out / "enhanced" / "mine").glob("*.wav"))}
    assert second.keys() == first.keys() and all(second[k] != first[k] for k in first)
    rows = [r for r in read_rows(out / "per_file.csv") if r["system"] == "mine"]
    assert len(rows) == 2 and all(r["system_sha256"] == new_info["sha256"] for r in rows)
    assert new_info["sha256"][:12] in (out / "table.md").read_text()

    # files written by an unrecorded model (no source.json) are not trusted either
    (out / "enhanced" / "mine" / "source.json").unlink()
    proc = run("evaluate.py", *args)
    assert "an unrecorded model (no source.json)" in proc.stderr
