#!/usr/bin/env python3
"""Builds the paper's test set: VCTK speech, NOISEX-92 noise and MIT IR Survey reverberation.

Each selected utterance (any sample rate, resampled to 16 kHz mono) is convolved with
an RIR whose T60 lies in [0.3, 1.3] s, aligned to the RIR's direct path, and mixed
with a segment of a noise type at an SNR from {-7, 0, 5, 10, 15} dB. SNRs, noise
types and RIRs are assigned in balanced cycles of seeded permutations; everything
is deterministic from ``--seed``.

Written under ``--output_folder``:

- ``clean/<id>.wav``: the target, i.e. the dry utterance scaled by the RIR's
  direct-path gain and aligned with it (what the enhancement model learns to output);
- ``reverberant/<id>.wav``: the reverberant speech alone (aligned with the target);
- ``noisy/<id>.wav``: reverberant speech + noise (the model's input);
- ``manifest.csv``: ``id,clean,noisy,snr,noise,rir,t60,speaker`` then ``duration,
  reverberant,snr_reference,noise_offset,source,kind,corpus,noise_source,rir_source,
  noisy_source``. Audio paths are relative to the manifest's folder (POSIX separators),
  so the folder can be moved as a whole; ``source``, ``noise_source`` and ``rir_source``
  are the absolute (resolved) paths of the files each item was made from, ``kind`` is
  ``synthetic`` (``real`` for recorded pairs, see ``create_real_testset.py``).

SNR: measured between the *reverberant* speech (the speech actually present in the
mixture, as in the DNS Challenge synthesiser) and the noise:
``snr == 10 log10(P(reverberant) / P(noisy - reverberant))``, checkable from the
written files (column ``snr_reference`` = ``reverberant``). Measured against the dry
target instead, the SNR would change with each room's direct-to-reverberant ratio.

Levels: the clean target is scaled to ``--speech_level`` dBFS RMS and the mixture to
``--mixture_level`` dBFS RMS (both -25 by default), each lowered if its peak would pass
0.99; the reverberant speech shares the mixture's gain, so the SNR is kept exactly. The
two levels are set apart because the direct-path target is much quieter than the
reverberant speech (by the direct-to-reverberant ratio): one common gain would leave
the target tens of dB below the mixture and make the "clean" row's non-intrusive
scores (DNSMOS, NISQA) depend on the room. STOI, PESQ and speaker similarity do not
depend on the level.

Sources (choose one of each pair):

- speech: ``--vctk_folder`` (VCTK 0.92 or 0.80 layout) or ``--speech_folder`` (any
  audio files; speaker = first token of the file name before ``-`` or ``_``, e.g.
  LibriSpeech ``103-1240-0000`` -> ``103``, else the parent folder's name);
- noise: ``--noisex_folder`` (one file per noise type) or ``--noise_folder``;
- RIRs: ``--mit_ir_folder`` or ``--rir_folder`` (first channel used).
  T60 is measured (Schroeder, T20) unless ``--t60_table`` gives it; RIRs outside
  [--t60_min, --t60_max] are excluded and counted in the log.

Folders are searched recursively, through symbolic links, for any audio format
soundfile reads (WAV, FLAC, OGG, SPHERE); relative and linked folders work, and files of
the same name in different folders get distinct ids.

Re-running with the same options resumes: files already written are kept.

Example (the embedded mini corpus)::

    sslse-corpus --out results/mini_corpus
    python create_testset.py --vctk_folder results/mini_corpus/VCTK \\
        --noisex_folder results/mini_corpus/NOISEX --mit_ir_folder results/mini_corpus/MIT_IR \\
        --output_folder results/testset_mini
"""

import argparse
import csv
import json
import logging
import math
import os
import re
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from speechbrain_sslse.audio import SAMPLE_RATE, AudioError, atomic_path, audio_info, read_audio, write_audio
from speechbrain_sslse.data.layouts import LayoutError, read_mit_ir, read_noisex, read_vctk
from speechbrain_sslse.data.mixing import loop_to_length, mix_at_snr, power, reverberate
from speechbrain_sslse.data.rir import measure_t60

logger = logging.getLogger("create_testset")

