"""Readers for the on-disk layouts of the datasets the recipes use.

Each reader takes the dataset's root folder, lists what is there in a fixed
(sorted) order and raises :class:`LayoutError` naming the expected layout when
the folder is missing or does not look like the dataset. The embedded mini
corpus (:mod:`speechbrain_sslse.corpus`) writes the same layouts, so the same
readers (and recipes) run on both.

All paths returned are absolute strings.
"""

import csv
import os
from pathlib import Path

AUDIO_EXTS = (".wav", ".flac")

EXPECTED = {
    "DNS": (
        "DNS Challenge 2021 root with clean/**/*.wav, noise/**/*.wav, "
        "impulse_responses/{SLR26,SLR28}/**/*.wav and (optional) "
        "acoustic_params/RIR_table_simple.csv (columns wavfile, channel, T60_WB, C50_WB, isRealRIR)"
    ),
    "VCTK": (
        "VCTK root with wav48_silence_trimmed/pXXX/pXXX_NNN_mic1.flac (VCTK 0.92) "
        "or wav48/pXXX/pXXX_NNN.wav (VCTK 0.80)"
    ),
    "NOISEX": "NOISEX-92 folder with one file per noise type (babble.wav, factory1.wav, ...)",
    "MIT_IR": "MIT IR Survey folder with *.wav impulse responses (any depth)",
    "Valentini": (
        "Valentini-Botinhao root with clean_testset_wav/*.wav and/or clean_trainset_28spk_wav/*.wav"
    ),
    "DEMAND": "DEMAND root with one folder per environment holding ch01.wav (DKITCHEN/ch01.wav, ...)",
    "TIMIT": (
        "TIMIT root with TRAIN|TEST/DRn/<speaker>/<utt>.WAV (NIST SPHERE) + .PHN, .WRD, .TXT "
        "(upper or lower case)"
    ),
}


class LayoutError(FileNotFoundError):
    """A dataset folder is missing or not in the expected layout."""

    def __init__(self, dataset, root, problem):
        super().__init__(
            f"{dataset} at '{root}': {problem}.\nExpected layout: {EXPECTED[dataset]}.\n"
            f"Point the recipe at the right folder (e.g. --data_folder=...), or generate the "
            f"embedded mini corpus with `sslse-corpus --out DIR`."
        )
        self.dataset = dataset
        self.root = root


def _root(dataset, root):
    root = Path(root).expanduser()
    if not root.is_dir():
        raise LayoutError(dataset, root, "folder does not exist")
    return root.resolve()


def walk_files(folder):
    """Every file under ``folder``, at any depth, following symbolic links to folders.

    Datasets are often reached through links (``clean/read_speech -> /shared/...``),
    which ``Path.rglob`` does not enter. The paths are ``folder`` joined with the names
    found, links unresolved, so each file keeps its name in the dataset tree; a folder
    reached a second time (a link back into the tree) is not walked again.

    Example
    -------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "store").mkdir(); _ = (root / "store" / "a.wav").write_bytes(b"")
    >>> (root / "tree").mkdir(); os.symlink(root / "store", root / "tree" / "linked")
    >>> [p.relative_to(root).as_posix() for p in walk_files(root / "tree")]
    ['tree/linked/a.wav']
    """
    seen, files = set(), []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        files.extend(Path(dirpath) / name for name in sorted(filenames))
    return files


def _audio_files(folder, exts=AUDIO_EXTS):
    return sorted(
        p
        for p in walk_files(folder)
        if p.is_file() and p.suffix.lower() in exts and not p.name.startswith(".")
    )


def _ci_child(folder, name):
    """Child of ``folder`` named ``name`` in any letter case, or None."""
    for p in folder.iterdir() if folder.is_dir() else ():
        if p.name.lower() == name.lower():
            return p
    return None


