"""Manifests of the DNS Challenge 2021 training data for on-the-fly mixing.

Reads the DNS 2021 layout (``clean/**/*.wav``, ``noise/**/*.wav``,
``impulse_responses/{SLR26,SLR28}/**/*.wav`` and, when present,
``acoustic_params/RIR_table_simple.csv``) and writes four CSV manifests:

- ``train.csv`` / ``valid.csv``: clean utterances (``ID, duration, wav, spk_id``), the
  validation set holding out whole speakers;
- ``noise.csv``: noise files (``ID, duration, wav``);
- ``rir.csv``: impulse responses with T60 in range (``ID, wav, channel, t60, t60_source``),
  T60 from the table, or measured (Schroeder T20) when the table has no row for the file.

With ``train_min_bak``, training utterances whose DNSMOS background score (BAK, from
``clean_dnsmos.csv`` in the data folder: ``wav`` relative to it, ``dnsmos_bak``; written by
``build_cpu_data.py --score_dnsmos``) is lower are left out of ``train.csv``: a noisy "clean"
target teaches the model to keep the noise. The validation speakers, chosen before the
filter, keep all their utterances, so runs with and without it validate on the same mixtures.

Unreadable, empty or too-short audio files are skipped and listed in
``prepare_report.json``. The folder may be given as a relative path or reached through
symbolic links, and so may any folder or file inside it (links are followed, not
resolved: each file keeps its path in the dataset tree). Preparation is skipped when the
manifests exist and were written with the same options. The embedded mini corpus (``sslse-corpus``) writes the
same layout under ``<corpus>/DNS``.

Authors
 * speechbrain-sslse contributors
"""

import json
import logging
import math
import random
import re
from pathlib import Path

from tqdm import tqdm

from speechbrain_sslse.audio import AudioError, atomic_path, audio_info
from speechbrain_sslse.data.layouts import read_dns
from speechbrain_sslse.data.rir import measure_t60, read_rir
from speechbrain_sslse.files import read_csv, write_csv

logger = logging.getLogger(__name__)

MANIFESTS = ("train.csv", "valid.csv", "noise.csv", "rir.csv")
SCORES_FILE = "clean_dnsmos.csv"
INFO_FILE = "prepare_report.json"
VERSION = 1
_READER = re.compile(r"reader_(\d+)")


def dns_speaker_of(path):
    """Speaker of a DNS clean file: ``reader_NNNNN`` in the name, else the parent folder.

    Example
    -------
    >>> dns_speaker_of("/d/clean/read_speech/book_00000_chp_0009_reader_06709_0.wav")
    'reader_06709'
    >>> dns_speaker_of("/d/clean/spk03/utt_001.wav")
    'spk03'
    """
    match = _READER.search(Path(path).name)
    return f"reader_{match.group(1)}" if match else Path(path).parent.name


def _durations(paths, what, min_duration, skipped):
    """(path, duration) of readable files at least ``min_duration`` long; the rest in ``skipped``."""
    kept = []
    for path in tqdm(paths, desc=f"reading {what} headers", unit="file", disable=None):
        try:
            rate, frames, _ = audio_info(path)
        except AudioError as err:
            skipped.append({"file": path, "reason": str(err)})
            continue
        duration = frames / rate
        if duration < min_duration:
            skipped.append({"file": path, "reason": f"{duration:.3f} s, shorter than {min_duration} s"})
            continue
        kept.append((path, duration))
    return kept


def _rir_rows(rirs, t60_range, skipped):
    rows, out_of_range = [], 0
    for rir in tqdm(rirs, desc="checking RIRs", unit="rir", disable=None):
        t60, source = rir["t60"], "table"
        if t60 is None:
            source = "measured"
            try:
                t60 = measure_t60(read_rir(rir["path"], rir["channel"]), 16000)
            except (AudioError, ValueError) as err:
                skipped.append({"file": rir["path"], "reason": f"T60 not measurable: {err}"})
                continue
        if not t60_range[0] <= t60 <= t60_range[1]:
            out_of_range += 1
            continue
        rows.append(
            {"wav": rir["path"], "channel": rir["channel"], "t60": round(t60, 4), "t60_source": source}
        )
    return rows, out_of_range


def _options(data_folder, valid_fraction, t60_range, min_duration, seed, train_min_bak=0.0):
    options = {
        "version": VERSION,
        "data_folder": str(Path(data_folder).expanduser().resolve()),
        "valid_fraction": float(valid_fraction),
        "t60_range": [float(t) for t in t60_range],
        "min_duration": float(min_duration),
        "seed": int(seed),
    }
    if train_min_bak:  # absent when off: manifests written before the option stay valid
        options["train_min_bak"] = float(train_min_bak)
    return options


def read_clean_scores(data_folder):
    """``{wav path relative to data_folder: DNSMOS BAK}`` from its ``clean_dnsmos.csv``.

    Raises ``FileNotFoundError`` naming the file and how to write it when it is absent.
    """
    path = Path(data_folder).expanduser() / SCORES_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: train_min_bak needs the DNSMOS scores of the clean speech; write them with "
            "'build_cpu_data.py --score_dnsmos' or give a CSV with columns wav (relative to the "
            "data folder) and dnsmos_bak, or set train_min_bak: 0"
        )
    rows = read_csv(path)
    if rows and not {"wav", "dnsmos_bak"} <= set(rows[0]):
        raise ValueError(f"{path}: needs the columns wav and dnsmos_bak, has {sorted(rows[0])}")
    return {Path(r["wav"]).as_posix(): float(r["dnsmos_bak"]) for r in rows}


