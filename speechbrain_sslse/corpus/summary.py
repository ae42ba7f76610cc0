"""What a generated corpus holds: counts per layout, ``corpus.json`` and its readable summary.

The stages count what each layout receives (:class:`LayoutStats`); :func:`build_meta`
turns the counts, the speakers and the RIR records into the contents of
``corpus.json``; :func:`format_summary` prints a corpus.json for people.
"""

import time
from pathlib import Path

import numpy as np

from . import noise as noises
from . import writers
from .config import CORPUS_LAYOUTS, FORMAT_VERSION
from .folder import META_NAME, read_meta, speech_dir_key


class LayoutStats:
    """Counts what each layout received: speakers, utterances and seconds of speech, noise files.

    Example
    -------
    >>> stats = LayoutStats()
    >>> stats.add_speech("VCTK", "p001", 3600.0)
    >>> stats.add_noise("NOISEX", 60.0)
    >>> stats.speech_summary("VCTK"), stats.noise_summary("NOISEX")
    ({'speakers': 1, 'utterances': 1, 'hours': 1.0}, {'files': 1, 'minutes': 1.0})
    """

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


def progress_bar(total, desc, progress):
    """A tqdm bar counting files (disabled unless ``progress``).

    Example
    -------
    >>> bar = progress_bar(2, "noise", progress=False)
    >>> bar.update(2)
    >>> bar.close()
    """
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not progress, unit="file", leave=False, dynamic_ncols=True)


def build_meta(
    size,
    seed,
    speech_dir,
    config,
    stats,
    speakers,
    split,
    real_speakers,
    envs,
    rirs,
    n_slr28,
    started,
    stages,
):
    """The contents of ``corpus.json``: settings, split, speakers, counts per layout, RIRs, timing.

    Arguments
    ---------
    size, seed, speech_dir, config
        The settings the corpus was generated with (they key its reuse).
    stats : LayoutStats
        What each layout received.
    speakers : list of Speaker
        The eSpeak NG speakers (all of them, train and test).
    split : tuple
        ``(train, test)``: the train and held-out test speakers among ``speakers``
        (:func:`.speakers.split_speakers`).
    real_speakers : list of dict or None
        The speakers of the real recordings (:func:`.speech_stage.write_real`), or None
        for a corpus of eSpeak NG speech only.
    envs : list of str
        The DEMAND environments written.
    rirs : list of dict
        One record per RIR (:func:`.rir_stage.write_rirs`).
    n_slr28 : int
        How many of the DNS RIRs are on SLR28 paths.
    started : float
        ``time.time()`` when the generation started.
    stages : dict
        Seconds per stage.

    Returns
    -------
    dict

    Example
    -------
    >>> from speechbrain_sslse.corpus.config import corpus_config
    >>> from speechbrain_sslse.corpus.speakers import make_speakers
    >>> speakers = make_speakers(2, seed=0)
    >>> meta = build_meta("tiny", 0, None, corpus_config("tiny"), LayoutStats(), speakers,
    ...                   (speakers[:1], speakers[1:]), None, [], [], 0, time.time(), {})
    >>> meta["speech_source"], len(meta["split"]["train"]), len(meta["split"]["test"])
    ('espeak-ng', 1, 1)
    """
    train, test = split
    test_ids = {s.id for s in test}
    real = real_speakers is not None
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
        "speech_dir": speech_dir_key(speech_dir),
        "config": config,
        "speech_source": "real recordings" if real else "espeak-ng",
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
        "transcripts": not real,
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
    return meta


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
