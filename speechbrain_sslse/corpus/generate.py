"""Generates the embedded mini corpus: speech, noise and RIRs in the real datasets' layouts.

Layout of ``out_dir`` (see :mod:`.writers` for the files inside each)::

    DNS/        clean speech (train speakers), noise, RIRs (SLR26/SLR28 paths) + RIR_table_simple.csv
    VCTK/       48 kHz FLAC of the held-out test speakers, with transcripts
    NOISEX/     one file per noise type at 19.98 kHz (other instances than DNS/noise)
    MIT_IR/     32 kHz RIRs of other rooms than DNS's
    Valentini/  48 kHz clean_trainset_28spk_wav (train speakers), clean_testset_wav (test speakers)
    DEMAND/     <ENV>/ch01.wav environments mixed from the noise generators (other instances)
    TIMIT/      TRAIN (train speakers) and TEST (test speakers): NIST SPHERE + .PHN/.WRD/.TXT
    corpus.json what was generated (written last: its presence marks a complete corpus)

Speakers are split once: the train speakers feed DNS, Valentini's trainset and
TIMIT/TRAIN; the held-out test speakers feed VCTK, Valentini's testset and
TIMIT/TEST, so test sets never share a speaker with DNS training data.

With ``speech_dir`` (a folder of real recordings), DNS, VCTK and Valentini hold
the real speech instead, cut into utterances of a few seconds (speaker = file
name up to the first ``-``, gender unknown, no transcripts); TIMIT needs
alignments, so it stays synthesised by eSpeak NG (corpus.json says so).

Everything is deterministic from ``seed`` (each item has its own generator,
:mod:`.seeding`); generating twice gives identical audio and text files (only the
timing fields of corpus.json differ).
"""

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from ..audio import atomic_path, audio_info, write_audio
from ..data.splits import speaker_of
from . import noise as noises
from . import writers
from .espeak import private_espeak
from .realspeech import SpeechDirError, cut_points, find_speech_files
from .rooms import make_rir, t60_targets
from .seeding import int_seed_for, rng_for
from .speakers import make_speakers, split_speakers
from .speech import synthesize_utterance
from .text import SA1, SA2, SENTENCES, speaker_sentences

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX systems
    fcntl = None

FORMAT_VERSION = 1

CORPUS_LAYOUTS = {
    "DNS": "DNS",
    "VCTK": "VCTK",
    "NOISEX": "NOISEX",
    "MIT_IR": "MIT_IR",
    "Valentini": "Valentini",
    "DEMAND": "DEMAND",
    "TIMIT": "TIMIT",
}

META_NAME = "corpus.json"
MARKER_NAME = ".sslse-corpus"
LOCK_NAME = ".sslse-corpus.lock"

SIZES = {
    "tiny": {
        "num_speakers": 6,
        "sentences_per_speaker": 4,
        "real_speakers": 6,
        "noise_seconds": 6.0,
        "noise_files_per_type": 1,
        "noisex_seconds": 6.0,
        "demand_seconds": 6.0,
        "demand_environments": 4,
        "dns_rirs": 6,
        "mit_rirs": 2,
        "rir_goal_pct": 10.0,
        "test_fraction": 0.25,
    },
    "default": {
        "num_speakers": 32,
        "sentences_per_speaker": 20,
        "real_speakers": None,
        "noise_seconds": 30.0,
        "noise_files_per_type": 2,
        "noisex_seconds": 60.0,
        "demand_seconds": 30.0,
        "demand_environments": 7,
        "dns_rirs": 40,
        "mit_rirs": 20,
        "rir_goal_pct": 5.0,
        "test_fraction": 0.25,
    },
    "large": {
        "num_speakers": 96,
        "sentences_per_speaker": 40,
        "real_speakers": None,
        "noise_seconds": 60.0,
        "noise_files_per_type": 4,
        "noisex_seconds": 180.0,
        "demand_seconds": 120.0,
        "demand_environments": 7,
        "dns_rirs": 120,
        "mit_rirs": 60,
        "rir_goal_pct": 5.0,
        "test_fraction": 0.25,
    },
}


class CorpusError(RuntimeError):
    """The corpus cannot be generated here (bad arguments or an unsafe output folder)."""


