"""Training steps per second and peak memory of the DNS recipe's adversarial step.

One step = generator forward, discriminator update (real and generated in one pass),
generator update (adversarial + feature matching + mel L1), exactly the recipe's
``EnhancementBrain.fit_batch``, on random mixtures of the given size. Each
configuration runs in its own process, so its peak memory is its own.

    python benchmarks/bench_train.py                 # quick CPU setting sizes, proposed + baseline
    python benchmarks/bench_train.py --paper         # paper sizes (hparams/overrides/paper.args)
    python benchmarks/bench_train.py --quick         # CI mode (fewer steps)

On CUDA (when available) it also runs with bf16/fp16 mixed precision.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, peak_rss_mb, print_table, run_isolated  # noqa: E402

RECIPE = ROOT / "recipes" / "DNS" / "enhancement"


def worker(args):
    """Runs inside the child process: builds the recipe's Brain and times fit_batch."""
    import speechbrain as sb
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.dataio.batch import PaddedBatch

    sys.path.insert(0, str(RECIPE))
    import run_setup
    import train as recipe

    torch.set_num_threads(args.threads)
    hparams_file = RECIPE / "hparams" / f"{args.system}.yaml"
    paper = run_setup.override_args(run_setup.OVERRIDES_FOLDER / "paper.args") if args.paper else []
    _, _, overrides = sb.parse_arguments([str(hparams_file), *paper, f"--output_folder={args.workdir}"])
    overrides = run_setup.parse_overrides(overrides)
    if args.generator_channels:
        overrides["generator_channels"] = args.generator_channels
    if args.generator_preset:
        overrides["generator_preset"] = args.generator_preset
    if args.discriminator_width:
        overrides["discriminator_width"] = args.discriminator_width
    with open(hparams_file) as f:
        hparams = load_hyperpyyaml(f, overrides)
    batch_size = args.batch_size or hparams["batch_size"]
    samples = int((args.segment or hparams["segment_seconds"]) * 16000)
    g = torch.Generator().manual_seed(0)
    items = []
    for i in range(batch_size):
        noisy, clean = torch.randn(2, samples, generator=g) / 10
        items.append({"id": str(i), "noisy_sig": noisy, "clean_sig": clean})
    batch = PaddedBatch(items)
    precision = args.precision
    brain = recipe.EnhancementBrain(
        modules=hparams["modules"], hparams=hparams, run_opts={"device": args.device, "precision": precision}
    )
    brain.init_optimizers()
    brain.on_stage_start(sb.Stage.TRAIN)
    brain.modules.train()
    times = []
    for step in range(args.warmup + args.steps):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        brain.fit_batch(batch)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    result = {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "audio_seconds": batch_size * samples / 16000,
        "peak_rss_mb": peak_rss_mb(),
        "gpu_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith("cuda") else None,
        "trainable_m": sum(p.numel() for p in brain.modules.parameters() if p.requires_grad) / 1e6,
    }
    print(json.dumps(result))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default="proposed,baseline")
    parser.add_argument("--paper", action="store_true", help="paper sizes (V1 generator, full discriminator)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=None)
    parser.add_argument("--segment", type=float, default=None, help="seconds per training segment")
    parser.add_argument("--generator_preset", default=None)
    parser.add_argument("--generator_channels", type=int, default=None)
    parser.add_argument("--discriminator_width", type=float, default=None)
    parser.add_argument("--quick", action="store_true", help="CI mode: 2 steps, proposed only")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--system", default="proposed", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default="/tmp/sslse_bench_train", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.quick:
        args.steps, args.warmup, args.systems = 2, 1, "proposed"
    runs = [("cpu", "fp32")]
    if torch.cuda.is_available():
        runs += [("cuda", "fp32"), ("cuda", "bf16"), ("cuda", "fp16")]
    rows = []
    for system in args.systems.split(","):
        for device, precision in runs:
            child = [__file__, "--worker", "--system", system, "--device", device, "--precision", precision]
            for key in ("threads", "steps", "warmup", "batch_size", "segment", "generator_preset",
                        "generator_channels", "discriminator_width"):  # fmt: skip
                value = getattr(args, key)
                if value is not None:
                    child += [f"--{key}", value]
            if args.paper:
                child.append("--paper")
            result = run_isolated(child[0], child[1:], threads=args.threads)
            rows.append(
                [
                    system,
                    device,
                    precision,
                    f"{result['trainable_m']:.2f}",
                    f"{result['audio_seconds']:g}",
                    f"{1 / result['median']:.3f}",
                    f"{result['median']:.2f}",
                    f"{result['min']:.2f}",
                    f"{result['max']:.2f}",
                    f"{result['peak_rss_mb']:.0f}",
                    "-" if result["gpu_peak_mb"] is None else f"{result['gpu_peak_mb']:.0f}",
                ]
            )
    sizes = "paper sizes" if args.paper else "quick-schedule sizes"
    print(f"# Training step of the DNS recipe, {sizes}, {args.threads} CPU threads ({machine()})")
    print_table(
        ["system", "device", "precision", "trainable M", "audio s/step", "steps/s", "median s", "min s",
         "max s", "peak RSS MB", "GPU peak MB"],
        rows,
    )  # fmt: skip
    first = rows[0]
    print(f"summary: {first[0]} on {first[1]} {first[2]}: {first[5]} steps/s, peak RSS {first[9]} MB")


if __name__ == "__main__":
    main()
