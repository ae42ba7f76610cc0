"""Where the test set's inputs come from: speech, noise and RIR files, and the RIRs' T60s.

Speech comes from VCTK (:func:`speechbrain_sslse.data.layouts.read_vctk`) or any
folder of audio files, noise from NOISEX-92 or any folder, RIRs from the MIT IR Survey
or any folder. Folders are searched recursively, through symbolic links, and files of
the same name in different folders get distinct ids. RIRs are loaded at 16 kHz (first
channel) and kept when their T60 (measured, or from a table) is in range.
"""

import csv
import logging
import os
import re
from pathlib import Path

from tqdm import tqdm

from speechbrain_sslse.audio import SAMPLE_RATE, read_audio
from speechbrain_sslse.data.layouts import read_mit_ir, read_noisex, read_vctk
from speechbrain_sslse.data.rir import measure_t60

logger = logging.getLogger("create_testset")

AUDIO_EXTS = (".wav", ".flac", ".sph", ".ogg")


def speaker_by_name_or_folder(path):
    """Speaker id of a speech file: the first token of its name before ``-``/``_``, else its folder.

    Unlike :func:`speechbrain_sslse.data.splits.speaker_of` (LibriSpeech names only), VCTK's
    ``p225_001`` names give their speaker too, and a name without either separator falls
    back to the folder.

    Example
    -------
    >>> speaker_by_name_or_folder("/x/103-1240-0000.flac")
    '103'
    >>> speaker_by_name_or_folder("/x/p225/p225_001_mic1.flac"), speaker_by_name_or_folder("/a/b/c.wav")
    ('p225', 'b')
    """
    m = re.match(r"^([^-_]+)[-_]", Path(path).stem)
    return m.group(1) if m else Path(path).parent.name


def walk_audio(folder, exts=AUDIO_EXTS):
    """Audio files under ``folder`` (recursively, through symbolic links), sorted.

    The paths are ``folder`` as given (made absolute, links *not* resolved) joined with
    the relative path of each file, so ``path.relative_to(folder)`` always works. Linked
    subfolders are followed, except a link back to a folder above it (a loop). Hidden
    files are left out.

    Example
    -------
    >>> import os, tempfile
    >>> d = Path(tempfile.mkdtemp()); (d / "a").mkdir(); (d / "a" / "x.FLAC").touch()
    >>> os.symlink(d / "a", d / "b"); os.symlink(d, d / "a" / "loop")
    >>> [p.relative_to(d).as_posix() for p in walk_audio(d)]
    ['a/x.FLAC', 'b/x.FLAC']
    """
    folder = Path(os.path.abspath(Path(folder).expanduser()))
    files = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        here = Path(dirpath)
        above = {os.path.realpath(folder / p) for p in here.relative_to(folder).parents}
        if os.path.realpath(here) in above:  # a link back to a folder above: a loop
            dirnames[:] = []
            continue
        for name in filenames:
            path = here / name
            if not name.startswith(".") and path.suffix.lower() in exts and path.is_file():
                files.append(path)
    return sorted(files)


def _audio_files(folder, what, exts=AUDIO_EXTS):
    folder = Path(os.path.abspath(Path(folder).expanduser()))
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} folder '{folder}' does not exist. Pass an existing folder.")
    files = walk_audio(folder, exts)
    if not files:
        raise FileNotFoundError(f"{what} folder '{folder}' holds no audio files ({', '.join(exts)}).")
    return folder, files


def unique_ids(files, root):
    """One id per file: its stem, or for a repeated stem its path below ``root`` joined by ``_``.

    Any id still taken gets ``_2``, ``_3``, ... so no two files share one (their outputs
    would overwrite each other).

    Example
    -------
    >>> unique_ids([Path("/r/a/x.wav"), Path("/r/b/x.wav"), Path("/r/b_x.flac")], Path("/r"))
    ['x', 'b_x', 'b_x_2']
    """
    ids, taken = [], set()
    for f in files:
        uid = f.stem
        if uid in taken:
            uid = "_".join(Path(f).relative_to(root).with_suffix("").parts)
        base, k = uid, 2
        while uid in taken:
            uid, k = f"{base}_{k}", k + 1
        taken.add(uid)
        ids.append(uid)
    return ids