def check_seed(seed):
    """Returns ``seed`` as an int in [0, 2**32); anything else is refused.

    Example
    -------
    >>> check_seed(3)
    3
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    speechbrain_sslse.corpus.generate.CorpusError: --seed must be an integer in [0, 4294967295], got -1
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**32:
        raise CorpusError(f"--seed must be an integer in [0, {2**32 - 1}], got {seed!r}")
    return int(seed)


def corpus_config(size="default", **overrides):
    """The generation settings of a size, with overrides.

    Arguments
    ---------
    size : str
        ``tiny``, ``default`` or ``large``.
    **overrides
        Any key of :data:`SIZES` (``num_speakers``, ``sentences_per_speaker``, ``dns_rirs`` ...).
        ``real_speakers=None`` uses every speaker of ``speech_dir``.

    Returns
    -------
    dict

    Example
    -------
    >>> corpus_config("tiny", num_speakers=8)["num_speakers"]
    8
    """
    if size not in SIZES:
        raise CorpusError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    config = dict(SIZES[size])
    unknown = set(overrides) - set(config)
    if unknown:
        raise CorpusError(f"unknown corpus setting(s) {sorted(unknown)}; known: {sorted(config)}")
    config.update(overrides)
    if config["num_speakers"] < 2:
        raise CorpusError("num_speakers must be at least 2 (train and test speakers)")
    if not 1 <= config["sentences_per_speaker"] <= len(SENTENCES) + 2:
        raise CorpusError(f"sentences_per_speaker must be in [1, {len(SENTENCES) + 2}]")
    return config


@contextlib.contextmanager
def corpus_lock(out_dir):
    """Holds an exclusive lock on ``out_dir`` (a ``fcntl`` lock file) across processes.

    Example
    -------
    >>> import tempfile
    >>> with corpus_lock(tempfile.mkdtemp()):
    ...     pass
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / LOCK_NAME, "a+") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def read_meta(out_dir):
    """``corpus.json`` of ``out_dir`` as a dict, or None when absent or unreadable.

    Example
    -------
    >>> read_meta("/nonexistent") is None
    True
    """
    path = Path(out_dir) / META_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _speech_dir_key(speech_dir):
    return None if speech_dir is None else str(Path(speech_dir).expanduser().resolve())


def corpus_matches(out_dir, size, seed, speech_dir, config):
    """True if ``out_dir`` holds a complete corpus generated with these settings.

    Example
    -------
    >>> corpus_matches("/nonexistent", "tiny", 0, None, corpus_config("tiny"))
    False
    """
    meta = read_meta(out_dir)
    if not meta:
        return False
    same = (
        meta.get("format_version") == FORMAT_VERSION
        and meta.get("size") == size
        and meta.get("seed") == int(seed)
        and meta.get("speech_dir") == _speech_dir_key(speech_dir)
        and meta.get("config") == config
    )
    return same and all((Path(out_dir) / sub).is_dir() for sub in CORPUS_LAYOUTS.values())


def _check_speech_dir(speech_dir, config):
    """Lists and checks the real recordings before anything is written."""
    files = find_speech_files(speech_dir)
    for path in files:
        try:
            audio_info(path)
        except Exception as err:
            raise SpeechDirError(
                f"--speech-dir {speech_dir}: {path.name} is not readable audio ({err}); "
                "remove it or convert it to WAV/FLAC"
            ) from err
    names = sorted({speaker_of(p) for p in files})[: config["real_speakers"]]
    if len(names) < 2:
        raise SpeechDirError(
            f"--speech-dir {speech_dir}: found {len(names)} speaker(s), at least 2 are needed (train and "
            "test speakers); a speaker is a file-name prefix before the first '-'"
        )
    return files


MARKER_HEADER = "written by sslse-corpus (speechbrain_sslse.corpus)"


def _layout_files(out_dir):
    """Relative paths (posix) of every file under the layout folders of ``out_dir``."""
    found = set()
    for sub in CORPUS_LAYOUTS.values():
        root = out_dir / sub
        if root.is_dir():
            found.update(p.relative_to(out_dir).as_posix() for p in root.rglob("*") if not p.is_dir())
    return found


def _write_marker(out_dir, status, files=()):
    """The marker file: who wrote the folder, whether generation finished, and the files it wrote."""
    lines = [MARKER_HEADER, f"status: {status}", "files:", *sorted(files)]
    with atomic_path(out_dir / MARKER_NAME) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _files_written(out_dir):
    """The files the generator recorded as its own (None when the marker lists none)."""
    try:
        lines = (out_dir / MARKER_NAME).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    if "files:" not in lines or "status: in progress" in lines:  # (killed before it listed them)
        return None
    return set(lines[lines.index("files:") + 1 :])