def read_dns(root):
    """Reads a DNS Challenge 2021 tree.

    Returns
    -------
    dict
        ``clean``: list of speech paths; ``noise``: list of noise paths;
        ``rirs``: list of dicts ``path, channel, t60 (float or None), c50, real``
        (T60 from ``acoustic_params/RIR_table_simple.csv`` when present; ``channel``
        counts from 0 here, the table's from 1; it is ignored for a mono file).
    """
    root = _root("DNS", root)
    out = {}
    for part in ("clean", "noise"):
        folder = _ci_child(root, part)
        if folder is None:
            raise LayoutError("DNS", root, f"no '{part}' folder")
        out[part] = [str(p) for p in _audio_files(folder)]
        if not out[part]:
            raise LayoutError("DNS", root, f"'{part}' holds no .wav files")
    ir_root = _ci_child(root, "impulse_responses")
    table = {}
    table_path = root / "acoustic_params" / "RIR_table_simple.csv"
    if table_path.is_file():
        with open(table_path, newline="") as f:
            for row in csv.DictReader(f):
                row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
                wav = row.get("wavfile", "")
                parts = Path(wav.replace("\\", "/")).parts  # the real table has Windows paths
                key = (
                    str(Path(*parts[parts.index("impulse_responses") + 1 :]))
                    if "impulse_responses" in parts
                    else wav
                )
                table[key] = row
    rirs = []
    if ir_root is not None:
        for p in _audio_files(ir_root):
            rel = str(p.relative_to(ir_root))
            row = table.get(rel, {})
            t60 = row.get("T60_WB")
            c50 = row.get("C50_WB")
            rirs.append(
                {
                    "path": str(p),
                    # The table's channels count from 1 (as in the DNS synthesiser).
                    "channel": max(int(row.get("channel") or 1) - 1, 0),
                    "t60": float(t60) if t60 not in (None, "") else None,
                    "c50": float(c50) if c50 not in (None, "") else None,
                    "real": row.get("isRealRIR", "") in ("1", "True", "true"),
                }
            )
    out["rirs"] = rirs
    out["rir_table"] = str(table_path) if table_path.is_file() else None
    return out


def read_vctk(root):
    """Reads a VCTK tree (0.92 ``wav48_silence_trimmed`` mic1 FLAC, or 0.80 ``wav48`` WAV).

    Returns
    -------
    list of dict
        ``id`` (e.g. ``p225_001``), ``path``, ``speaker``.
    """
    root = _root("VCTK", root)
    items = []
    trimmed = root / "wav48_silence_trimmed"
    old = root / "wav48"
    if trimmed.is_dir():
        for p in sorted(trimmed.glob("*/*_mic1.flac")):
            items.append({"id": p.name[: -len("_mic1.flac")], "path": str(p), "speaker": p.parent.name})
    elif old.is_dir():
        for p in sorted(old.glob("*/*.wav")):
            items.append({"id": p.stem, "path": str(p), "speaker": p.parent.name})
    else:
        raise LayoutError("VCTK", root, "neither 'wav48_silence_trimmed' nor 'wav48' found")
    if not items:
        raise LayoutError("VCTK", root, "no utterances found")
    return items


def _named_audio(dataset, root, pattern="*"):
    root = _root(dataset, root)
    items = [p for p in sorted(root.glob(pattern)) if p.is_file() and p.suffix.lower() in AUDIO_EXTS]
    if not items:
        raise LayoutError(dataset, root, "no audio files found")
    return root, items


def read_noisex(root):
    """Reads a NOISEX-92 folder: one file per noise type.

    Returns
    -------
    list of dict
        ``name`` (file stem, e.g. ``babble``), ``path``.
    """
    _, items = _named_audio("NOISEX", root)
    return [{"name": p.stem, "path": str(p)} for p in items]


