"""Manifests for TERA pretraining from any folders of speech.

``data_folder`` (LibriSpeech-style names ``<speaker>-<chapter>-<utt>.flac``; any
folder of audio works, a file without ``-`` counting as its own speaker) is split by
speaker with :func:`speechbrain_sslse.data.splits.librispeech_excerpt_split`: the
held-out speakers go to ``heldout.csv`` and are never trained on; the other speakers,
plus every file under ``extra_folders`` (e.g. the mini corpus's ``DNS/clean``), go to
``train.csv``. Files shorter than ``min_duration`` are left out (s3prl's pretraining
drops utterances under 200 frames).

Columns: ``ID, duration, wav, spk_id, source``. Both files are written atomically and
the step is skipped when the manifests are up to date (same options, same files).

Usage (the recipe calls it itself)::

    python prepare.py DATA_FOLDER SAVE_FOLDER [--extra_folders DIR ...]

Authors
 * speechbrain-sslse contributors
"""

import argparse
import hashlib
import json
import logging
import os
from pathlib import Path

from speechbrain_sslse.audio import AudioError, atomic_path, audio_info
from speechbrain_sslse.data.splits import librispeech_excerpt_split, list_speech_files, speaker_of
from speechbrain_sslse.files import write_csv

logger = logging.getLogger(__name__)

FIELDS = ["ID", "duration", "wav", "spk_id", "source"]
OPTIONS_FILE = "prepare_options.json"


def prepare_tera_pretraining(
    data_folder,
    save_folder,
    extra_folders=(),
    num_test_speakers=32,
    split_seed=0,
    min_duration=2.0,
    skip_prep=False,
):
    """Writes ``train.csv`` and ``heldout.csv`` under ``save_folder``.

    Arguments
    ---------
    data_folder : str or Path
        Folder of speech split by speaker (e.g. the LibriSpeech excerpt).
    save_folder : str or Path
        Where the manifests go.
    extra_folders : list of (str or Path)
        More folders of speech, all used for training.
    num_test_speakers : int
        Held-out speakers of ``data_folder``.
    split_seed : int
        Seed of the speaker split (0 is the project-wide split).
    min_duration : float
        Shorter files (seconds) are left out.
    skip_prep : bool
        Do nothing.

    Returns
    -------
    dict
        ``{"train": Path, "heldout": Path}``.

    Raises
    ------
    speechbrain_sslse.data.splits.SpeechFolderError
        If a folder is missing or holds no audio.
    speechbrain_sslse.audio.AudioError
        If a file cannot be read as audio.
    """
    save_folder = Path(save_folder)
    outputs = {"train": save_folder / "train.csv", "heldout": save_folder / "heldout.csv"}
    if skip_prep:
        return outputs
    data_files = list_speech_files(data_folder)
    extra_files = [(Path(folder), list_speech_files(folder)) for folder in extra_folders or ()]
    options = {
        "data_folder": str(Path(data_folder).resolve()),
        "extra_folders": [str(folder.resolve()) for folder, _ in extra_files],
        "num_test_speakers": int(num_test_speakers),
        "split_seed": int(split_seed),
        "min_duration": float(min_duration),
        "files": _fingerprint(data_files + [f for _, files in extra_files for f in files]),
    }
    options_file = save_folder / OPTIONS_FILE
    if all(p.is_file() for p in outputs.values()) and _read_json(options_file) == options:
        logger.info("TERA manifests are up to date in %s, skipping preparation", save_folder)
        return outputs

    train_files, heldout_files = librispeech_excerpt_split(data_files, num_test_speakers, split_seed)
    train_rows = _rows(train_files, Path(data_folder), "data", min_duration)
    for index, (folder, files) in enumerate(extra_files):
        train_rows += _rows(files, folder, f"extra{index}", min_duration)
    heldout_rows = _rows(heldout_files, Path(data_folder), "data", min_duration)
    for name, rows in (("train", train_rows), ("heldout", heldout_rows)):
        if not rows:
            raise AudioError(
                f"no {name} file of at least {min_duration} s under {data_folder} "
                f"{list(extra_folders or [])}: pass folders with longer recordings or lower min_duration"
            )
        write_csv(outputs[name], rows, FIELDS)
        hours = sum(float(r["duration"]) for r in rows) / 3600
        logger.info("%s: %d files, %.3f h -> %s", name, len(rows), hours, outputs[name])
    with atomic_path(options_file) as tmp:
        Path(tmp).write_text(json.dumps(options, indent=1), encoding="utf-8")
    return outputs


def _fingerprint(files):
    """A digest of the file names, sizes and modification times."""
    digest = hashlib.sha1()
    for path in sorted(files, key=str):
        stat = path.stat()
        digest.update(f"{path}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return {"count": len(files), "sha1": digest.hexdigest()}


def _read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _rows(files, root, source, min_duration):
    """Manifest rows; IDs from the paths below ``root`` (as listed: links followed, not resolved)."""
    rows, ids = [], set()
    root = Path(os.path.abspath(root))
    skipped = 0
    for path in files:
        sample_rate, frames, _ = audio_info(path)
        if frames == 0:
            raise AudioError(f"{path}: audio holds no samples. Re-create or remove it.")
        duration = frames / sample_rate
        if duration < min_duration:
            skipped += 1
            continue
        try:
            relative = Path(os.path.abspath(path)).relative_to(root).with_suffix("")
        except ValueError:
            relative = Path(path.stem)
        uid, n = f"{source}/{relative.as_posix()}", 1
        while uid in ids:  # equal names in different folders stay apart
            n += 1
            uid = f"{source}/{relative.as_posix()}~{n}"
        ids.add(uid)
        rows.append(
            {
                "ID": uid,
                "duration": f"{duration:.4f}",
                "wav": os.path.abspath(path),
                "spk_id": speaker_of(path),
                "source": source,
            }
        )
    if skipped:
        logger.info("%s: left out %d files shorter than %.2f s", root, skipped, min_duration)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_folder")
    parser.add_argument("save_folder")
    parser.add_argument("--extra_folders", nargs="*", default=[])
    parser.add_argument("--num_test_speakers", type=int, default=32)
    parser.add_argument("--split_seed", type=int, default=0)
    parser.add_argument("--min_duration", type=float, default=2.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    outputs = prepare_tera_pretraining(**vars(args))
    for path in outputs.values():
        print(path)


if __name__ == "__main__":
    main()
