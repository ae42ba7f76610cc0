"""Inference optimisations tried on the paper-size enhancer, against the same eager reference.

Each candidate runs the paper-size vocoder (``common.paper_vocoder``: TERA-base-sized
encoder, cross attention, V1 generator at hop 160) on the same input as the eager fp32
reference (weight norm in place, ``torch.no_grad``). The table gives the median, min
and max seconds of interleaved runs, the real-time factor, the speed-up over the
reference and the largest sample difference from the reference's output. The
candidates the fast path keeps are in ``bench_inference.py``; this script is the
record of the others:

- ``eager, weight norm folded``: ``remove_weight_norm()`` only;
- ``eager, inference_mode``: the same under ``torch.inference_mode``;
- ``eager, bf16 autocast``: CPU autocast to bf16 of the eager model;
- ``eager, channels-last``: not applicable to 1-D convolutions (no 4-D tensors);
  listed for completeness, not run;
- ``int8 dynamic quantisation``: ``torch.ao.quantization.quantize_dynamic`` of the
  Linear layers (the convolutions, which hold most of the work, stay fp32);
- ``torch.compile`` (inductor, fp32) of the folded generator (compiling the whole
  vocoder fails inside s3prl's TERA feature extraction);
- ``fast bf16`` (the kept default) for comparison.

    python benchmarks/bench_candidates.py                # 2 threads, 10 s, 5 repeats
    python benchmarks/bench_candidates.py --quick        # CI: 1 thread, 1 s, 2 repeats, no compile
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved_times, machine, paper_vocoder, print_table, summary  # noqa: E402

from speechbrain_sslse.fast import FastVocoder, native_cpu_bf16  # noqa: E402

SAMPLE_RATE = 16000
REFERENCE = "eager fp32 (ref)"


def candidates(vocoder, compile_model=True):
    """``{name: callable(wav [1, T]) -> [1, T]}`` of every candidate, the reference first.

    ``vocoder`` must be ``paper_vocoder()`` (seeded): the folded copies are rebuilt from
    the same seed, as a deep copy does not carry weight-norm parametrisations over cleanly.
    """
    folded = paper_vocoder().eval()
    folded.remove_weight_norm()

    def no_grad(model):
        def run(x):
            with torch.no_grad():
                return model(x)

        return run

    def inference(model):
        def run(x):
            with torch.inference_mode():
                return model(x)

        return run

    def autocast_bf16(x):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return folded(x).float()

    unquantised = paper_vocoder().eval()
    unquantised.remove_weight_norm()
    quantised = torch.ao.quantization.quantize_dynamic(unquantised, {torch.nn.Linear}, torch.qint8)
    paths = {
        REFERENCE: no_grad(vocoder),
        "eager, weight norm folded": no_grad(folded),
        "eager, inference_mode": inference(folded),
        "eager, bf16 autocast": autocast_bf16,
        "int8 dynamic (Linear)": inference(quantised),
    }
    if compile_model:
        # The whole vocoder does not compile: dynamo breaks inside s3prl's TERA front-end
        # (its feature extractor fails under tracing); the generator, most of the work, does.
        compiled = paper_vocoder().eval()
        compiled.remove_weight_norm()
        compiled.generator = torch.compile(compiled.generator, dynamic=False)
        paths["torch.compile generator (inductor)"] = inference(compiled)
    if native_cpu_bf16():
        paths["fast bf16 (kept)"] = FastVocoder(vocoder, "bf16")
    paths["fast fp32 (kept)"] = FastVocoder(vocoder, "fp32")
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (needs a C++ compiler)")
    parser.add_argument("--quick", action="store_true", help="CI mode: 1 thread, 1 s, 2 repeats, no compile")
    args = parser.parse_args(argv)
    if args.quick:
        args.threads, args.seconds, args.repeats, args.no_compile = 1, 1.0, 2, True
    torch.set_num_threads(args.threads)
    vocoder = paper_vocoder().eval()
    x = 0.1 * torch.randn(1, int(args.seconds * SAMPLE_RATE), generator=torch.Generator().manual_seed(0))
    paths = candidates(vocoder, compile_model=not args.no_compile)

    outputs, compile_seconds = {}, {}
    for name, fn in paths.items():  # warm-up (and compilation) run, outputs kept for the comparison
        start = time.perf_counter()
        outputs[name] = fn(x)
        compile_seconds[name] = time.perf_counter() - start
    times = interleaved_times(paths, x, args.repeats, warmup=False)

    ref = summary(times[REFERENCE])[0]
    rows = []
    for name, values in times.items():
        med, lo, hi = summary(values)
        diff = float((outputs[name] - outputs[REFERENCE]).abs().max())
        rows.append([name, f"{med:.3f}", f"{lo:.3f}", f"{hi:.3f}", f"{med / args.seconds:.3f}",
                     f"{ref / med:.2f}", f"{diff:.2e}", f"{compile_seconds[name]:.1f}"])  # fmt: skip
    print(
        f"# Candidates, paper-size enhancer, {args.seconds:g} s input, {args.threads} thread(s) "
        f"({machine()}), median of {args.repeats} interleaved runs"
    )
    print_table(
        ["path", "median s", "min s", "max s", "RTF", "speed-up", "max |Δ| vs ref", "first call s"], rows
    )
    print("eager, channels-last: not applicable (1-D convolutions have no channels-last layout); not run")
    best = max((r for r in rows if r[0] != REFERENCE), key=lambda r: float(r[5]))
    print(f"summary: fastest candidate {best[0]}, {best[5]}x the eager reference (RTF {best[4]})")


if __name__ == "__main__":
    main()