def _user_files(out_dir):
    """Files in the layout folders that the generator did not write (to be kept, never deleted)."""
    files = _layout_files(out_dir)
    listed = _files_written(out_dir)
    if listed is not None:
        return sorted(f for f in files - listed if not f.endswith(".part"))
    meta = out_dir / META_NAME
    if meta.is_file():  # a corpus of an older version: what was added after it was complete
        done = meta.stat().st_mtime
        return sorted(f for f in files if (out_dir / f).stat().st_mtime > done + 1.0)
    return []  # a generation killed before it listed its files: everything there is its own


def _prepare_out_dir(out_dir):
    """Removes a previous (complete or partial) corpus from ``out_dir``.

    Refuses (and changes nothing) when the layout folders hold files the generator did
    not write: folders of another dataset, or files a user put inside a corpus.
    """
    ours = (out_dir / MARKER_NAME).is_file() or (out_dir / META_NAME).is_file()
    present = [sub for sub in CORPUS_LAYOUTS.values() if (out_dir / sub).exists()]
    if present and not ours:
        raise CorpusError(
            f"{out_dir} already holds {', '.join(present)} not written by sslse-corpus; "
            "choose an empty or new folder for --out"
        )
    if present:
        user = _user_files(out_dir)
        if user:
            more = f" (and {len(user) - 1} more)" if len(user) > 1 else ""
            raise CorpusError(
                f"{out_dir}: {user[0]}{more} was not written by sslse-corpus, and regenerating the corpus "
                "would delete it; nothing was changed: move such files out of the corpus folders "
                "(or choose another --out)"
            )
    _write_marker(out_dir, "in progress")
    with contextlib.suppress(FileNotFoundError):
        (out_dir / META_NAME).unlink()
    for sub in present:
        shutil.rmtree(out_dir / sub)


class _Stats:
    """Counts what each layout received."""

    def __init__(self):
        self.speech = {}
        self.noise = {}
        self.unique = {"synthesised": [0, 0.0], "real": [0, 0.0]}

    def add_unique(self, kind, seconds):
        self.unique[kind][0] += 1
        self.unique[kind][1] += seconds

    def add_speech(self, key, speaker, seconds):
        entry = self.speech.setdefault(key, {"speakers": set(), "utterances": 0, "seconds": 0.0})
        entry["speakers"].add(speaker)
        entry["utterances"] += 1
        entry["seconds"] += seconds

    def add_noise(self, key, seconds):
        entry = self.noise.setdefault(key, {"files": 0, "seconds": 0.0})
        entry["files"] += 1
        entry["seconds"] += seconds

    def speech_summary(self, key):
        entry = self.speech.get(key, {"speakers": set(), "utterances": 0, "seconds": 0.0})
        return {
            "speakers": len(entry["speakers"]),
            "utterances": entry["utterances"],
            "hours": round(entry["seconds"] / 3600.0, 4),
        }

    def noise_summary(self, key):
        entry = self.noise.get(key, {"files": 0, "seconds": 0.0})
        return {"files": entry["files"], "minutes": round(entry["seconds"] / 60.0, 3)}


def _bar(total, desc, progress):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not progress, unit="file", leave=False, dynamic_ncols=True)


def utterance_plan(speaker_index, num_speakers, per_speaker, seed):
    """What one synthetic speaker reads: ``(name, index, text)`` for SA1, SA2 and SX sentences.

    Example
    -------
    >>> [p[0] for p in utterance_plan(0, 6, 4, seed=0)][:2]
    ['SA1', 'SA2']
    """
    plan = [("SA1", 1, SA1)]
    if per_speaker >= 2:
        plan.append(("SA2", 2, SA2))
    order = rng_for(seed, "sentence-order").permutation(len(SENTENCES))
    n_sx = max(0, per_speaker - 2)
    for k, idx in enumerate(speaker_sentences(speaker_index, num_speakers, n_sx, order)):
        plan.append((f"SX{idx + 1}", 3 + k, SENTENCES[idx]))
    return plan


