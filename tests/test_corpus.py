"""The embedded mini corpus: determinism, alignments, layouts read back, T60s, noises, real speech, CLI."""

import hashlib
import json
import multiprocessing
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_sslse.audio import audio_info, read_audio, write_audio
from speechbrain_sslse.corpus import (
    CORPUS_LAYOUTS,
    CorpusError,
    corpus_config,
    ensure_corpus,
    generate_corpus,
    read_meta,
)
from speechbrain_sslse.corpus.cli import main as cli_main
from speechbrain_sslse.corpus.espeak import EVENT_PHONEME, EVENT_WORD, private_espeak
from speechbrain_sslse.corpus.generate import LOCK_NAME, MARKER_NAME, META_NAME, corpus_lock
from speechbrain_sslse.corpus.noise import NOISE_TYPES, NOISEX_NAMES
from speechbrain_sslse.corpus.speakers import Speaker
from speechbrain_sslse.corpus.text import SA1, words
from speechbrain_sslse.data import layouts
from speechbrain_sslse.data.mixing import loop_to_length, mix_at_snr, reverberate, snr_db
from speechbrain_sslse.data.rir import measure_t60

ROOT = Path(__file__).resolve().parents[1]
SKIP = {META_NAME, MARKER_NAME, LOCK_NAME}


def _hashes(root):
    root = Path(root)
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in SKIP
    }


def _meta_without_timing(root):
    meta = read_meta(root)
    for key in ("generation_seconds", "stage_seconds", "created_unix"):
        meta.pop(key)
    return meta


def _timit_items(root):
    return layouts.read_timit(root / "TIMIT", "TRAIN") + layouts.read_timit(root / "TIMIT", "TEST")


@pytest.fixture(scope="module")
def seed1_corpus(tmp_path_factory):
    """A tiny corpus with seed 1, generated through the command line (in-process)."""
    out = tmp_path_factory.mktemp("corpus_seed1")
    status = cli_main(["--out", str(out), "--size", "tiny", "--seed", "1", "--quiet"])
    return out, status


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_identical_files(mini_corpus, tmp_path):
    again = generate_corpus(tmp_path / "again", size="tiny", seed=0, progress=False)
    first, second = _hashes(mini_corpus), _hashes(again)
    assert len(first) > 100
    assert first == second
    assert _meta_without_timing(mini_corpus) == _meta_without_timing(again)


def test_different_seed_gives_different_files(mini_corpus, seed1_corpus):
    out, status = seed1_corpus
    assert status == 0
    a, b = _hashes(mini_corpus), _hashes(out)
    audio = [k for k in a.keys() & b.keys() if k.lower().endswith((".wav", ".flac"))]
    same = [k for k in audio if a[k] == b[k]]
    assert audio and len(same) <= 0.05 * len(audio), same[:5]


# ---------------------------------------------------------------- layouts


