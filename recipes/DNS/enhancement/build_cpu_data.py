#!/usr/bin/env python3
"""Builds the training data of the model shipped in the package, in the DNS 2021 layout.

Real speech, noises and RIRs from a small local collection (by default the files beside
the project: 251 LibriSpeech utterances, 5 noises, 4 RIRs) are combined with the
embedded mini corpus into one DNS-layout folder that ``train.py --data_folder=...``
reads unchanged, with held-out material kept apart for the test set:

- ``DNS/clean/librispeech/<speaker>/*``: the LibriSpeech files of the training speakers
  of the project-wide split (:func:`speechbrain_sslse.data.splits.librispeech_excerpt_split`),
  ``DNS/clean/espeak/...``: the mini corpus's DNS clean speech;
- ``DNS/noise/real/*``: the real noises not held out, ``DNS/noise/espeak/...``: the mini
  corpus's DNS noises;
- ``DNS/impulse_responses/SLR26/...``: the mini corpus's DNS RIRs, and the real RIRs
  (``DNS/impulse_responses/real/*``; dns_prepare measures their T60 and keeps those in range);
- ``heldout_speakers.txt`` and ``test_noise/``: the held-out speakers and noises.

Files are symbolic links to their sources (nothing is copied). Then build the test set:

    python ../../VCTK-NOISEX/evaluation/create_testset.py \\
        --speech_folder <speech_folder> --held_out_speakers <out>/heldout_speakers.txt \\
        --noise_folder <out>/test_noise --mit_ir_folder <mini corpus>/MIT_IR --output_folder <out>/testset

Usage:
    python build_cpu_data.py --output_folder results/cpu_data
"""

import argparse
import json
import sys
from pathlib import Path

from speechbrain_sslse.corpus import ensure_corpus
from speechbrain_sslse.data.splits import librispeech_excerpt_split

ROOT = Path(__file__).resolve().parents[3]
ASSETS = ROOT.parent / "shared" / "assets"
AUDIO = (".wav", ".flac")


def _link(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    dst.symlink_to(Path(src).resolve())


def _audio(folder):
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO and p.is_file())


def build(output_folder, speech_folder, noise_folder, rir_folder, test_noises, corpus_size="default"):
    """Writes the DNS-layout training folder and the held-out lists; returns a summary dict."""
    out = Path(output_folder)
    dns = out / "DNS"
    corpus = Path(ensure_corpus(None, size=corpus_size))
    train_files, test_files = librispeech_excerpt_split(speech_folder)
    for f in train_files:
        f = Path(f)
        _link(f, dns / "clean" / "librispeech" / f.name.split("-")[0] / f.name)
    for f in _audio(corpus / "DNS" / "clean"):
        _link(f, dns / "clean" / "espeak" / f.relative_to(corpus / "DNS" / "clean"))
    held_out = {name.strip() for name in test_noises.split(",") if name.strip()}
    real_noises = _audio(noise_folder)
    unknown = held_out - {p.stem for p in real_noises}
    if unknown:
        raise SystemExit(f"error: held-out noises {sorted(unknown)} are not in {noise_folder}")
    for f in real_noises:
        _link(f, (out / "test_noise" if f.stem in held_out else dns / "noise" / "real") / f.name)
    for f in _audio(corpus / "DNS" / "noise"):
        _link(f, dns / "noise" / "espeak" / f.relative_to(corpus / "DNS" / "noise"))
    for f in _audio(corpus / "DNS" / "impulse_responses"):
        _link(f, dns / "impulse_responses" / f.relative_to(corpus / "DNS" / "impulse_responses"))
    for f in _audio(rir_folder):
        _link(f, dns / "impulse_responses" / "real" / f.name)
    speakers = sorted(
        {Path(f).name.split("-")[0] for f in test_files}, key=lambda s: int(s) if s.isdigit() else s
    )
    (out / "heldout_speakers.txt").write_text("\n".join(speakers) + "\n")
    summary = {
        "speech_folder": str(Path(speech_folder).resolve()),
        "mini_corpus": str(corpus),
        "train_librispeech_files": len(train_files),
        "heldout_speakers": speakers,
        "train_noises_real": sorted(p.name for p in real_noises if p.stem not in held_out),
        "test_noises": sorted(p.name for p in real_noises if p.stem in held_out),
        "mit_ir_for_test": str(corpus / "MIT_IR"),
    }
    (out / "build_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_folder", required=True)
    parser.add_argument("--speech_folder", default=ASSETS / "speech" / "librispeech-train-clean-100-excerpt")
    parser.add_argument("--noise_folder", default=ASSETS / "noise")
    parser.add_argument("--rir_folder", default=ASSETS / "rir")
    parser.add_argument(
        "--test_noises", default="noise4,noise5", help="noise file stems held out for testing"
    )
    parser.add_argument("--corpus_size", default="default")
    args = parser.parse_args(argv)
    for name in ("speech_folder", "noise_folder", "rir_folder"):
        if not Path(getattr(args, name)).is_dir():
            print(f"error: --{name} {getattr(args, name)} is not a folder", file=sys.stderr)
            return 2
    summary = build(
        args.output_folder,
        args.speech_folder,
        args.noise_folder,
        args.rir_folder,
        args.test_noises,
        args.corpus_size,
    )
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