def _write_synthetic(out_dir, speakers, test_ids, config, seed, stats, progress, timit_only):
    roots = {name: out_dir / sub for name, sub in CORPUS_LAYOUTS.items()}
    per = config["sentences_per_speaker"]
    bar = _bar(len(speakers) * per, "speech (eSpeak NG)", progress)
    for k, spk in enumerate(speakers):
        test = spk.id in test_ids
        split = "TEST" if test else "TRAIN"
        with private_espeak() as es:  # fresh library state per speaker: reproducible audio
            utts = [
                synthesize_utterance(
                    spk, text, name, index, rng_for(seed, "utterance", spk.id, name), espeak=es
                )
                for name, index, text in utterance_plan(k, len(speakers), per, seed)
            ]
        for utt in utts:
            index, text = utt.index, utt.text
            stats.add_unique("synthesised", utt.duration)
            writers.write_timit_utterance(roots["TIMIT"], split, utt)
            stats.add_speech(f"TIMIT/{split}", spk.timit_id, utt.duration)
            if not timit_only:
                if test:
                    writers.write_vctk(roots["VCTK"], spk.id, index, utt.wav, text)
                    writers.write_valentini(roots["Valentini"], "test", spk.id, index, utt.wav)
                    stats.add_speech("VCTK", spk.id, utt.duration)
                    stats.add_speech("Valentini/test", spk.id, utt.duration)
                else:
                    writers.write_dns_clean(roots["DNS"], spk.id, index, utt.wav)
                    writers.write_valentini(roots["Valentini"], "train", spk.id, index, utt.wav)
                    stats.add_speech("DNS/clean", spk.id, utt.duration)
                    stats.add_speech("Valentini/train", spk.id, utt.duration)
            bar.update(1)
    bar.close()


def _real_speaker_ids(names):
    ids, taken = {}, set()
    for name in names:
        base = "p" + "".join(ch for ch in name if ch.isalnum())
        uid, n = base, 1
        while uid in taken:
            n += 1
            uid = f"{base}x{n}"
        taken.add(uid)
        ids[name] = uid
    return ids


def _write_real(out_dir, speech_dir, files, config, stats, progress):
    from ..audio import read_audio

    by_speaker = {}
    for path in files:
        by_speaker.setdefault(speaker_of(path), []).append(path)
    names = sorted(by_speaker)
    if config["real_speakers"] is not None:
        names = names[: config["real_speakers"]]
    ids = _real_speaker_ids(names)
    n_test = min(max(2, int(round(len(names) * config["test_fraction"]))), len(names) - 1)
    test_names = set(names[-n_test:])
    roots = {name: out_dir / sub for name, sub in CORPUS_LAYOUTS.items()}
    speakers = []
    bar = _bar(sum(len(by_speaker[n]) for n in names), "speech (real recordings)", progress)
    for name in names:
        uid, test, index = ids[name], name in test_names, 0
        for path in by_speaker[name]:
            wav = read_audio(path).numpy()
            for start, end in cut_points(wav, 16000):
                index += 1
                piece = wav[start:end]
                seconds = len(piece) / 16000.0
                stats.add_unique("real", seconds)
                if test:
                    writers.write_vctk(roots["VCTK"], uid, index, piece)
                    writers.write_valentini(roots["Valentini"], "test", uid, index, piece)
                    stats.add_speech("VCTK", uid, seconds)
                    stats.add_speech("Valentini/test", uid, seconds)
                else:
                    writers.write_dns_clean(roots["DNS"], uid, index, piece)
                    writers.write_valentini(roots["Valentini"], "train", uid, index, piece)
                    stats.add_speech("DNS/clean", uid, seconds)
                    stats.add_speech("Valentini/train", uid, seconds)
            bar.update(1)
        speakers.append(
            {
                "id": uid,
                "name": name,
                "gender": "U",
                "source": "real",
                "split": "test" if test else "train",
                "utterances": index,
            }
        )
    bar.close()
    if not any(s["utterances"] for s in speakers if s["split"] == "test") or not any(
        s["utterances"] for s in speakers if s["split"] == "train"
    ):
        raise SpeechDirError(
            f"--speech-dir {speech_dir}: the recordings are too short (each needs at least 1 s of speech)"
        )
    return speakers


