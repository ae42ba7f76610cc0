#!/usr/bin/env python3
"""Builds the developers' held-out real test set from the asset collection (``../shared/assets``).

Only what :func:`speechbrain_sslse.data.assets.split_assets` holds out is used; nothing of
it is ever trained, validated or tuned on:

- **synthetic items**: utterances of the held-out speakers (the 32 LibriSpeech speakers of
  the project's split, the speechocean762 test speakers, the VCTK excerpt), a third from
  each corpus, each reverberated with a held-out measured room whose T60 (measured,
  Schroeder T20) is within ``[--t60_min, --t60_max]`` and mixed with a held-out real noise
  (``noise4``, ``noise5``, ESC-10 fold 5, Speech Commands background) at an SNR of
  ``--snrs``. SNRs are balanced overall and within each corpus, noise *types* (each ESC-10
  class is one type, every other file its own) and rooms are balanced; utterances are
  drawn round-robin over the speakers of each corpus and cropped to ``--max_seconds``.
  The mixing is that of ``create_testset.py`` (direct-path target, SNR against the
  reverberant speech, levels), except that a noise segment is never (nearly) silent;
- **real items**: every recorded noisy/clean pair of ``paired/`` (VoiceBank-DEMAND p287,
  the DeepFilterNet demo pair), only resampled to 16 kHz mono and cropped to
  ``--max_seconds``, levels as recorded; their ``snr`` is ``real`` and ``kind`` ``real``.

Output: the layout and manifest of ``create_testset.py`` (``evaluate.py`` scores it as it
is; per-SNR tables get a ``real`` row). ``source``, ``noise_source``, ``rir_source`` and
``noisy_source`` name every file an item was made from, so a test can check that only
held-out files were used. Everything follows from ``--seed``; rerunning resumes.

Example (the default set: 72 synthetic items, 12 per SNR, and the 7 real pairs)::

    python create_real_testset.py --assets ../../../../shared/assets \\
        --output_folder ~/.cache/speechbrain-sslse/testsets/real_heldout
"""

import argparse
import logging
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from testset_plan import balanced, select_utterances
from testset_sources import load_rirs, speaker_by_name_or_folder, unique_ids
from testset_writing import prepare_output, write_items, write_manifest

from speechbrain_sslse.audio import SAMPLE_RATE, AudioError, read_audio, write_audio
from speechbrain_sslse.data.assets import AssetsMissingError, default_assets_folder, split_assets

logger = logging.getLogger("create_real_testset")

#: corpus name in the manifest, by the prefix of :func:`split_assets`'s speaker ids
CORPORA = {"libri": "librispeech", "so762": "speechocean762", "vctk": "vctk"}
DEFAULT_OUTPUT = "~/.cache/speechbrain-sslse/testsets/real_heldout"