def test_every_layout_reads_back_at_its_rate(mini_corpus):
    root = mini_corpus
    meta = read_meta(root)
    assert set(CORPUS_LAYOUTS) == set(meta["layouts"])
    dns = layouts.read_dns(root / "DNS")
    config = corpus_config("tiny")
    assert len(dns["rirs"]) == config["dns_rirs"]
    assert all(r["t60"] is not None and r["c50"] is not None and r["channel"] == 0 for r in dns["rirs"])
    assert any("SLR26/simulated_rirs_16k" in r["path"] for r in dns["rirs"])
    assert any("SLR28/RIRS_NOISES/real_rirs_isotropic_noises" in r["path"] for r in dns["rirs"])
    vctk = layouts.read_vctk(root / "VCTK")
    noisex = layouts.read_noisex(root / "NOISEX")
    mit = layouts.read_mit_ir(root / "MIT_IR")
    val_train = layouts.read_valentini(root / "Valentini", "train")
    val_test = layouts.read_valentini(root / "Valentini", "test")
    demand = layouts.read_demand(root / "DEMAND")
    timit_train = layouts.read_timit(root / "TIMIT", "TRAIN")
    timit_test = layouts.read_timit(root / "TIMIT", "TEST")
    assert len(mit) == config["mit_rirs"] and len(demand) == config["demand_environments"]
    expected = [
        (dns["clean"], 16000),
        (dns["noise"], 16000),
        ([r["path"] for r in dns["rirs"]], 16000),
        ([v["path"] for v in vctk], 48000),
        ([n["path"] for n in noisex], 19980),
        ([m["path"] for m in mit], 32000),
        ([v["path"] for v in val_train + val_test], 48000),
        ([d["path"] for d in demand], 16000),
        ([t["wav"] for t in timit_train + timit_test], 16000),
    ]
    for paths, rate in expected:
        assert paths
        assert {audio_info(p)[0] for p in paths} == {rate}
        wav = read_audio(paths[0])
        assert wav.ndim == 1 and wav.shape[0] > 1000 and bool(torch.isfinite(wav).all())
    assert {sf.info(t["wav"]).format for t in timit_train} == {"NIST"}
    assert all(v["path"].endswith("_mic1.flac") for v in vctk)
    for v in vctk:  # transcripts beside the audio
        txt = root / "VCTK" / "txt" / v["speaker"] / f"{v['id']}.txt"
        assert txt.read_text().strip()


def test_speaker_split_holds_out_test_speakers(mini_corpus):
    root = mini_corpus
    dns_speakers = {Path(p).parent.name for p in layouts.read_dns(root / "DNS")["clean"]}
    vctk_speakers = {v["speaker"] for v in layouts.read_vctk(root / "VCTK")}
    val_test = {v["speaker"] for v in layouts.read_valentini(root / "Valentini", "test")}
    val_train = {v["speaker"] for v in layouts.read_valentini(root / "Valentini", "train")}
    assert dns_speakers and vctk_speakers and val_test
    assert not dns_speakers & vctk_speakers and not dns_speakers & val_test
    assert val_train == dns_speakers
    split = read_meta(root)["split"]
    assert set(split["train"]) == dns_speakers and set(split["test"]) == vctk_speakers == val_test
    timit_train = {t["speaker"] for t in layouts.read_timit(root / "TIMIT", "TRAIN")}
    timit_test = {t["speaker"] for t in layouts.read_timit(root / "TIMIT", "TEST")}
    assert not timit_train & timit_test
    genders = {t["gender"] for t in layouts.read_timit(root / "TIMIT", "TRAIN")}
    assert genders == {"M", "F"}


# ---------------------------------------------------------------- alignments


def test_timit_segments_tile_and_match_text(mini_corpus):
    items = _timit_items(mini_corpus)
    kinds = {}
    for item in items:
        n = audio_info(item["wav"])[1]
        phn = layouts.read_timit_segments(item["phn"])
        wrd = layouts.read_timit_segments(item["wrd"])
        start, end, text = open(item["txt"]).read().split(" ", 2)
        assert (int(start), int(end)) == (0, n)
        # phones tile the file: ordered, non-empty, contiguous, silence at both ends
        assert phn[0][0] == 0 and phn[-1][1] == n and phn[0][2] == "h#" and phn[-1][2] == "h#"
        assert all(s < e for s, e, _ in phn)
        assert all(a[1] == b[0] for a, b in zip(phn, phn[1:]))
        # words: non-empty, ordered, inside the file, on phone boundaries, the text's words
        assert [w for _, _, w in wrd] == words(text)
        assert all(0 <= s < e <= n for s, e, _ in wrd)
        assert all(a[1] <= b[0] for a, b in zip(wrd, wrd[1:]))
        bounds = {s for s, _, _ in phn} | {e for _, e, _ in phn}
        assert all(s in bounds and e in bounds for s, e, _ in wrd)
        kinds.setdefault(item["speaker"], set()).add(item["utterance"])
    # every speaker reads SA1 (same words) and some SX sentences
    assert all("SA1" in k and any(u.startswith("SX") for u in k) for k in kinds.values())
    sa1 = [i for i in items if i["utterance"] == "SA1"]
    assert len(sa1) == len(kinds)
    assert {tuple(w for _, _, w in layouts.read_timit_segments(i["wrd"])) for i in sa1} == {tuple(words(SA1))}


