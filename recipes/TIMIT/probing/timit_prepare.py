"""Data preparation for the TIMIT information probes (ICEIC 2024).

Reads TIMIT (``TRAIN|TEST/DRn/<speaker>/<utt>.WAV`` + ``.PHN``, ``.WRD``, ``.TXT``; the
embedded mini corpus writes the same layout) and writes four manifests:

- ``sa1_phoneme.csv``: one row per phoneme segment of the SA1 utterances (TIMIT's
  silence labels ``h#``, ``pau``, ``epi`` dropped by default), with the word the
  phoneme lies in (for the t-SNE plot);
- ``sa1_word.csv``: one row per word segment of SA1;
- ``sx_sentence.csv``: one row per SX utterance, label = the sentence (its name,
  e.g. ``SX123``);
- ``sx_speaker.csv``: one row per SX utterance, label = the speaker.

Columns: ``ID, wav, start, end, label, speaker, gender, utterance, word``; ``start``
and ``end`` are sample offsets at 16 kHz (TIMIT's own offsets, rescaled if a file
has another rate). Each model's probe turns them into frames at its own stride.
``label_counts.json`` lists the classes of each probe and their counts. Audio files
that cannot be used (unreadable, empty, NaN/Inf samples, shorter than
``min_duration``) are left out and listed with the reason in ``skipped_files.json``.
All files are written atomically; preparation is skipped when the manifests are up
to date.

Authors
 * speechbrain-sslse contributors
"""

import csv
import json
import logging
from collections import Counter
from pathlib import Path

from speechbrain_sslse.audio import SAMPLE_RATE, AudioError, atomic_path, audio_info, read_audio
from speechbrain_sslse.data.layouts import LayoutError, read_timit, read_timit_segments
from speechbrain_sslse.files import write_csv

logger = logging.getLogger(__name__)

TASKS = ("sa1_phoneme", "sa1_word", "sx_sentence", "sx_speaker")
FIELDS = ["ID", "wav", "start", "end", "label", "speaker", "gender", "utterance", "word"]
OPTIONS_FILE = "prepare_options.json"
COUNTS_FILE = "label_counts.json"
SKIPPED_FILE = "skipped_files.json"


def _write_json(path, data):
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)