def is_prepared(save_folder, options):
    """Whether the manifests in ``save_folder`` exist and were written with ``options``."""
    save_folder = Path(save_folder)
    info = save_folder / INFO_FILE
    if not info.is_file() or not all((save_folder / m).is_file() for m in MANIFESTS):
        return False
    try:
        return json.loads(info.read_text()).get("options") == options
    except (OSError, ValueError):
        return False


def prepare_dns(
    data_folder,
    save_folder,
    valid_fraction=0.05,
    t60_range=(0.3, 1.3),
    min_duration=1.0,
    seed=0,
    skip_prep=False,
    train_min_bak=0.0,
):
    """Writes the DNS 2021 manifests (see the module docstring).

    Arguments
    ---------
    data_folder : str
        DNS 2021 root (holding ``clean/``, ``noise/``, ``impulse_responses/``).
    save_folder : str
        Where the manifests go.
    valid_fraction : float
        Fraction of the speakers held out for validation (at least one speaker).
    t60_range : tuple of float
        RIRs with T60 outside this range (seconds) are left out.
    min_duration : float
        Shortest clean utterance kept (seconds).
    seed : int
        Seed of the choice of validation speakers.
    skip_prep : bool
        Do nothing.
    train_min_bak : float
        Training utterances with a lower DNSMOS BAK (``clean_dnsmos.csv``) are left out;
        0 keeps all. Validation utterances are never filtered.

    Returns
    -------
    dict
        The report written to ``prepare_report.json`` (options, counts, skipped files).
    """
    if skip_prep:
        return None
    save_folder = Path(save_folder)
    options = _options(data_folder, valid_fraction, t60_range, min_duration, seed, train_min_bak)
    if is_prepared(save_folder, options):
        logger.info("DNS manifests in %s are up to date, skipping preparation", save_folder)
        return json.loads((save_folder / INFO_FILE).read_text())
    tree = read_dns(data_folder)  # LayoutError naming the expected layout if wrong
    skipped = []
    clean = _durations(tree["clean"], "clean speech", min_duration, skipped)
    noise = _durations(tree["noise"], "noise", 0.0, skipped)
    if not clean:
        raise AudioError(f"{data_folder}: no usable clean utterance (see the skipped files in {INFO_FILE})")
    if not noise:
        raise AudioError(f"{data_folder}: no usable noise file")
    rirs, out_of_range = _rir_rows(tree["rirs"], t60_range, skipped)

    speakers = sorted({dns_speaker_of(p) for p, _ in clean})
    random.Random(seed).shuffle(speakers)
    num_valid = max(1, math.ceil(valid_fraction * len(speakers))) if len(speakers) > 1 else 0
    valid_speakers = set(speakers[:num_valid])
    splits = {"train": [], "valid": []}
    root = Path(data_folder).expanduser().resolve()  # read_dns's paths lie under it, links unresolved
    bak = read_clean_scores(root) if train_min_bak else {}
    low_bak, unscored = 0, 0
    for path, duration in clean:
        spk = dns_speaker_of(path)
        split = "valid" if spk in valid_speakers else "train"
        rel = Path(path).relative_to(root)  # <clean folder, any letter case>/...
        if split == "train" and train_min_bak:
            score = bak.get(rel.as_posix())
            unscored += score is None
            if score is not None and score < train_min_bak:
                low_bak += 1
                continue
        uid = "_".join(Path(*rel.parts[1:]).with_suffix("").parts)
        splits[split].append({"ID": uid, "duration": round(duration, 4), "wav": path, "spk_id": spk})
    if not splits["valid"]:
        logger.warning("a single speaker: validation uses training speakers")
        splits["valid"] = list(splits["train"][: max(1, len(splits["train"]) // 20)])

    save_folder.mkdir(parents=True, exist_ok=True)
    # The report, written last, marks the manifests as complete: an interrupted rewrite is redone.
    (save_folder / INFO_FILE).unlink(missing_ok=True)
    for split, rows in splits.items():
        write_csv(save_folder / f"{split}.csv", rows, ["ID", "duration", "wav", "spk_id"])
    write_csv(
        save_folder / "noise.csv",
        [{"ID": f"noise_{i:06d}", "duration": round(d, 4), "wav": p} for i, (p, d) in enumerate(noise)],
        ["ID", "duration", "wav"],
    )
    write_csv(
        save_folder / "rir.csv",
        [{"ID": f"rir_{i:06d}", **row} for i, row in enumerate(rirs)],
        ["ID", "wav", "channel", "t60", "t60_source"],
    )
    report = {
        "options": options,
        "counts": {
            "train_utterances": len(splits["train"]),
            "valid_utterances": len(splits["valid"]),
            "train_hours": round(sum(r["duration"] for r in splits["train"]) / 3600, 4),
            "train_low_bak_left_out": low_bak,
            "train_unscored_kept": unscored,
            "speakers": len(speakers),
            "valid_speakers": sorted(valid_speakers),
            "noises": len(noise),
            "rirs": len(rirs),
            "rirs_out_of_t60_range": out_of_range,
            "rir_table": tree["rir_table"],
            "skipped_files": len(skipped),
        },
        "skipped": skipped,
    }
    if skipped:
        logger.warning("%d unusable files skipped; see %s", len(skipped), save_folder / INFO_FILE)
    with atomic_path(save_folder / INFO_FILE) as tmp:
        Path(tmp).write_text(json.dumps(report, indent=2))
    return report