def test_word_segments_follow_synthesis_events(mini_corpus):
    meta = read_meta(mini_corpus)
    spk = Speaker.from_dict(meta["speakers"]["espeak"][0])
    split = "TEST" if spk.timit_id in meta["split"]["timit_test"] else "TRAIN"
    folder = mini_corpus / "TIMIT" / split / spk.dialect / spk.timit_id
    wrd = layouts.read_timit_segments(folder / "SA1.WRD")
    phn = layouts.read_timit_segments(folder / "SA1.PHN")
    with private_espeak() as es:  # SA1 is the first synthesis of each speaker's fresh instance
        syn = es.synthesize(SA1, **spk.synth_kwargs())
    phone_events = [e for e in syn.events if e.kind == EVENT_PHONEME and not e.name.startswith("_")]
    # one offset (the silence trim) maps every phone event onto a .PHN boundary
    starts = [s for s, _, lab in phn if lab not in ("h#", "pau")]
    shift = starts[0] - phone_events[0].time_ms * 16
    assert len(starts) >= 0.9 * len(phone_events)
    assert all(min(abs(s - (e.time_ms * 16 + shift)) for s in starts) <= 1 for e in phone_events)
    # each word starts at its own first phone event, close to its WORD event
    for ev in (e for e in syn.events if e.kind == EVENT_WORD):
        own = [p for p in phone_events if p.text_position == ev.text_position]
        hits = [w for w in wrd if abs(w[0] - (own[0].time_ms * 16 + shift)) <= 1]
        assert hits and hits[0][2].startswith(ev.name.lower().strip(".,"))
        assert abs(hits[0][0] - (ev.time_ms * 16 + shift)) <= 0.08 * 16000


def test_energy_inside_words_far_above_silence(mini_corpus):
    for item in _timit_items(mini_corpus):
        wav = read_audio(item["wav"]).double().numpy()
        wrd = layouts.read_timit_segments(item["wrd"])
        phn = layouts.read_timit_segments(item["phn"])
        inside = np.concatenate([wav[s:e] for s, e, _ in wrd])
        margin = 160  # 10 ms away from the speech
        silence = np.concatenate([wav[s + margin : e - margin] for s, e, lab in phn if lab == "h#"])
        ratio_db = 10 * np.log10(np.mean(inside**2) / np.mean(silence**2))
        assert ratio_db > 40.0, (item["id"], ratio_db)


# ---------------------------------------------------------------- RIRs


def test_measured_t60_within_15_percent_of_target(mini_corpus):
    meta = read_meta(mini_corpus)
    config = corpus_config("tiny")
    assert len(meta["rirs"]) == config["dns_rirs"] + config["mit_rirs"]
    table = {r["path"]: r["t60"] for r in layouts.read_dns(mini_corpus / "DNS")["rirs"]}
    targets = []
    for rec in meta["rirs"]:
        path = mini_corpus / rec["path"]
        data, rate = sf.read(str(path), dtype="float64")
        assert rate == (16000 if rec["layout"] == "DNS" else 32000)
        t60 = measure_t60(data, rate)
        assert abs(t60 - rec["target_t60"]) / rec["target_t60"] <= 0.15
        assert abs(t60 - rec["measured_t60"]) < 1e-3
        if rec["layout"] == "DNS":
            assert abs(table[str(path)] - t60) < 1e-3
        targets.append(rec["target_t60"])
    assert 0.3 <= min(targets) and max(targets) <= 1.3
    assert max(targets) - min(targets) > 0.5  # spread over the range


# ---------------------------------------------------------------- noise and SNR