def read_manifest(path):
    """Rows of a manifest written by :func:`prepare_timit` (``start``/``end`` as int)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["start"], row["end"] = int(row["start"]), int(row["end"])
    return rows


def _segments(item, ext, root):
    path = item[ext]
    if path is None:
        raise LayoutError("TIMIT", root, f"{item['wav']} has no .{ext.upper()} file beside it")
    try:
        return read_timit_segments(path)
    except ValueError as err:
        raise LayoutError("TIMIT", root, str(err)) from err


def _rescale(offset, sr, num_samples):
    return min(int(round(offset * SAMPLE_RATE / sr)), num_samples)


def _utterance_rows(item, sr, frames):
    if frames == 0:
        raise AudioError(f"{item['wav']}: audio holds no samples. Re-create or remove this utterance.")
    base = {
        "wav": item["wav"],
        "speaker": item["speaker"],
        "gender": item["gender"],
        "utterance": item["utterance"],
    }
    return base, int(round(frames * SAMPLE_RATE / sr))


def _sa1_rows(item, root, drop):
    sr, frames, _ = audio_info(item["wav"])
    base, num_samples = _utterance_rows(item, sr, frames)
    words = [
        (_rescale(s, sr, num_samples), _rescale(e, sr, num_samples), w.lower())
        for s, e, w in _segments(item, "wrd", root)
    ]
    phonemes, word_rows = [], []
    for k, (s, e, label) in enumerate(words):
        if e > s:
            word_rows.append(
                {**base, "ID": f"{item['id']}_w{k}", "start": s, "end": e, "label": label, "word": label}
            )
    for k, (s, e, label) in enumerate(_segments(item, "phn", root)):
        s, e = _rescale(s, sr, num_samples), _rescale(e, sr, num_samples)
        if label in drop or e <= s:
            continue
        middle = (s + e) / 2
        word = next((w for ws, we, w in words if ws <= middle < we), "")
        phonemes.append(
            {**base, "ID": f"{item['id']}_p{k}", "start": s, "end": e, "label": label, "word": word}
        )
    return phonemes, word_rows


def _sx_rows(item):
    sr, frames, _ = audio_info(item["wav"])
    base, num_samples = _utterance_rows(item, sr, frames)
    row = {**base, "ID": item["id"], "start": 0, "end": num_samples, "word": ""}
    return {**row, "label": item["utterance"]}, {**row, "label": item["speaker"]}


def _usable(items, min_duration, skipped):
    """Items whose audio reads as finite samples, ``min_duration`` s or longer; the rest go to ``skipped``."""
    kept = []
    for item in items:
        try:
            read_audio(item["wav"], min_duration=min_duration)  # reads every sample: NaN/Inf too
        except AudioError as err:
            logger.warning("skipping unusable audio file: %s", err)
            skipped.append({"file": item["wav"], "reason": str(err)})
            continue
        kept.append(item)
    return kept


def prepare_timit(
    data_folder,
    save_folder,
    splits=("TRAIN",),
    drop_phonemes=("h#", "pau", "epi"),
    skip_prep=False,
    min_duration=0.05,
):
    """Writes the probe manifests (see the module docstring).

    Arguments
    ---------
    data_folder : str or Path
        TIMIT root (``TRAIN``/``TEST`` inside, any letter case).
    save_folder : str or Path
        Where the manifests go.
    splits : list of str
        TIMIT splits read (``TRAIN``: 462 speakers; add ``TEST`` for all 630).
    drop_phonemes : list of str
        Phoneme labels left out of the phoneme probe (silences by default).
    skip_prep : bool
        Do nothing (the manifests must already exist).
    min_duration : float
        Shorter utterances (seconds) are skipped, as are unreadable ones (see ``skipped_files.json``).

    Returns
    -------
    dict
        Task name -> manifest path.

    Raises
    ------
    LayoutError
        The folder is missing or not in TIMIT's layout, or has no SA1 / SX utterances.
    """
    save_folder = Path(save_folder)
    paths = {task: save_folder / f"{task}.csv" for task in TASKS}
    if skip_prep:
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"skip_prep is set but manifests are missing: {missing}; unset skip_prep")
        return paths
    items = [item for split in splits for item in read_timit(data_folder, split)]
    root = Path(data_folder).resolve()
    options = {
        "data_folder": str(root),
        "splits": [str(s) for s in splits],
        "drop_phonemes": sorted(str(p) for p in drop_phonemes),
        "min_duration": float(min_duration),
        "files": len(items),
        "newest": max(Path(item["wav"]).stat().st_mtime for item in items),
    }
    options_path = save_folder / OPTIONS_FILE
    if all(p.is_file() for p in paths.values()) and options_path.is_file():
        if json.loads(options_path.read_text(encoding="utf-8")) == options:
            logger.info("TIMIT manifests in %s are up to date, preparation skipped", save_folder)
            return paths
    skipped = []
    sa1 = _usable([item for item in items if item["utterance"] == "SA1"], min_duration, skipped)
    sx = _usable([item for item in items if item["kind"] == "SX"], min_duration, skipped)
    unusable = f" ({len(skipped)} unusable files skipped, e.g. {skipped[0]['reason']})" if skipped else ""
    for name, kept in (("SA1", sa1), ("SX", sx)):
        if not kept:
            raise LayoutError("TIMIT", root, f"no usable {name} utterance in {list(splits)}{unusable}")
    rows = {task: [] for task in TASKS}
    drop = set(drop_phonemes)
    for item in sa1:
        phonemes, words = _sa1_rows(item, root, drop)
        rows["sa1_phoneme"] += phonemes
        rows["sa1_word"] += words
    for item in sx:
        sentence, speaker = _sx_rows(item)
        rows["sx_sentence"].append(sentence)
        rows["sx_speaker"].append(speaker)
    counts = {}
    # The options file, written last, marks the manifests as complete: an interrupted rewrite is redone.
    options_path.unlink(missing_ok=True)
    for task in TASKS:
        write_csv(paths[task], rows[task], FIELDS)
        counts[task] = dict(Counter(r["label"] for r in rows[task]).most_common())
        logger.info("%s: %d segments, %d classes", task, len(rows[task]), len(counts[task]))
    _write_json(save_folder / COUNTS_FILE, counts)
    _write_json(save_folder / SKIPPED_FILE, skipped)
    if skipped:
        logger.warning("%d unusable audio files skipped; see %s", len(skipped), save_folder / SKIPPED_FILE)
    _write_json(options_path, options)
    return paths


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: python timit_prepare.py TIMIT_ROOT SAVE_FOLDER")
    logging.basicConfig(level=logging.INFO)
    for task, path in prepare_timit(sys.argv[1], sys.argv[2]).items():
        print(task, path)