def list_speech(args):
    """Speech items ``{id, path, speaker}`` from VCTK or a generic folder."""
    if args.vctk_folder:
        return read_vctk(args.vctk_folder)
    root, files = _audio_files(args.speech_folder, "speech")
    return [
        {"id": uid, "path": str(f.resolve()), "speaker": speaker_by_name_or_folder(f)}
        for uid, f in zip(unique_ids(files, root), files)
    ]


def list_noises(args):
    """Noise items ``{name, path}`` from NOISEX-92 or a generic folder."""
    if args.noisex_folder:
        items = read_noisex(args.noisex_folder)
    else:
        root, files = _audio_files(args.noise_folder, "noise")
        items = [
            {"name": "_".join(f.relative_to(root).with_suffix("").parts), "path": str(f.resolve())}
            for f in files
        ]
    if args.noise_types:
        wanted = [n.strip() for n in args.noise_types.split(",") if n.strip()]
        unknown = sorted(set(wanted) - {i["name"] for i in items})
        if unknown:
            raise ValueError(f"--noise_types {unknown} not found; available: {[i['name'] for i in items]}")
        items = [i for i in items if i["name"] in wanted]
    return items


def list_rirs(args):
    """RIR items ``{name, path}`` from the MIT IR Survey or a generic folder."""
    if args.mit_ir_folder:
        root = Path(args.mit_ir_folder).expanduser().resolve()
        items = read_mit_ir(root)  # absolute paths below the resolved root
        for item in items:
            item["name"] = Path(item["path"]).relative_to(root).with_suffix("").as_posix()
        return items
    root, files = _audio_files(args.rir_folder, "RIR")
    return [{"name": f.relative_to(root).with_suffix("").as_posix(), "path": str(f.resolve())} for f in files]


def read_t60_table(path):
    """Reads a ``rir,t60`` CSV into ``{name or stem: t60}``."""
    table = {}
    with open(path, newline="") as f:
        for n, row in enumerate(csv.DictReader(f), 2):
            try:
                key, t60 = row["rir"].strip(), float(row["t60"])
            except (KeyError, TypeError, ValueError) as err:
                raise ValueError(f"{path}:{n}: expected columns rir,t60 with a number ({err})") from err
            table[key] = t60
            table[Path(key).stem] = t60
    return table


def load_rirs(items, t60_min, t60_max, table=None):
    """Loads RIRs (first channel, 16 kHz) and keeps those with T60 in ``[t60_min, t60_max]``.

    Returns
    -------
    kept : list of dict
        ``name, path, t60, wav ([R] tensor)``, sorted by name.
    counts : dict
        ``total``, ``kept``, ``outside`` (T60 out of range), ``unmeasurable``.
    """
    kept, counts = [], {"total": len(items), "kept": 0, "outside": 0, "unmeasurable": 0}
    for item in tqdm(items, desc="RIRs", unit="rir", leave=False):
        wav = read_audio(item["path"], mono=False)[0]
        t60 = None
        if table:
            path = Path(item["path"])
            t60 = table.get(item["name"], table.get(path.name, table.get(path.stem)))
        if t60 is None:
            try:
                t60 = measure_t60(wav, SAMPLE_RATE)
            except ValueError as err:
                logger.info("RIR %s: T60 not measurable (%s), excluded", item["path"], err)
                counts["unmeasurable"] += 1
                continue
        if not t60_min <= t60 <= t60_max:
            counts["outside"] += 1
            continue
        kept.append({**item, "t60": float(t60), "wav": wav})
    counts["kept"] = len(kept)
    return kept, counts