def test_noise_types_present_with_their_durations(mini_corpus):
    config = corpus_config("tiny")
    dns = layouts.read_dns(mini_corpus / "DNS")
    by_type = {}
    for p in dns["noise"]:
        rate, frames, _ = audio_info(p)
        by_type.setdefault(Path(p).stem.rsplit("_", 1)[0], 0.0)
        by_type[Path(p).stem.rsplit("_", 1)[0]] += frames / rate
    assert set(by_type) == set(NOISE_TYPES)
    assert all(sec >= config["noise_seconds"] - 1e-3 for sec in by_type.values())
    noisex = {n["name"]: n["path"] for n in layouts.read_noisex(mini_corpus / "NOISEX")}
    assert set(noisex) == set(NOISEX_NAMES.values())
    for path in noisex.values():
        rate, frames, _ = audio_info(path)
        assert frames / rate >= config["noisex_seconds"] - 1e-3
    for env in layouts.read_demand(mini_corpus / "DEMAND"):
        rate, frames, _ = audio_info(env["path"])
        assert frames / rate >= config["demand_seconds"] - 1e-3
    # test noise is another instance than training noise
    a = read_audio(mini_corpus / "DNS" / "noise" / "babble_1.wav").numpy()
    b = read_audio(noisex["babble"]).numpy()
    n = min(len(a), len(b))
    assert abs(np.corrcoef(a[:n], b[:n])[0, 1]) < 0.3


@pytest.fixture(scope="module")
def mix_material(mini_corpus):
    """A corpus utterance (dry and reverberated with a corpus RIR) and every DNS noise, fitted to it."""
    dns = layouts.read_dns(mini_corpus / "DNS")
    speech = read_audio(dns["clean"][0])
    reverberant, _ = reverberate(speech, read_audio(dns["rirs"][0]["path"]))
    noises = [loop_to_length(read_audio(p), speech.shape[0], offset=1234) for p in dns["noise"]]
    return (speech, reverberant), noises


@pytest.mark.parametrize("snr", [-7.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0])
def test_mixing_corpus_speech_and_noise_hits_snr(mix_material, snr):
    cleans, noises = mix_material
    for noise in noises:
        for clean in cleans:
            noisy, _ = mix_at_snr(clean, noise, snr)
            assert abs(float(snr_db(clean, noisy - clean)) - snr) < 0.1


# ---------------------------------------------------------------- real speech


def test_real_speech_mode_writes_every_layout(real_speech, tmp_path):
    src = tmp_path / "speech"
    src.mkdir()
    for path in real_speech[:3]:
        (src / path.name).symlink_to(path)
    out = generate_corpus(
        tmp_path / "real", size="tiny", seed=0, speech_dir=src, progress=False,
        dns_rirs=2, mit_rirs=1, noise_seconds=2.0, noisex_seconds=2.0, demand_seconds=2.0,
    )  # fmt: skip
    meta = read_meta(out)
    assert meta["speech_source"] == "real recordings" and meta["timit_source"].startswith("espeak-ng")
    libri = {"p" + p.name.split("-")[0] for p in real_speech[:3]}
    dns_speakers = {Path(p).parent.name for p in layouts.read_dns(out / "DNS")["clean"]}
    vctk_speakers = {v["speaker"] for v in layouts.read_vctk(out / "VCTK")}
    assert dns_speakers | vctk_speakers == libri and not dns_speakers & vctk_speakers
    assert {v["speaker"] for v in layouts.read_valentini(out / "Valentini", "test")} == vctk_speakers
    assert layouts.read_valentini(out / "Valentini", "train")
    durations = [audio_info(p)[1] / 16000 for p in layouts.read_dns(out / "DNS")["clean"]]
    assert len(durations) > len(dns_speakers) and 1.0 <= min(durations) and max(durations) < 8.0
    assert all(s["gender"] == "U" for s in meta["speakers"]["real"])
    assert layouts.read_timit(out / "TIMIT", "TRAIN") and layouts.read_timit(out / "TIMIT", "TEST")
    assert layouts.read_noisex(out / "NOISEX") and layouts.read_mit_ir(out / "MIT_IR")
    assert layouts.read_demand(out / "DEMAND")