def read_mit_ir(root):
    """Reads the MIT IR Survey: every ``*.wav`` below the root.

    Returns
    -------
    list of dict
        ``name`` (file stem), ``path``.
    """
    root = _root("MIT_IR", root)
    items = _audio_files(root, (".wav",))
    if not items:
        raise LayoutError("MIT_IR", root, "no .wav files found")
    return [{"name": p.stem, "path": str(p)} for p in items]


def read_valentini(root, subset="test"):
    """Reads clean Valentini-Botinhao utterances.

    Arguments
    ---------
    root : str
        Dataset root.
    subset : str
        ``test`` (``clean_testset_wav``) or ``train`` (``clean_trainset_28spk_wav``).

    Returns
    -------
    list of dict
        ``id`` (e.g. ``p232_001``), ``path``, ``speaker``.
    """
    folder = {"test": "clean_testset_wav", "train": "clean_trainset_28spk_wav"}[subset]
    root = _root("Valentini", root)
    if not (root / folder).is_dir():
        raise LayoutError("Valentini", root, f"no '{folder}' folder")
    items = sorted((root / folder).glob("*.wav"))
    if not items:
        raise LayoutError("Valentini", root, f"'{folder}' holds no .wav files")
    return [{"id": p.stem, "path": str(p), "speaker": p.stem.split("_")[0]} for p in items]


def read_demand(root, channel="ch01"):
    """Reads DEMAND: one recording (``channel``) per environment folder.

    Returns
    -------
    list of dict
        ``name`` (environment, e.g. ``DKITCHEN``), ``path``.
    """
    root = _root("DEMAND", root)
    items = [
        {"name": d.name, "path": str(d / f"{channel}.wav")}
        for d in sorted(root.iterdir())
        if d.is_dir() and (d / f"{channel}.wav").is_file()
    ]
    if not items:
        raise LayoutError("DEMAND", root, f"no <ENV>/{channel}.wav found")
    return items


def read_timit_segments(path):
    """Reads a TIMIT ``.PHN`` or ``.WRD`` file.

    Returns
    -------
    list of tuple
        ``(start_sample, end_sample, label)`` in file order.
    """
    segments = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 3:
                raise ValueError(f"{path}:{n}: expected 'start end label', got {line.strip()!r}")
            segments.append((int(fields[0]), int(fields[1]), fields[2]))
    return segments


def read_timit(root, split="TRAIN"):
    """Reads one split of TIMIT (upper- or lower-case names).

    Returns
    -------
    list of dict
        ``id`` (``<speaker>_<utt>``), ``wav``, ``phn``, ``wrd``, ``txt``, ``speaker``
        (e.g. ``FCJF0``), ``gender`` (``F``/``M``), ``dialect`` (``DR1``),
        ``utterance`` (``SA1``), ``kind`` (``SA``/``SX``/``SI``).
    """
    root = _root("TIMIT", root)
    split_dir = _ci_child(root, split)
    if split_dir is None:
        raise LayoutError("TIMIT", root, f"no '{split}' folder")
    items = []
    for wav in sorted(p for p in split_dir.glob("*/*/*") if p.suffix.lower() == ".wav"):
        if wav.name.upper().endswith(".WAV.WAV"):
            continue
        stem = wav.with_suffix("")
        side = {}
        for ext in ("phn", "wrd", "txt"):
            cands = [stem.with_suffix("." + ext), stem.with_suffix("." + ext.upper())]
            side[ext] = next((str(c) for c in cands if c.is_file()), None)
        speaker = wav.parent.name.upper()
        utt = stem.name.upper()
        items.append(
            {
                "id": f"{speaker}_{utt}",
                "wav": str(wav),
                **side,
                "speaker": speaker,
                "gender": speaker[0],
                "dialect": wav.parent.parent.name.upper(),
                "utterance": utt,
                "kind": utt[:2],
            }
        )
    if not items:
        raise LayoutError("TIMIT", root, f"no <DR>/<speaker>/<utt>.WAV files under '{split_dir.name}'")
    return items