def _write_noises(out_dir, config, seed, stats, progress):
    dns = out_dir / CORPUS_LAYOUTS["DNS"]
    noisex = out_dir / CORPUS_LAYOUTS["NOISEX"]
    demand = out_dir / CORPUS_LAYOUTS["DEMAND"]
    envs = sorted(noises.DEMAND_ENVIRONMENTS)[: config["demand_environments"]]
    n_files = config["noise_files_per_type"]
    bar = _bar(len(noises.NOISE_TYPES) * (n_files + 1) + len(envs), "noise", progress)
    for kind in noises.NOISE_TYPES:
        for n in range(1, n_files + 1):
            wav = noises.make_noise(
                kind, config["noise_seconds"], writers.DNS_RATE, rng_for(seed, "DNS", kind, n)
            )
            write_audio(writers.dns_noise_path(dns, kind, n), wav, writers.DNS_RATE)
            stats.add_noise("DNS/noise", config["noise_seconds"])
            bar.update(1)
        wav = noises.make_noise(
            kind, config["noisex_seconds"], writers.NOISEX_RATE, rng_for(seed, "NOISEX", kind)
        )
        write_audio(writers.noisex_path(noisex, noises.NOISEX_NAMES[kind]), wav, writers.NOISEX_RATE)
        stats.add_noise("NOISEX", config["noisex_seconds"])
        bar.update(1)
    for env in envs:
        wav = noises.make_environment(
            env,
            config["demand_seconds"],
            writers.DEMAND_RATE,
            lambda kind, env=env: rng_for(seed, "DEMAND", env, kind),
        )
        write_audio(writers.demand_path(demand, env), wav, writers.DEMAND_RATE)
        stats.add_noise("DEMAND", config["demand_seconds"])
        bar.update(1)
    bar.close()
    return envs


def _write_rirs(out_dir, config, seed, progress):
    dns = out_dir / CORPUS_LAYOUTS["DNS"]
    mit = out_dir / CORPUS_LAYOUTS["MIT_IR"]
    n_dns, n_mit = config["dns_rirs"], config["mit_rirs"]
    n_slr28 = max(1, int(round(0.2 * n_dns))) if n_dns >= 2 else 0
    records, table = [], []
    bar = _bar(n_dns + n_mit, "RIRs (pyroomacoustics)", progress)
    for layout, count, rate in (("DNS", n_dns, writers.DNS_RATE), ("MIT_IR", n_mit, writers.MIT_IR_RATE)):
        rng = rng_for(seed, layout, "t60")
        targets = list(rng.permutation(t60_targets(count, rng))) if count else []
        for i, target in enumerate(targets):
            root = dns if layout == "DNS" else mit
            tmp = root / f".rir_{i:03d}.tmp.wav"
            info = make_rir(
                tmp,
                float(target),
                rate,
                rng_for(seed, layout, "room", i),
                int_seed_for(seed, layout, i),
                goal=config["rir_goal_pct"] / 100.0,
            )
            if layout == "MIT_IR":
                final = writers.mit_ir_path(mit, i + 1, info.dims, rng_for(seed, layout, "name", i))
            elif i < count - n_slr28:
                final = writers.dns_slr26_path(dns, i + 1, info.dims)
            else:
                final = writers.dns_slr28_path(dns, i + 1 - (count - n_slr28))
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            if layout == "DNS":
                table.append(
                    {
                        "wavfile": final.relative_to(dns).as_posix(),
                        "channel": 1,
                        "T60_WB": round(info.measured_t60, 4),
                        "C50_WB": round(info.c50, 3),
                        "isRealRIR": 0,
                    }
                )
            records.append(
                {"layout": layout, "path": final.relative_to(out_dir).as_posix(), **info.to_dict()}
            )
            bar.update(1)
    bar.close()
    if table:
        writers.write_rir_table(dns, table)
    return records, n_slr28


@contextlib.contextmanager
def _torch_threads(n):
    old = torch.get_num_threads()
    torch.set_num_threads(n)  # small resampling convolutions: one thread is faster than two
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _generate(out_dir, size, seed, speech_dir, config, progress):
    files = _check_speech_dir(speech_dir, config) if speech_dir is not None else None
    _prepare_out_dir(out_dir)
    try:
        return _generate_into(out_dir, size, seed, speech_dir, config, progress, files)
    except BaseException:  # stopped (Ctrl-C, an error): record what it wrote, so a rerun may replace it
        with contextlib.suppress(OSError):
            _write_marker(out_dir, "interrupted", _layout_files(out_dir))
        raise