def parse_args(argv=None):
    """Command-line options (defaults: the developers' held-out set)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--assets", default=None, help=f"the asset folder (default {default_assets_folder()})")
    p.add_argument("--output_folder", default=DEFAULT_OUTPUT, help="where clean/, noisy/, manifest.csv go")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num_items", type=int, default=72, help="synthetic items, a third per corpus")
    p.add_argument("--max_seconds", type=float, default=6.0, help="crop every item to this (0 = no crop)")
    p.add_argument("--snrs", default="-5,0,5,10,15,20", help="comma-separated SNRs in dB")
    p.add_argument("--t60_min", type=float, default=0.3)
    p.add_argument("--t60_max", type=float, default=1.3)
    p.add_argument("--min_duration", type=float, default=1.0, help="skip shorter utterances (s)")
    p.add_argument("--speech_level", type=float, default=-25.0, help="RMS level of the clean target (dBFS)")
    p.add_argument("--mixture_level", type=float, default=-25.0, help="RMS level of the noisy mixture (dBFS)")
    return p.parse_args(argv)


def asset_name(path, root):
    """A file's path below the asset root, without suffix (``noise/``, ``rir/`` dropped).

    Example
    -------
    >>> asset_name("/a/noise/esc10/001 - Dog bark/5-9032-A.ogg", "/a")
    'esc10/001 - Dog bark/5-9032-A'
    """
    rel = Path(path).relative_to(root).with_suffix("")
    parts = rel.parts[1:] if rel.parts[0] in ("noise", "rir") else rel.parts
    return "/".join(parts)


def noise_type(name):
    """The balancing unit of a held-out noise: an ESC-10 class, otherwise the file itself.

    Example
    -------
    >>> noise_type("esc10/002 - Rain/5-181766-A"), noise_type("noise4")
    ('esc10/002 - Rain', 'noise4')
    """
    parts = name.split("/")
    return "/".join(parts[:2]) if parts[0] == "esc10" and len(parts) > 2 else name


def speech_by_corpus(split, root):
    """Held-out speech items ``{id, path, speaker, corpus}``, by corpus (in :data:`CORPORA` order).

    Ids are ``<prefix>-<file stem>`` (a repeated stem gets its path below ``root``).
    """
    out = {}
    for prefix, corpus in CORPORA.items():
        pairs = [(s, Path(p)) for s, p in split.heldout_speech if s.split("-", 1)[0] == prefix]
        ids = unique_ids([p for _, p in pairs], root)
        out[corpus] = [
            {"id": f"{prefix}-{uid}", "path": str(p), "speaker": s, "corpus": corpus}
            for uid, (s, p) in zip(ids, pairs)
        ]
    return out


def quotas(total, n_groups):
    """``total`` split over ``n_groups`` as evenly as possible (the first ones get the rest).

    Example
    -------
    >>> quotas(72, 3), quotas(7, 3)
    ([24, 24, 24], [3, 2, 2])
    """
    return [total // n_groups + (1 if k < total % n_groups else 0) for k in range(n_groups)]


def pair_recordings(paths, root):
    """Noisy/clean pairs of ``paired/``: ``clean/X`` with ``noisy/X``, or ``clean*`` with ``noisy*``.

    Arguments
    ---------
    paths : list of Path
        The files of ``paired/`` (:attr:`AssetSplit.paired`).
    root : Path
        The asset root.

    Returns
    -------
    list of dict
        ``id, set, clean, noisy`` (absolute paths), sorted by id.

    Raises
    ------
    ValueError
        When a file has no partner (the message names it).

    Example
    -------
    >>> r = Path("/a")
    >>> files = [r / "paired/vb/clean/p1.flac", r / "paired/vb/noisy/p1.flac",
    ...          r / "paired/df/clean_x.flac", r / "paired/df/noisy_snr0.flac"]
    >>> [(p["id"], p["noisy"].name) for p in pair_recordings(files, r)]
    [('real-df-noisy_snr0', 'noisy_snr0.flac'), ('real-vb-p1', 'p1.flac')]
    """
    groups = {}
    for path in paths:
        rel = Path(path).relative_to(Path(root) / "paired")
        if path.parent.name in ("clean", "noisy"):
            key, role = (rel.parts[0], path.stem), path.parent.name
        elif path.stem.startswith(("clean", "noisy")):
            key, role = (rel.parent.as_posix(), None), path.stem[:5]
        else:
            raise ValueError(f"{path}: neither in clean/ or noisy/ nor named clean*/noisy*; cannot pair it")
        groups.setdefault(key, {}).setdefault(role, []).append(Path(path))
    pairs = []
    for (folder, stem), roles in groups.items():
        if len(roles.get("clean", [])) != 1 or len(roles.get("noisy", [])) != 1:
            files = [str(p) for ps in roles.values() for p in ps]
            raise ValueError(f"{files}: expected exactly one clean and one noisy file to pair")
        clean, noisy = roles["clean"][0], roles["noisy"][0]
        name = stem or noisy.stem
        uid = f"real-{folder.split('/')[0]}-{name}"
        pairs.append({"id": uid, "set": folder, "clean": clean, "noisy": noisy})
    return sorted(pairs, key=lambda p: p["id"])


def make_heldout_plan(by_corpus, noises, rirs, snrs, seed):
    """Assigns SNR, noise and room to the selected utterances (balanced, seeded).

    SNRs (in a seeded order) are tiled over the utterances in corpus order, so each SNR's
    count differs by at most one overall and within each corpus; noise types and rooms
    come from balanced cycles over seeded orders; within a type, its files are taken in a
    seeded cycle.

    Arguments
    ---------
    by_corpus : list of list of dict
        Selected utterances of each corpus.
    noises : list of dict
        ``name, path, type``.
    rirs : list of dict
        Kept rooms (:func:`testset_sources.load_rirs`).
    snrs : list of float
    seed : int

    Returns
    -------
    list of dict
        Plan entries for :func:`testset_writing.write_items`.
    """
    rng = np.random.default_rng([seed, 1])
    utterances = [u for group in by_corpus for u in group]
    n = len(utterances)
    order = [snrs[i] for i in rng.permutation(len(snrs))]
    snr_list = [order[i % len(order)] for i in range(n)]
    types = sorted({x["type"] for x in noises})
    queues = {}
    for t in types:
        files = [x for x in noises if x["type"] == t]
        queues[t] = [files[i] for i in rng.permutation(len(files))]
    # seeded orders first: a set smaller than the number of types (or rooms) still draws from all
    type_list = balanced([types[i] for i in rng.permutation(len(types))], n, rng)
    rir_list = balanced([int(i) for i in rng.permutation(len(rirs))], n, rng)
    used = Counter()
    plan = []
    for i, u in enumerate(utterances):
        t = type_list[i]
        noise = queues[t][used[t] % len(queues[t])]
        used[t] += 1
        plan.append({**u, "snr": float(snr_list[i]), "noise": noise, "rir": rirs[rir_list[i]], "index": i})
    return plan


def write_real_items(pairs, out, max_seconds):
    """Writes the recorded pairs (16 kHz mono, levels as recorded, cropped) and their rows."""
    rows = []
    for pair in pairs:
        uid = pair["id"]
        rel = {k: f"{k}/{uid}.wav" for k in ("clean", "noisy")}
        clean = read_audio(pair["clean"], min_duration=0.1)
        noisy = read_audio(pair["noisy"], min_duration=0.1)
        length = min(clean.shape[-1], noisy.shape[-1])
        if max_seconds > 0:
            length = min(length, int(round(max_seconds * SAMPLE_RATE)))
        for key, wav in (("clean", clean), ("noisy", noisy)):
            if not (out / rel[key]).is_file():
                write_audio(out / rel[key], wav[:length], SAMPLE_RATE)
        speaker = speaker_by_name_or_folder(Path(pair["clean"]).stem.removeprefix("clean_") + ".wav")
        rows.append(
            {
                "id": uid, "clean": rel["clean"], "noisy": rel["noisy"], "snr": "real", "noise": "",
                "rir": "", "t60": "", "speaker": f"real-{speaker}", "duration": f"{length / SAMPLE_RATE:.3f}",
                "reverberant": "", "snr_reference": "", "noise_offset": "", "source": str(pair["clean"]),
                "kind": "real", "corpus": pair["set"], "noise_source": "", "rir_source": "",
                "noisy_source": str(pair["noisy"]),
            }
        )  # fmt: skip
    return rows


def summary(rows):
    """Counts of a built set: items per kind, SNR, corpus, noise type and room (with T60)."""
    synthetic = [r for r in rows if r["kind"] == "synthetic"]
    return {
        "items": len(rows),
        "synthetic": len(synthetic),
        "real": len(rows) - len(synthetic),
        "per_snr": dict(sorted(Counter(r["snr"] for r in synthetic).items(), key=lambda kv: float(kv[0]))),
        "per_corpus": dict(Counter(r["corpus"] for r in rows)),
        "speakers": len({r["speaker"] for r in synthetic}),
        "noise_types": dict(sorted(Counter(noise_type(r["noise"]) for r in synthetic).items())),
        "noise_files": len({r["noise"] for r in synthetic}),
        "rooms": {
            room: {"t60": float(t60), "items": n}
            for (room, t60), n in sorted(Counter((r["rir"], r["t60"]) for r in synthetic).items())
        },
        "seconds": round(sum(float(r["duration"]) for r in rows), 1),
    }


def main(argv=None):
    """Builds the held-out real test set; returns the manifest path."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.output_folder).expanduser()
    snrs = [float(s) for s in args.snrs.split(",") if s.strip()]
    if args.num_items < 1 or not snrs:
        sys.exit("error: --num_items must be at least 1 and --snrs must name at least one SNR")
    try:
        split = split_assets(args.assets)
    except AssetsMissingError as err:
        sys.exit(f"error: {err}")
    root = Path(args.assets or default_assets_folder()).expanduser().resolve()
    speech = speech_by_corpus(split, root)
    lacking = [f"{c} speech" for c, items in speech.items() if not items]
    lacking += [k for k, v in (("noises", split.heldout_noises), ("rooms", split.heldout_rirs)) if not v]
    if lacking:
        sys.exit(f"error: {root} holds no held-out {', '.join(lacking)}; pass the complete asset folder "
                 "with --assets.")  # fmt: skip
    noises = [{"name": asset_name(p, root), "path": str(p)} for p in split.heldout_noises]
    for x in noises:
        x["type"] = noise_type(x["name"])
    rir_items = [{"name": asset_name(p, root), "path": str(p)} for p in split.heldout_rirs]
    rirs, rir_counts = load_rirs(rir_items, args.t60_min, args.t60_max)
    logger.info(
        "held-out rooms: %d, %d kept with T60 in [%.2f, %.2f] s (%d outside, %d unmeasurable)",
        rir_counts["total"], rir_counts["kept"], args.t60_min, args.t60_max,
        rir_counts["outside"], rir_counts["unmeasurable"],
    )  # fmt: skip
    if not rirs:
        sys.exit(f"error: no held-out room of {root} has a T60 in [{args.t60_min}, {args.t60_max}] s")
    try:
        pairs = pair_recordings(split.paired, root)
    except ValueError as err:
        sys.exit(f"error: {err}")

    selected = []
    for k, ((corpus, items), quota) in enumerate(zip(speech.items(), quotas(args.num_items, len(speech)))):
        rng = np.random.default_rng([args.seed, 0, k])
        chosen, _ = select_utterances(items, quota, rng, args.min_duration, 0.0)
        if len(chosen) < quota:
            logger.warning("%s: only %d utterances of at least %.1f s (asked for %d)", corpus, len(chosen),
                           args.min_duration, quota)  # fmt: skip
        selected.append(chosen)
    plan = make_heldout_plan(selected, noises, rirs, snrs, args.seed)

    cfg = {
        "builder": "create_real_testset.py", "assets": str(root), "seed": args.seed,
        "num_items": args.num_items, "max_seconds": args.max_seconds, "snrs": args.snrs,
        "t60_min": args.t60_min, "t60_max": args.t60_max, "min_duration": args.min_duration,
        "speech_level": args.speech_level, "mixture_level": args.mixture_level,
        "rirs_kept": rir_counts["kept"], "heldout": split.summary(),
    }  # fmt: skip
    prepare_output(out, cfg)
    rows = write_items(
        plan, out, args.seed, args.speech_level, args.mixture_level, args.max_seconds, active_noise=True
    )  # fmt: skip
    try:
        rows += write_real_items(pairs, out, args.max_seconds)
    except AudioError as err:
        sys.exit(f"error: {err}")
    manifest = write_manifest(out, rows)
    counts = summary(rows)
    logger.info("wrote %d items (%d synthetic, %d real) to %s", counts["items"], counts["synthetic"],
                counts["real"], manifest)  # fmt: skip
    for key in ("per_snr", "per_corpus", "noise_types", "rooms"):
        logger.info("%s: %s", key, counts[key])
    return manifest


if __name__ == "__main__":
    main()
