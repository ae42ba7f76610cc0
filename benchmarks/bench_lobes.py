"""Parameter counts and CPU forward time of the vocoder for each fusion, at the paper's sizes.

TERA-base-sized encoder (3 x 768, random weights in s3prl's format), d_model 256,
HiFi-GAN V1 generator at hop 160; 1 s of audio, batch 1, eager fp32 with weight norm
folded, ``torch.inference_mode``. Median, min and max of ``--repeats`` runs.

    python benchmarks/bench_lobes.py [--threads 2] [--repeats 5] [--quick]
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, paper_vocoder, print_table, summary, time_runs  # noqa: E402

from speechbrain_sslse.lobes import FUSIONS  # noqa: E402


def count(module):
    return sum(p.numel() for p in module.parameters())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="CI mode: 2 fusions, 2 repeats")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    fusions = ["cross_attention", "ssl_only"] if args.quick else list(FUSIONS)
    repeats = 2 if args.quick else args.repeats
    x = torch.randn(1, int(args.seconds * 16000), generator=torch.Generator().manual_seed(0))
    rows = []
    for fusion in fusions:
        vocoder = paper_vocoder(fusion).eval()
        vocoder.remove_weight_norm()
        trainable = count(vocoder) - count(vocoder.encoder)
        with torch.inference_mode():
            times = time_runs(lambda v=vocoder: v(x), repeats=repeats)
            encoder_times = time_runs(lambda v=vocoder: v.encoder(x), repeats=repeats)
        med, lo, hi = summary(times)
        rows.append(
            [
                fusion,
                f"{count(vocoder.encoder) / 1e6:.2f}",
                f"{count(vocoder.fusion) / 1e6:.3f}",
                f"{count(vocoder.generator) / 1e6:.2f}",
                f"{trainable / 1e6:.2f}",
                f"{med:.3f}",
                f"{lo:.3f}",
                f"{hi:.3f}",
                f"{summary(encoder_times)[0]:.3f}",
            ]
        )
    print(
        f"# Vocoder at the paper's sizes, {args.seconds:g} s of audio, {args.threads} threads ({machine()})"
    )
    print_table(
        ["fusion", "encoder M", "fusion M", "generator M", "trainable M", "median s", "min s", "max s",
         "encoder s"],
        rows,
    )  # fmt: skip
    best = min(rows, key=lambda r: float(r[5]))
    rtf = float(best[5]) / args.seconds
    print(f"summary: fastest fusion {best[0]}, {best[5]} s per {args.seconds:g} s of audio (RTF {rtf:.2f})")


if __name__ == "__main__":
    main()
