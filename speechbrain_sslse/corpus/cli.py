"""``sslse-corpus``: generates the embedded mini corpus (also ``python -m speechbrain_sslse.corpus.cli``).

Examples::

    sslse-corpus --out results/mini_corpus
    sslse-corpus --out /tmp/tiny --size tiny --seed 3
    sslse-corpus --out results/mini_real \
        --speech-dir ../shared/assets/speech/librispeech-train-clean-100-excerpt

Without ``--force`` an existing corpus generated with the same settings is kept
(and summarised); ``--force`` (or other settings) regenerates it, and refuses when
files it did not write were put inside its folders (they are never deleted). Exit
status: 0 on success, 2 on bad arguments (e.g. a ``--speech-dir`` that is missing or
holds no audio, a ``--seed`` outside [0, 2**32), an ``--out`` that is a file or cannot
be written), 130 when interrupted, 1 on other failures.
"""

import argparse
import sys
from pathlib import Path

from .realspeech import SpeechDirError, find_speech_files

SIZES = ("tiny", "default", "large")  # see speechbrain_sslse.corpus.config.SIZES


def build_parser():
    """The command-line parser.

    Example
    -------
    >>> build_parser().parse_args(["--out", "x", "--size", "tiny"]).size
    'tiny'
    """
    parser = argparse.ArgumentParser(
        prog="sslse-corpus",
        description="Generate the embedded mini corpus (DNS, VCTK, NOISEX, MIT_IR, Valentini, DEMAND and "
        "TIMIT layouts) from eSpeak NG speech, generated noise and simulated RIRs.",
    )
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--size", default="default", choices=SIZES, help="corpus size (default: default)")
    parser.add_argument("--seed", type=int, default=0, help="random seed in [0, 2**32) (default: 0)")
    parser.add_argument(
        "--speech-dir",
        default=None,
        help="folder of real speech recordings to use instead of eSpeak NG for DNS, VCTK and Valentini "
        "(speaker = file-name prefix before the first '-'); TIMIT stays synthesised",
    )
    parser.add_argument("--force", action="store_true", help="regenerate even if the corpus is already there")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv=None):
    """Entry point; returns the exit status.

    Example
    -------
    >>> main(["--out", "/tmp/never", "--speech-dir", "/nonexistent/speech"])
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 <= args.seed < 2**32:
        parser.error(f"--seed must be an integer in [0, {2**32 - 1}], got {args.seed}")
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        print(
            f"sslse-corpus: error: --out {args.out}: is a file, not a folder; choose a folder",
            file=sys.stderr,
        )
        return 2
    try:
        if args.speech_dir is not None:
            find_speech_files(args.speech_dir)  # before loading the heavy modules
        from .generate import CorpusError, ensure_corpus, format_summary, generate_corpus
    except SpeechDirError as err:
        print(f"sslse-corpus: error: {err}", file=sys.stderr)
        return 2
    try:
        if args.force:
            out = generate_corpus(args.out, args.size, args.seed, args.speech_dir, progress=not args.quiet)
        else:
            out = ensure_corpus(args.out, args.size, args.seed, args.speech_dir, progress=not args.quiet)
    except (SpeechDirError, CorpusError) as err:
        print(f"sslse-corpus: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the output folder cannot be created or written
        where = f" ({err.filename})" if err.filename else ""
        print(
            f"sslse-corpus: error: --out {args.out}: cannot write there: {err.strerror or err}{where}; "
            "choose a folder you can write to",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"sslse-corpus: interrupted; run it again to finish {args.out}", file=sys.stderr)
        return 130
    print(format_summary(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