def _generate_into(out_dir, size, seed, speech_dir, config, progress, files):
    started = time.time()
    stats = _Stats()
    speakers = make_speakers(config["num_speakers"], seed)
    train, test = split_speakers(speakers, config["test_fraction"])
    test_ids = {s.id for s in test}
    stages = {}
    with _torch_threads(1):
        real_speakers = None
        tick = time.time()
        if files is not None:
            real_speakers = _write_real(out_dir, speech_dir, files, config, stats, progress)
            stages["real_speech"] = round(time.time() - tick, 2)
            tick = time.time()
        _write_synthetic(
            out_dir, speakers, test_ids, config, seed, stats, progress, timit_only=files is not None
        )
        stages["synthetic_speech"] = round(time.time() - tick, 2)
        tick = time.time()
        envs = _write_noises(out_dir, config, seed, stats, progress)
        stages["noise"] = round(time.time() - tick, 2)
        tick = time.time()
        rirs, n_slr28 = _write_rirs(out_dir, config, seed, progress)
        stages["rirs"] = round(time.time() - tick, 2)

    errors = [abs(r["measured_t60"] - r["target_t60"]) / r["target_t60"] * 100.0 for r in rirs]
    synth = [dict(s.to_dict(), split="test" if s.id in test_ids else "train") for s in speakers]
    if real_speakers is None:
        train_ids, test_list = [s.id for s in train], [s.id for s in test]
    else:
        train_ids = [s["id"] for s in real_speakers if s["split"] == "train" and s["utterances"]]
        test_list = [s["id"] for s in real_speakers if s["split"] == "test" and s["utterances"]]
    speech_layouts = ("DNS/clean", "VCTK", "Valentini/train", "Valentini/test", "TIMIT/TRAIN", "TIMIT/TEST")
    meta = {
        "format_version": FORMAT_VERSION,
        "size": size,
        "seed": int(seed),
        "speech_dir": _speech_dir_key(speech_dir),
        "config": config,
        "speech_source": "real recordings" if files is not None else "espeak-ng",
        "timit_source": "espeak-ng (TIMIT needs word/phone alignments, so it is always synthesised)",
        "layouts": dict(CORPUS_LAYOUTS),
        "sample_rates": {
            "DNS": writers.DNS_RATE,
            "VCTK": writers.VCTK_RATE,
            "NOISEX": writers.NOISEX_RATE,
            "MIT_IR": writers.MIT_IR_RATE,
            "Valentini": writers.VALENTINI_RATE,
            "DEMAND": writers.DEMAND_RATE,
            "TIMIT": writers.TIMIT_RATE,
        },
        "split": {
            "rule": (
                "speakers are split once into train and held-out test speakers: train -> DNS/clean, "
                "Valentini/clean_trainset_28spk_wav, TIMIT/TRAIN; test -> VCTK, Valentini/clean_testset_wav, "
                "TIMIT/TEST (in real-speech mode TIMIT holds the eSpeak speakers, split the same way)"
            ),
            "train": train_ids,
            "test": test_list,
            "timit_train": [s.timit_id for s in train],
            "timit_test": [s.timit_id for s in test],
        },
        "speakers": {"espeak": synth, "real": real_speakers or []},
        "speech": {key: stats.speech_summary(key) for key in speech_layouts},
        "utterances": {
            kind: {"count": n, "hours": round(sec / 3600.0, 4)} for kind, (n, sec) in stats.unique.items()
        },
        "hours": {
            "DNS": stats.speech_summary("DNS/clean")["hours"],
            "VCTK": stats.speech_summary("VCTK")["hours"],
            "Valentini": round(
                stats.speech_summary("Valentini/train")["hours"]
                + stats.speech_summary("Valentini/test")["hours"],
                4,
            ),
            "TIMIT": round(
                stats.speech_summary("TIMIT/TRAIN")["hours"] + stats.speech_summary("TIMIT/TEST")["hours"], 4
            ),
        },
        "transcripts": files is None,
        "noise": {
            "types": list(noises.NOISE_TYPES),
            "DNS": dict(stats.noise_summary("DNS/noise"), seconds_per_file=config["noise_seconds"]),
            "NOISEX": dict(stats.noise_summary("NOISEX"), names=dict(noises.NOISEX_NAMES)),
            "DEMAND": dict(
                stats.noise_summary("DEMAND"),
                environments={env: sorted(noises.DEMAND_ENVIRONMENTS[env]) for env in envs},
            ),
        },
        "rirs": rirs,
        "rir_summary": {
            "count": len(rirs),
            "DNS": {"SLR26": config["dns_rirs"] - n_slr28, "SLR28": n_slr28, "real": 0},
            "MIT_IR": config["mit_rirs"],
            "target_range_s": [0.3, 1.3],
            "tolerance_pct": 15.0,
            "t60_error_max_pct": round(max(errors), 3) if errors else None,
            "t60_error_mean_pct": round(float(np.mean(errors)), 3) if errors else None,
            "note": "simulated shoebox rooms (pyroomacoustics); the SLR28 paths hold simulated RIRs too "
            "(isRealRIR=0)",
        },
        "generation_seconds": round(time.time() - started, 2),
        "stage_seconds": stages,
        "created_unix": round(time.time(), 1),
    }
    _write_marker(out_dir, "complete", _layout_files(out_dir))
    with atomic_path(out_dir / META_NAME) as tmp:
        Path(tmp).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return meta


