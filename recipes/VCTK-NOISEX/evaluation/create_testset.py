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

The stages live beside this script: the inputs in ``testset_sources.py``, the selection
and assignment in ``testset_plan.py``, the synthesis and the manifest in
``testset_writing.py``; this script parses the options and runs them in order (their
names stay importable from here).

Example (the embedded mini corpus)::

    sslse-corpus --out results/mini_corpus
    python create_testset.py --vctk_folder results/mini_corpus/VCTK \\
        --noisex_folder results/mini_corpus/NOISEX --mit_ir_folder results/mini_corpus/MIT_IR \\
        --output_folder results/testset_mini
"""

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the stages beside this script

from testset_plan import (
    balanced,
    draw_offset,
    make_plan,
    read_speaker_list,
    segment_offset,
    select_utterances,
)
from testset_sources import (
    AUDIO_EXTS,
    list_noises,
    list_rirs,
    list_speech,
    load_rirs,
    read_t60_table,
    speaker_by_name_or_folder,
    unique_ids,
    walk_audio,
)
from testset_writing import MANIFEST_FIELDS, prepare_output, synthesize, write_items, write_manifest

from speechbrain_sslse.data.layouts import LayoutError

logger = logging.getLogger("create_testset")

__all__ = [
    "AUDIO_EXTS",
    "MANIFEST_FIELDS",
    "balanced",
    "config_of",
    "draw_offset",
    "list_noises",
    "list_rirs",
    "list_speech",
    "load_rirs",
    "main",
    "make_plan",
    "parse_args",
    "prepare_output",
    "read_speaker_list",
    "read_t60_table",
    "segment_offset",
    "select_utterances",
    "speaker_by_name_or_folder",
    "synthesize",
    "unique_ids",
    "walk_audio",
    "write_items",
    "write_manifest",
]


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
