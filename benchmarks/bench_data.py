"""On-the-fly mixing throughput of one data worker, in multiples of real time.

Times :class:`speechbrain_sslse.data.mixing.OnTheFlyMixer` (segment read, RIR
convolution, noise at an SNR, level, clipping protection) on the embedded mini
corpus's DNS layout, one thread, like a DataLoader worker. Median, min and max over
``--repeats`` runs of ``--mixtures`` mixtures each.

    python benchmarks/bench_data.py [--segment 1.0] [--repeats 5] [--quick]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table, summary, time_runs  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segment", type=float, default=1.0, help="seconds per mixture")
    parser.add_argument("--mixtures", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--corpus", default=None, help="mini corpus folder (default: the shared one)")
    parser.add_argument("--quick", action="store_true", help="CI mode: tiny corpus, fewer mixtures")
    args = parser.parse_args(argv)
    from speechbrain_sslse.corpus import ensure_corpus
    from speechbrain_sslse.data.layouts import read_dns
    from speechbrain_sslse.data.mixing import OnTheFlyMixer

    torch.set_num_threads(1)  # one DataLoader worker
    if args.quick:
        args.mixtures, args.repeats = 10, 3
    root = ensure_corpus(args.corpus, size="tiny" if args.quick else "default", progress=False)
    tree = read_dns(Path(root) / "DNS")
    import soundfile as sf

    noises = [{"wav": p, "duration": sf.info(p).duration} for p in tree["noise"]]
    rirs = [{"wav": r["path"], "t60": r["t60"], "channel": r["channel"]} for r in tree["rirs"]]
    clean = [(p, sf.info(p).duration) for p in tree["clean"]]
    rows = []
    for label, probability in (
        ("noise + RIR", 1.0),
        ("noise only", 0.0),
        ("recipe default (RIR p=0.75)", 0.75),
    ):
        mixer = OnTheFlyMixer(noises, rirs, segment_seconds=args.segment, rir_probability=probability)
        rng = np.random.default_rng(0)

        def run(mixer=mixer, rng=rng):
            for _ in range(args.mixtures):
                path, duration = clean[int(rng.integers(len(clean)))]
                mixer.mix(path, duration, rng)

        med, lo, hi = summary(time_runs(run, repeats=args.repeats))
        audio = args.mixtures * args.segment
        rows.append(
            [
                label,
                f"{audio / med:.0f}",
                f"{audio / hi:.0f}",
                f"{audio / lo:.0f}",
                f"{1000 * med / args.mixtures:.2f}",
            ]
        )
    print(f"# On-the-fly mixing, one worker (1 thread), {args.segment:g} s mixtures ({machine()})")
    print_table(["mixtures", "x real time (median)", "min", "max", "ms per mixture"], rows)
    print(f"summary: {rows[-1][1]}x real time per worker with the recipe's default RIR probability")


if __name__ == "__main__":
    main()