def generate_corpus(out_dir, size="default", seed=0, speech_dir=None, progress=True, **overrides):
    """Generates the mini corpus into ``out_dir`` (replacing a previous one there).

    Arguments
    ---------
    out_dir : str or Path
        Output folder (created). A folder holding dataset folders that this generator
        did not write is refused.
    size : str
        ``tiny`` (tests, a few seconds), ``default`` or ``large``.
    seed : int
        Everything is deterministic from it.
    speech_dir : str or Path or None
        Folder of real recordings used instead of eSpeak NG for DNS, VCTK and
        Valentini (TIMIT stays synthesised).
    progress : bool
        Show progress bars.
    **overrides
        Settings of :func:`corpus_config` (``num_speakers=``, ``sentences_per_speaker=`` ...).

    Returns
    -------
    Path
        ``out_dir`` (absolute).

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_sslse.data.layouts import read_timit
    >>> out = generate_corpus(tempfile.mkdtemp(), size="tiny", progress=False, num_speakers=2,
    ...                       sentences_per_speaker=1, noise_seconds=0.5, noisex_seconds=0.5,
    ...                       demand_seconds=0.5, demand_environments=1, dns_rirs=0, mit_rirs=0)
    >>> [item["utterance"] for item in read_timit(out / "TIMIT", "TRAIN")]
    ['SA1']
    """
    out_dir = Path(out_dir).expanduser().resolve()
    seed = check_seed(seed)
    config = corpus_config(size, **overrides)
    if speech_dir is not None:
        find_speech_files(speech_dir)  # fail before creating anything
    with corpus_lock(out_dir):
        _generate(out_dir, size, seed, speech_dir, config, progress)
    return out_dir


def default_corpus_dir(size="default", seed=0):
    """Where recipes keep the embedded corpus when no folder is given (shared by all recipes).

    ``$SSLSE_CACHE/mini_corpus-<size>-seed<seed>``, with ``$SSLSE_CACHE`` defaulting to
    ``~/.cache/speechbrain-sslse``.

    Example
    -------
    >>> default_corpus_dir("tiny", 3).name
    'mini_corpus-tiny-seed3'
    """
    cache = os.environ.get("SSLSE_CACHE") or Path.home() / ".cache" / "speechbrain-sslse"
    return Path(cache).expanduser() / f"mini_corpus-{size}-seed{seed}"


def ensure_corpus(out_dir=None, size="default", seed=0, speech_dir=None, progress=True, **overrides):
    """Returns ``out_dir`` if it holds this corpus already, otherwise generates it.

    ``out_dir=None`` means :func:`default_corpus_dir` (for corpora of eSpeak speech).

    The corpus is reused when its corpus.json records the same size, seed, speech
    folder, settings and format version. Safe when several processes call it at once
    (DDP ranks, parallel tests): they queue on a lock file (``fcntl``) and all but the
    first find the corpus complete.

    Arguments
    ---------
    out_dir, size, seed, speech_dir, progress, **overrides
        As for :func:`generate_corpus`.

    Returns
    -------
    Path
        ``out_dir`` (absolute).

    Example
    -------
    >>> import tempfile
    >>> ensure_corpus(tempfile.mkdtemp(), size="bogus")
    Traceback (most recent call last):
    ...
    speechbrain_sslse.corpus.generate.CorpusError: unknown size 'bogus'; choose one of tiny, default, large
    """
    if out_dir is None:
        if speech_dir is not None:
            raise CorpusError("give out_dir for a corpus made from a speech folder")
        out_dir = default_corpus_dir(size, check_seed(seed))
    out_dir = Path(out_dir).expanduser().resolve()
    seed = check_seed(seed)
    config = corpus_config(size, **overrides)
    if corpus_matches(out_dir, size, seed, speech_dir, config):
        return out_dir
    if speech_dir is not None:
        find_speech_files(speech_dir)  # fail before creating anything
    with corpus_lock(out_dir):  # another process may have generated it meanwhile: check again
        if not corpus_matches(out_dir, size, seed, speech_dir, config):
            _generate(out_dir, size, seed, speech_dir, config, progress)
    return out_dir