MANIFEST_FIELDS = [
    "id",
    "clean",
    "noisy",
    "snr",
    "noise",
    "rir",
    "t60",
    "speaker",
    "duration",
    "reverberant",
    "snr_reference",
    "noise_offset",
    "source",
    "kind",
    "corpus",
    "noise_source",
    "rir_source",
    "noisy_source",
]
AUDIO_EXTS = (".wav", ".flac", ".sph", ".ogg")


def parse_args(argv=None):
    """Command-line options (defaults: the paper's design)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    speech = p.add_mutually_exclusive_group(required=True)
    speech.add_argument("--vctk_folder", help="VCTK root (wav48_silence_trimmed/ or wav48/)")
    speech.add_argument("--speech_folder", help="any folder of speech files (searched recursively)")
    noise = p.add_mutually_exclusive_group(required=True)
    noise.add_argument("--noisex_folder", help="NOISEX-92 folder (one file per noise type)")
    noise.add_argument("--noise_folder", help="any folder of noise files (searched recursively)")
    rir = p.add_mutually_exclusive_group(required=True)
    rir.add_argument("--mit_ir_folder", help="MIT IR Survey folder (*.wav)")
    rir.add_argument("--rir_folder", help="any folder of RIR files (searched recursively)")
    p.add_argument("--output_folder", required=True, help="where clean/, noisy/, manifest.csv go")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--num_utterances",
        type=int,
        default=500,
        help="utterances in the test set, drawn round-robin over speakers (0 = all eligible)",
    )
    p.add_argument("--snrs", default="-7,0,5,10,15", help="comma-separated SNRs in dB")
    p.add_argument("--t60_min", type=float, default=0.3)
    p.add_argument("--t60_max", type=float, default=1.3)
    p.add_argument("--t60_table", help="optional CSV with columns rir,t60 (rir = file name or stem)")
    p.add_argument("--min_duration", type=float, default=1.0, help="skip shorter utterances (s)")
    p.add_argument("--max_duration", type=float, default=0.0, help="skip longer utterances (s, 0 = no limit)")
    p.add_argument("--crop_duration", type=float, default=0.0, help="keep the first N s of each utterance")
    p.add_argument("--held_out_speakers", help="comma-separated speaker ids, or a file with one per line")
    p.add_argument("--speech_level", type=float, default=-25.0, help="RMS level of the clean target (dBFS)")
    p.add_argument("--mixture_level", type=float, default=-25.0, help="RMS level of the noisy mixture (dBFS)")
    p.add_argument("--noise_types", help="comma-separated subset of noise names to use")
    return p.parse_args(argv)


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


def read_speaker_list(spec):
    """Speaker ids from a comma-separated string or a file with one id per line."""
    if spec is None:
        return None
    path = Path(spec).expanduser()
    if path.is_file():
        return {line.strip() for line in path.read_text().splitlines() if line.strip()}
    return {s.strip() for s in spec.split(",") if s.strip()}


def select_utterances(items, num, rng, min_duration, max_duration, speakers=None):
    """Picks utterances round-robin over speakers (seeded orders), within the duration limits.

    Arguments
    ---------
    items : list of dict
        ``id, path, speaker``.
    num : int
        How many (0 = all eligible).
    rng : numpy.random.Generator
        Seeded generator.
    min_duration, max_duration : float
        Duration limits in seconds (``max_duration`` 0 = none).
    speakers : set or None
        Keep only these speakers.

    Returns
    -------
    selected : list of dict
        Items with ``duration`` added.
    counts : dict
        ``too_short``, ``too_long``.
    """
    by_speaker = {}
    for item in items:
        if speakers is None or item["speaker"] in speakers:
            by_speaker.setdefault(item["speaker"], []).append(item)
    if speakers is not None and not by_speaker:
        raise ValueError(f"none of the held-out speakers {sorted(speakers)[:10]} ... has utterances here")
    names = sorted(by_speaker)
    queues = [[by_speaker[s][i] for i in rng.permutation(len(by_speaker[s]))] for s in names]
    queues = [queues[i] for i in rng.permutation(len(queues))]
    selected, counts = [], {"too_short": 0, "too_long": 0}
    depth = 0
    while any(depth < len(q) for q in queues) and (num <= 0 or len(selected) < num):
        for q in queues:
            if depth >= len(q) or (num > 0 and len(selected) >= num):
                continue
            try:
                sr, frames, _ = audio_info(q[depth]["path"])
            except AudioError as err:  # unreadable or empty: left out, named in the log
                logger.warning("skipping unusable speech file: %s", err)
                counts["unusable"] = counts.get("unusable", 0) + 1
                continue
            duration = frames / sr
            if duration < min_duration:
                counts["too_short"] += 1
            elif max_duration > 0 and duration > max_duration:
                counts["too_long"] += 1
            else:
                selected.append({**q[depth], "duration": duration})
        depth += 1
    return selected, counts


def balanced(values, n, rng):
    """``n`` draws from ``values`` with counts differing by at most one, in seeded order.

    Example
    -------
    >>> sorted(balanced([0, 5], 5, np.random.default_rng(0)))
    [0, 0, 0, 5, 5]
    """
    tiled = [values[i % len(values)] for i in range(n)]
    return [tiled[i] for i in rng.permutation(n)]


def make_plan(utterances, noises, rirs, snrs, seed):
    """Assigns SNR, noise type and RIR to every utterance (balanced, seeded).

    Returns
    -------
    list of dict
        Utterance items with ``snr``, ``noise`` (item), ``rir`` (item) and ``noise_seed``.
    """
    rng = np.random.default_rng([seed, 1])
    n = len(utterances)
    snr_list = balanced(list(snrs), n, rng)
    noise_list = balanced(list(range(len(noises))), n, rng)
    rir_list = balanced(list(range(len(rirs))), n, rng)
    return [
        {**u, "snr": float(snr_list[i]), "noise": noises[noise_list[i]], "rir": rirs[rir_list[i]], "index": i}
        for i, u in enumerate(utterances)
    ]


def draw_offset(seed, index, noise_length, length):
    """Seeded start (in samples) of the noise segment of item ``index``.

    Example
    -------
    >>> draw_offset(0, 3, 100, 40) == draw_offset(0, 3, 100, 40), draw_offset(0, 3, 10, 40)
    (True, 0)
    """
    if noise_length <= length:
        return 0
    return int(np.random.default_rng([seed, 2, index]).integers(0, noise_length - length))


def segment_offset(seed, index, noise_wav, length, active=False, tries=8, min_ratio=0.5):
    """Start (in samples) of the noise segment of item ``index``.

    ``active=False``: :func:`draw_offset`. ``active=True``: up to ``tries`` seeded starts
    are drawn (the first is :func:`draw_offset`'s) and the first whose segment has at
    least ``min_ratio`` of the recording's mean power is taken (else the most powerful
    one drawn), so that sparse noises (a dog bark in a 5-s clip) are not cut to silence.

    Example
    -------
    >>> import torch
    >>> burst = torch.zeros(16000); burst[12000:13000] = 1.0
    >>> start = segment_offset(0, 0, burst, 4000, active=True)
    >>> float(burst[start : start + 4000].abs().sum()) > 0
    True
    """
    n = noise_wav.shape[-1]
    if n <= length:
        return 0
    if not active:
        return draw_offset(seed, index, n, length)
    rng = np.random.default_rng([seed, 2, index])
    whole = float(power(noise_wav))
    best, best_power = 0, -1.0
    for _ in range(tries):
        start = int(rng.integers(0, n - length))
        p = float(power(noise_wav[start : start + length]))
        if p >= min_ratio * whole:
            return start
        if p > best_power:
            best, best_power = start, p
    return best


def _level_gain(x, level_db, peak=0.99):
    """Gain bringing ``x`` to an RMS of ``level_db`` dBFS, lowered if its peak would pass ``peak``."""
    gain = 10.0 ** (level_db / 20.0) / math.sqrt(float(power(x)) + 1e-12)
    top = float(x.abs().max()) * gain
    return gain * (peak / top if top > peak else 1.0)


def synthesize(entry, noise_wav, seed, speech_level=-25.0, mixture_level=-25.0, crop=0.0, active_noise=False):
    """Makes one test item.

    Arguments
    ---------
    entry : dict
        A plan entry (``path``, ``snr``, ``rir`` with ``wav``, ``index``).
    noise_wav : torch.Tensor
        ``[N]`` the whole noise recording at 16 kHz.
    seed : int
        Test-set seed (the noise offset is drawn from ``(seed, index)``).
    speech_level : float
        RMS level of the target in dBFS.
    mixture_level : float
        RMS level of the noisy mixture in dBFS (the reverberant speech gets the same gain).
    crop : float
        Keep the first ``crop`` seconds of the utterance (0 = all).
    active_noise : bool
        Choose a noise segment that is not (nearly) silent (:func:`segment_offset`).

    Returns
    -------
    dict
        ``clean``, ``reverberant``, ``noisy`` (``[T]`` tensors) and ``noise_offset`` (s).
    """
    speech = read_audio(entry["path"], min_duration=0.1)
    if crop > 0:
        speech = speech[: int(round(crop * SAMPLE_RATE))]
    reverberant, target = reverberate(speech, entry["rir"]["wav"])
    length = speech.shape[-1]
    offset = segment_offset(seed, entry["index"], noise_wav, length, active_noise)
    noise = loop_to_length(noise_wav, length, offset)
    _, scaled = mix_at_snr(reverberant, noise, entry["snr"])
    noisy = reverberant + scaled
    # The mixture and its reverberant speech share one gain (keeps the SNR); the target has its own.
    g_mix = _level_gain(noisy, mixture_level)
    noisy, reverberant = noisy * g_mix, reverberant * g_mix
    target = target * _level_gain(target, speech_level)
    return {"clean": target, "reverberant": reverberant, "noisy": noisy, "noise_offset": offset / SAMPLE_RATE}


def config_of(args, rir_counts, n_speech):
    """The options that determine the test set (stored beside it; resuming needs them equal)."""
    keys = [
        "vctk_folder", "speech_folder", "noisex_folder", "noise_folder", "mit_ir_folder", "rir_folder",
        "seed", "num_utterances", "snrs", "t60_min", "t60_max", "t60_table", "min_duration",
        "max_duration", "crop_duration", "held_out_speakers", "speech_level",
        "mixture_level", "noise_types",
    ]  # fmt: skip
    cfg = {k: getattr(args, k) for k in keys}
    for k in keys:
        if k.endswith("_folder") and cfg[k]:
            cfg[k] = str(Path(cfg[k]).expanduser().resolve())
    cfg["rirs_kept"] = rir_counts["kept"]
    cfg["speech_files"] = n_speech
    return cfg


def prepare_output(out, cfg):
    """Creates ``out`` and records ``cfg`` in ``testset_config.json`` there.

    Exits with a one-line error when ``out`` already holds a test set made with other
    options (resuming needs the same ones).
    """
    cfg_path = out / "testset_config.json"
    if cfg_path.is_file() and json.loads(cfg_path.read_text()) != cfg:
        sys.exit(
            f"error: {out} holds a test set made with other options ({cfg_path}). "
            "Use another --output_folder or delete that one."
        )
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(cfg_path) as tmp:
        Path(tmp).write_text(json.dumps(cfg, indent=2))


def write_items(plan, out, seed, speech_level=-25.0, mixture_level=-25.0, crop=0.0, active_noise=False):
    """Synthesises every plan entry into ``out/{clean,reverberant,noisy}/<id>.wav``.

    Files already written are kept (resuming). An unusable speech file is skipped and
    named in the log; an unusable noise file ends the run (every item using it would fail).

    Arguments
    ---------
    plan : list of dict
        Entries of :func:`make_plan` (``id, path, speaker, duration, snr, noise, rir,
        index``; optional ``corpus``).
    out : Path
        Output folder.
    seed : int
        Test-set seed.
    speech_level, mixture_level, crop, active_noise
        As in :func:`synthesize`.

    Returns
    -------
    list of dict
        Manifest rows (:data:`MANIFEST_FIELDS`), ``kind`` = ``synthetic``.
    """
    noise_cache = {}
    rows = []
    for entry in tqdm(plan, desc="test set", unit="utt"):
        uid = entry["id"]
        rel = {k: f"{k}/{uid}.wav" for k in ("clean", "reverberant", "noisy")}
        name = entry["noise"]["name"]
        try:
            if name not in noise_cache:
                noise_cache[name] = read_audio(entry["noise"]["path"], min_duration=0.1)
            if all((out / r).is_file() for r in rel.values()):  # resumed: already written
                length = audio_info(out / rel["clean"])[1]
                offset = segment_offset(seed, entry["index"], noise_cache[name], length, active_noise)
                offset /= SAMPLE_RATE
            else:
                item = synthesize(
                    entry, noise_cache[name], seed, speech_level, mixture_level, crop, active_noise
                )  # fmt: skip
                for key in ("clean", "reverberant", "noisy"):
                    write_audio(out / rel[key], item[key], SAMPLE_RATE)
                offset = item["noise_offset"]
        except AudioError as err:
            if err.file != str(entry["path"]):  # a noise file: every item using it would fail
                sys.exit(f"error: {err}")
            logger.warning("skipping unusable speech file: %s", err)  # e.g. NaN/Inf samples
            continue
        duration = entry["duration"]
        if crop > 0:
            duration = min(duration, crop)
        rows.append(
            {
                "id": uid,
                "clean": rel["clean"],
                "noisy": rel["noisy"],
                "snr": f"{entry['snr']:g}",
                "noise": entry["noise"]["name"],
                "rir": entry["rir"]["name"],
                "t60": f"{entry['rir']['t60']:.3f}",
                "speaker": entry["speaker"],
                "duration": f"{duration:.3f}",
                "reverberant": rel["reverberant"],
                "snr_reference": "reverberant",
                "noise_offset": f"{offset:.4f}",
                "source": entry["path"],
                "kind": "synthetic",
                "corpus": entry.get("corpus", ""),
                "noise_source": entry["noise"]["path"],
                "rir_source": entry["rir"]["path"],
                "noisy_source": "",
            }
        )
    return rows


def write_manifest(out, rows):
    """Writes ``out/manifest.csv`` (atomically) and returns its path."""
    manifest = out / "manifest.csv"
    with atomic_path(manifest) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def main(argv=None):
    """Builds the test set; returns the manifest path."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.output_folder).expanduser()
    snrs = [float(s) for s in args.snrs.split(",") if s.strip()]
    try:
        speech = list_speech(args)
        noises = list_noises(args)
        rir_items = list_rirs(args)
    except (LayoutError, FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    table = read_t60_table(args.t60_table) if args.t60_table else None
    rirs, rir_counts = load_rirs(rir_items, args.t60_min, args.t60_max, table)
    logger.info(
        "RIRs: %d found, %d kept with T60 in [%.2f, %.2f] s, %d excluded outside, %d unmeasurable",
        rir_counts["total"], rir_counts["kept"], args.t60_min, args.t60_max,
        rir_counts["outside"], rir_counts["unmeasurable"],
    )  # fmt: skip
    if not rirs:
        sys.exit(
            f"error: no RIR has a T60 in [{args.t60_min}, {args.t60_max}] s "
            f"({rir_counts['outside']} outside, {rir_counts['unmeasurable']} unmeasurable). "
            "Pass another RIR folder or widen --t60_min/--t60_max."
        )
    rng = np.random.default_rng([args.seed, 0])
    utterances, dur_counts = select_utterances(
        speech, args.num_utterances, rng, args.min_duration, args.max_duration,
        read_speaker_list(args.held_out_speakers),
    )  # fmt: skip
    logger.info(
        "speech: %d files, %d selected (%d speakers); skipped %d shorter than %.1f s, %d longer than %s s",
        len(speech), len(utterances), len({u["speaker"] for u in utterances}),
        dur_counts["too_short"], args.min_duration, dur_counts["too_long"], args.max_duration or "inf",
    )  # fmt: skip
    if not utterances:
        sys.exit("error: no utterance is within the duration limits; check --min_duration/--max_duration")
    if 0 < len(utterances) < args.num_utterances:
        logger.warning("only %d utterances available (asked for %d)", len(utterances), args.num_utterances)
    plan = make_plan(utterances, noises, rirs, snrs, args.seed)

    prepare_output(out, config_of(args, rir_counts, len(speech)))
    rows = write_items(
        plan, out, args.seed, args.speech_level, args.mixture_level, args.crop_duration
    )  # fmt: skip
    manifest = write_manifest(out, rows)
    counts = {s: sum(1 for r in rows if float(r["snr"]) == s) for s in snrs}
    logger.info("wrote %d items to %s; per SNR: %s", len(rows), manifest, counts)
    return manifest


if __name__ == "__main__":
    main()