# ---------------------------------------------------------------- ensure_corpus and CLI


def _ensure_in_child(path, queue):
    start = time.time()
    ensure_corpus(path, size="tiny", seed=0)
    queue.put(time.time() - start)


def test_ensure_corpus_reuses_and_waits_for_the_lock(mini_corpus, tmp_path):
    stamp = (mini_corpus / META_NAME).stat().st_mtime_ns
    assert ensure_corpus(mini_corpus, size="tiny", seed=0) == mini_corpus
    assert (mini_corpus / META_NAME).stat().st_mtime_ns == stamp
    # a second process asking for a corpus that another process is generating waits for it,
    # then finds it complete instead of generating it again
    shared = tmp_path / "shared"
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    with corpus_lock(shared):
        child = ctx.Process(target=_ensure_in_child, args=(shared, queue))
        child.start()
        time.sleep(1.0)
        assert child.is_alive()  # blocked on the lock
        shutil.copytree(mini_corpus, shared, dirs_exist_ok=True, ignore=shutil.ignore_patterns(LOCK_NAME))
    child.join(60)
    assert child.exitcode == 0 and queue.get(timeout=5) >= 0.9
    assert read_meta(shared)["created_unix"] == read_meta(mini_corpus)["created_unix"]  # not regenerated


def test_cli_tiny_run_prints_a_summary(seed1_corpus, capsys):
    out, status = seed1_corpus
    assert status == 0
    meta = json.loads((out / META_NAME).read_text())
    assert meta["seed"] == 1 and meta["size"] == "tiny"
    assert cli_main(["--out", str(out), "--size", "tiny", "--seed", "1", "--quiet"]) == 0  # reused
    printed = capsys.readouterr().out
    for word in ("speakers", "TIMIT/TRAIN", "noise", "RIRs", "T60 error", "generation time", str(out)):
        assert word in printed


def test_cli_bad_speech_dir_exits_2_naming_it(tmp_path, capsys):
    missing = tmp_path / "no_such_speech"
    assert cli_main(["--out", str(tmp_path / "o1"), "--speech-dir", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "--speech-dir" in err and len(err.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("not audio")
    assert cli_main(["--out", str(tmp_path / "o2"), "--speech-dir", str(empty)]) == 2
    assert "no audio files" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "1-2-3.wav").write_bytes(b"this is not a wav file at all")
    assert cli_main(["--out", str(tmp_path / "o3"), "--speech-dir", str(bad)]) == 2
    assert "1-2-3.wav" in capsys.readouterr().err
    one = tmp_path / "one_speaker"
    one.mkdir()
    write_audio(one / "7-1-1.wav", torch.zeros(32000), 16000)
    assert cli_main(["--out", str(tmp_path / "o4"), "--speech-dir", str(one)]) == 2
    assert "at least 2" in capsys.readouterr().err
    assert not (tmp_path / "o1").exists()


def test_cli_sizes_are_the_generator_sizes():
    from speechbrain_sslse.corpus import SIZES, cli

    assert set(cli.SIZES) == set(SIZES)


def test_refuses_an_output_folder_holding_other_data(tmp_path):
    (tmp_path / "DNS" / "clean").mkdir(parents=True)
    (tmp_path / "DNS" / "clean" / "keep.wav").write_bytes(b"precious")
    with pytest.raises(CorpusError, match="not written by sslse-corpus"):
        generate_corpus(tmp_path, size="tiny", progress=False)
    assert (tmp_path / "DNS" / "clean" / "keep.wav").read_bytes() == b"precious"


def test_cli_runs_as_a_module():
    missing = "/nonexistent/speech/folder"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "speechbrain_sslse.corpus.cli",
            "--out",
            "/tmp/unused",
            "--speech-dir",
            missing,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 2 and missing in run.stderr