def format_summary(out_dir, meta=None):
    """A human-readable summary of a generated corpus (from its corpus.json).

    Example
    -------
    >>> format_summary("/nonexistent")
    '/nonexistent: no corpus.json (not generated yet)'
    """
    meta = meta or read_meta(out_dir)
    if not meta:
        return f"{out_dir}: no corpus.json (not generated yet)"
    out_dir = Path(out_dir)
    synth = meta["speakers"]["espeak"]
    real = meta["speakers"]["real"]
    genders = {g: sum(1 for s in synth if s["gender"] == g) for g in ("M", "F")}
    lines = [
        f"Mini corpus in {out_dir} (size {meta['size']}, seed {meta['seed']}, "
        f"speech: {meta['speech_source']})",
        f"  speakers: {len(synth)} eSpeak NG ({genders['M']} M, {genders['F']} F; "
        f"{len(meta['split']['timit_train'])} train, {len(meta['split']['timit_test'])} test)"
        + (
            f"; {len(real)} real ({len(meta['split']['train'])} train, {len(meta['split']['test'])} test)"
            if real
            else ""
        ),
        f"  {'layout':<16}{'speakers':>9}{'utts':>7}{'hours':>8}{'rate':>8}  path",
    ]
    rates = meta["sample_rates"]
    rows = (
        ("DNS/clean", "DNS", "DNS/clean"),
        ("VCTK", "VCTK", "VCTK/wav48_silence_trimmed"),
        ("Valentini/train", "Valentini", "Valentini/clean_trainset_28spk_wav"),
        ("Valentini/test", "Valentini", "Valentini/clean_testset_wav"),
        ("TIMIT/TRAIN", "TIMIT", "TIMIT/TRAIN"),
        ("TIMIT/TEST", "TIMIT", "TIMIT/TEST"),
    )
    total_utts = 0
    for key, layout, rel in rows:
        s = meta["speech"][key]
        total_utts += s["utterances"]
        lines.append(
            f"  {key:<16}{s['speakers']:>9}{s['utterances']:>7}{s['hours']:>8.3f}{rates[layout]:>8}  "
            f"{out_dir / rel}"
        )
    nz = meta["noise"]
    lines.append(
        f"  noise: {len(nz['types'])} types ({', '.join(nz['types'])}); "
        f"DNS {nz['DNS']['files']} files {nz['DNS']['minutes']:.1f} min; "
        f"NOISEX {nz['NOISEX']['files']} files {nz['NOISEX']['minutes']:.1f} min at {rates['NOISEX']} Hz; "
        f"DEMAND {nz['DEMAND']['files']} environments {nz['DEMAND']['minutes']:.1f} min "
        f"(total {nz['DNS']['minutes'] + nz['NOISEX']['minutes'] + nz['DEMAND']['minutes']:.1f} min)"
    )
    rs = meta["rir_summary"]
    t60s = [r["measured_t60"] for r in meta["rirs"]]
    rir_line = (
        f"  RIRs: {rs['count']} (DNS {rs['DNS']['SLR26']} SLR26 + {rs['DNS']['SLR28']} SLR28 "
        f"at {rates['DNS']} Hz, MIT_IR {rs['MIT_IR']} at {rates['MIT_IR']} Hz)"
    )
    if t60s:
        rir_line += (
            f"; measured T60 {min(t60s):.2f}-{max(t60s):.2f} s; T60 error vs target "
            f"max {rs['t60_error_max_pct']:.1f} %, mean {rs['t60_error_mean_pct']:.1f} %"
        )
    lines.append(rir_line)
    synth, real = meta["utterances"]["synthesised"], meta["utterances"]["real"]
    lines.append(
        f"  distinct utterances: {synth['count']} synthesised ({synth['hours']:.2f} h)"
        + (f", {real['count']} real ({real['hours']:.2f} h)" if real["count"] else "")
        + f"; {total_utts} speech files in all layouts"
    )
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in meta.get("stage_seconds", {}).items())
    lines.append(f"  generation time {meta['generation_seconds']:.1f} s ({stages})")
    lines.append("  layouts: " + ", ".join(f"{k}={out_dir / v}" for k, v in meta["layouts"].items()))
    lines.append(f"  details: {out_dir / META_NAME}")
    return "\n".join(lines)
