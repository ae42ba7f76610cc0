"""Peak memory of reading long files (and of enhancing them): block reading against whole-file reading.

``read_audio`` reads, mixes and resamples a file block by block
(:data:`speechbrain_sslse.audio.reading.READ_BLOCK_SECONDS` at a time), so only the 16 kHz mono
result is ever held whole; the reading it replaced decoded the whole file as float32
first, transposed it, averaged its channels and resampled it in one call. Each figure is
the peak RSS (``VmHWM``) of a fresh process that reads one file once; the inputs are
48 kHz stereo 16-bit WAV files (the worst common case) written block by block into
``--folder`` (default: the temporary folder), reused when present.

Usage::

    python benchmarks/bench_read_memory.py                       # 5, 30, 60 min: reading
    python benchmarks/bench_read_memory.py --whole-max-minutes 60  # the old reading at 60 min too (~7 GB)
    python benchmarks/bench_read_memory.py --enhance 5           # + sslse-enhance's path on 5 min
    python benchmarks/bench_read_memory.py --minutes 1 --quick   # CI

Prints a table and a one-line summary; asserts nothing.

Measured on the 2-core development CPU (1 thread, busy machine; peak RSS includes the
~600 MB of an imported torch): block reading 681 / 771 / 887 MB for 5 / 30 / 60 min,
whole-file reading 1022 / 2944 / 5250 MB; the whole ``enhance_file`` of the shipped model
(read, enhance in 10 s chunks, return) 856 / 1131 / 1461 MB.
"""

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, peak_rss_mb, print_table, run_isolated  # noqa: E402

RATE, CHANNELS = 48000, 2


def make_input(folder, minutes):
    """A ``minutes``-long 48 kHz stereo PCM-16 WAV of speech-band noise bursts, written in blocks."""
    path = Path(folder) / f"sslse_bench_{minutes:g}min_48k_stereo.wav"
    frames = int(minutes * 60 * RATE)
    if path.is_file() and sf.info(path).frames == frames:
        return path
    rng = np.random.default_rng(0)
    block = 60 * RATE
    with sf.SoundFile(path, "w", RATE, CHANNELS, subtype="PCM_16") as f:
        for start in range(0, frames, block):
            n = min(block, frames - start)
            t = (start + np.arange(n)) / RATE
            envelope = 0.5 + 0.5 * np.sin(2 * math.pi * 0.7 * t)
            x = 0.1 * envelope[:, None] * rng.standard_normal((n, CHANNELS))
            f.write(x.astype(np.float32))
    return path


def read_whole(path, sample_rate=16000):
    """The reading ``read_audio`` did before block reading (kept here to measure it)."""
    import torch

    from speechbrain_sslse.audio import resample

    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    wav = torch.from_numpy(np.ascontiguousarray(data.T)).mean(dim=0)
    return resample(wav, sr, sample_rate)


def worker(args):
    """Child process: one reading (or enhancement) of one file; prints peak RSS (JSON)."""
    import torch

    torch.set_num_threads(args.threads)
    from speechbrain_sslse.audio import read_audio

    start = time.perf_counter()
    base = peak_rss_mb()
    if args.how == "blocks":
        samples = read_audio(args.path).shape[0]
    elif args.how == "whole":
        samples = read_whole(args.path).shape[0]
    else:  # the sslse-enhance path: the shipped model, read in blocks, enhanced in chunks, written
        from speechbrain_sslse.audio import write_audio
        from speechbrain_sslse.inference import SpectrumAwareEnhancer, default_model_dir

        enhancer = SpectrumAwareEnhancer.from_hparams(source=default_model_dir())
        base = peak_rss_mb()
        out = enhancer.enhance_file(args.path)
        write_audio(Path(tempfile.gettempdir()) / "sslse_bench_enhanced.wav", out)
        samples = out.shape[0]
    seconds = time.perf_counter() - start
    print(json.dumps({"base_mb": base, "peak_rss_mb": peak_rss_mb(), "samples": samples, "seconds": seconds}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[5, 30, 60], help="input durations")
    parser.add_argument("--enhance", type=float, nargs="*", default=[], help="durations to enhance too")
    parser.add_argument("--folder", default=tempfile.gettempdir(), help="where the inputs are written")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--whole-max-minutes",
        type=float,
        default=30.0,
        help="measure the whole-file reading up to this duration (it needs ~7 GB for 60 min; 0: never)",
    )
    parser.add_argument("--quick", action="store_true", help="one 1-minute input (CI)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--how", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.quick:
        args.minutes, args.enhance = [1.0], []
    print(f"# peak RSS of reading 48 kHz stereo PCM-16 WAV files ({machine()}, {args.threads} thread(s))\n")
    rows, summary = [], []
    for minutes in args.minutes:
        path = make_input(args.folder, minutes)
        hows = ["blocks"] + (["whole"] if minutes <= args.whole_max_minutes else [])
        hows += ["enhance"] if minutes in args.enhance else []
        for how in hows:
            child = ["--worker", "--path", path, "--how", how, "--threads", args.threads]
            result = run_isolated(__file__, child, threads=args.threads)
            what = {
                "blocks": "read_audio (block reading)",
                "whole": "whole-file reading (before)",
                "enhance": "enhance_file (shipped model)",
            }[how]
            rows.append(
                [
                    f"{minutes:g}",
                    f"{path.stat().st_size / 2**20:.0f}",
                    what,
                    f"{result['peak_rss_mb']:.0f}",
                    f"{result['peak_rss_mb'] - result['base_mb']:.0f}",
                    f"{result['seconds']:.1f}",
                ]
            )
            if how == "blocks":
                summary.append(f"{minutes:g} min {result['peak_rss_mb']:.0f} MB")
    headers = ["minutes", "file MB", "what", "peak RSS MB", "over start MB", "seconds (1 run)"]
    print_table(headers, rows)
    print(f"\nSummary: peak RSS of read_audio on 48 kHz stereo input: {', '.join(summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
