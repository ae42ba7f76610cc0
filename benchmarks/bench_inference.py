"""Real-time factor and peak memory of the enhancer at the paper's sizes: eager reference vs fast path.

Model: TERA-base-sized encoder (3 x 768, seeded random weights in s3prl's format),
cross-attention fusion (d_model 256), HiFi-GAN V1 generator at hop 160
(``common.paper_vocoder``). Paths, all on the same model and input:

- ``eager fp32 (ref)``: the plain eager path, SpeechBrain's ``HifiganGenerator`` as built
  (weight norm in place), ``torch.no_grad``, batch 1, the whole input in one piece;
- ``fast fp32`` / ``fast bf16``: what ``SpectrumAwareEnhancer`` runs by default
  (:class:`speechbrain_sslse.fast.FastVocoder` through
  :func:`speechbrain_sslse.chunking.overlap_add` with the packaged inference settings:
  10 s chunks, 1 s overlap, 4 chunks per call); bf16 only on CPUs with native bf16.

Timings are interleaved in one process (reference, then each fast path, per repeat),
after one warm-up call each; the table gives median, min and max seconds, the
real-time factor (median seconds per second of audio) and the speed-up over the
reference. Peak RSS is measured in a fresh process per path and input (one call after
loading), and for a 10-minute input on the default fast path. With CUDA, the batched
throughput (16 x 10 s) in multiples of real time is added.

    python benchmarks/bench_inference.py                 # 1 and 2 threads; 1, 10, 60 s; 10-min RSS
    python benchmarks/bench_inference.py --quick         # CI: 1 thread, 1 and 2 s, 2 repeats
    python benchmarks/bench_inference.py --threads 2 --seconds 10 --repeats 7
    python benchmarks/bench_inference.py --model default   # also the shipped model (or a model folder)
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    interleaved_times,
    machine,
    paper_vocoder,
    peak_rss_mb,
    print_table,
    run_isolated,
    summary,
)

from speechbrain_sslse.chunking import overlap_add  # noqa: E402
from speechbrain_sslse.fast import FastVocoder, native_cpu_bf16  # noqa: E402
from speechbrain_sslse.packaging import INFERENCE_DEFAULTS  # noqa: E402

SAMPLE_RATE = 16000
REFERENCE = "eager fp32 (ref)"


def signal(seconds, seed=0):
    """A deterministic test input ``[T]`` (white noise at -20 dBFS; the timing is content-independent)."""
    return 0.1 * torch.randn(int(seconds * SAMPLE_RATE), generator=torch.Generator().manual_seed(seed))


def build_paths(vocoder, precisions, device="cpu"):
    """``{name: callable(wav [T]) -> [T]}``: the eager reference and the fast path per precision."""
    chunk = int(INFERENCE_DEFAULTS["chunk_seconds"] * SAMPLE_RATE)
    overlap = int(INFERENCE_DEFAULTS["overlap_seconds"] * SAMPLE_RATE)
    batch = int(INFERENCE_DEFAULTS["chunk_batch_size"])

    def reference(wav):
        with torch.no_grad():
            return vocoder(wav[None])[0]

    paths = {REFERENCE: reference}
    for precision in precisions:
        fast = FastVocoder(vocoder, precision)

        def run(wav, fast=fast):
            with torch.inference_mode():
                return overlap_add(wav, fast, chunk=chunk, overlap=overlap, batch_size=batch)

        paths[f"fast {precision}"] = run
    return paths


def max_abs_difference(paths, wav):
    """Max abs difference of each fast path's output from the reference's on ``wav``, and the peak."""
    ref = paths[REFERENCE](wav)
    diffs = {name: float((fn(wav) - ref).abs().max()) for name, fn in paths.items() if name != REFERENCE}
    return diffs, float(ref.abs().max())


def rss_worker(args):
    """Child process: loads the model, runs one path once on one input, prints peak RSS (JSON)."""
    torch.set_num_threads(args.threads)
    vocoder = paper_vocoder().eval()
    precisions = [] if args.path == REFERENCE else [args.path.split()[-1]]
    fn = build_paths(vocoder, precisions)[args.path]
    wav = signal(args.rss_seconds)
    loaded = peak_rss_mb()
    start = time.perf_counter()
    fn(wav)
    seconds = time.perf_counter() - start
    print(json.dumps({"loaded_mb": loaded, "peak_rss_mb": peak_rss_mb(), "seconds": seconds}))


def cuda_throughput(vocoder, repeats, batch=16, seconds=10.0):
    """Rows of batched CUDA throughput (x real time): eager fp32 vs fast (autocast) paths."""
    vocoder = vocoder.to("cuda")
    x = torch.randn(batch, int(seconds * SAMPLE_RATE), generator=torch.Generator().manual_seed(0)) * 0.1
    x = x.to("cuda")

    def eager(_):
        with torch.no_grad():
            return vocoder(x)

    paths = {REFERENCE: eager}
    for precision in ("fp32", "bf16", "fp16"):
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            continue
        fast = FastVocoder(vocoder, precision)
        paths[f"fast {precision}"] = lambda _, fast=fast: fast(x)
    times = interleaved_times(paths, None, repeats, sync=torch.cuda.synchronize)
    ref = summary(times[REFERENCE])[0]
    rows = []
    for name, values in times.items():
        med, lo, hi = summary(values)
        rows.append([name, batch, f"{seconds:g}", f"{med:.3f}", f"{lo:.3f}", f"{hi:.3f}",
                     f"{batch * seconds / med:.0f}", f"{ref / med:.2f}"])  # fmt: skip
    return rows


def timing_rows(paths, threads, durations, repeats, extra=None):
    """Interleaved timings of ``paths`` for every thread count and input duration.

    Returns the table rows ``[threads, input s, path, median s, min s, max s, RTF,
    speed-up]`` (plus ``extra(threads, seconds, path)`` when given, computed right after
    that input's timings) and ``{(threads, seconds, path): (RTF, speed-up)}``.
    """
    rows, ratios = [], {}
    for n in threads:
        torch.set_num_threads(n)
        for seconds in durations:
            times = interleaved_times(paths, signal(seconds), repeats)
            ref = summary(times[REFERENCE])[0]
            for name, values in times.items():
                med, lo, hi = summary(values)
                ratios[(n, seconds, name)] = (med / seconds, ref / med)
                rows.append([n, f"{seconds:g}", name, f"{med:.3f}", f"{lo:.3f}", f"{hi:.3f}",
                             f"{med / seconds:.3f}", f"{ref / med:.2f}"])  # fmt: skip
                if extra is not None:
                    rows[-1].append(extra(n, seconds, name))
            print(f"... {n} thread(s), {seconds:g} s done", file=sys.stderr, flush=True)
    return rows, ratios


def packaged_model_rows(model, threads, durations, repeats):
    """Rows for a packaged model folder: the enhancer's default path vs its eager path (both chunked)."""
    from speechbrain_sslse.inference import SpectrumAwareEnhancer, default_model_dir

    source = default_model_dir() if model == "default" else model
    eager = SpectrumAwareEnhancer.from_hparams(source=source, fast=False)
    fast = SpectrumAwareEnhancer.from_hparams(source=source)
    paths = {REFERENCE: eager.enhance_waveform, f"fast {fast.precision}": fast.enhance_waveform}
    return source, timing_rows(paths, threads, durations, repeats)[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated CPU thread counts")
    parser.add_argument("--seconds", default="1,10,60", help="comma-separated input durations")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--long-minutes", type=float, default=10.0, help="peak-RSS run's input (0: skip)")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    parser.add_argument("--quick", action="store_true", help="CI mode: 1 thread, 1 and 2 s, 2 repeats")
    parser.add_argument(
        "--model", default=None, help="also time a packaged model folder ('default': the shipped model)"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--path", default=REFERENCE, help=argparse.SUPPRESS)
    parser.add_argument("--rss-seconds", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.threads = int(args.threads)
        return rss_worker(args)
    if args.quick:
        args.threads, args.seconds, args.repeats, args.long_minutes = "1", "1,2", 2, 0
    threads = [int(t) for t in args.threads.split(",")]
    durations = [float(s) for s in args.seconds.split(",")]
    precisions = ["fp32"] + (["bf16"] if native_cpu_bf16() else [])

    vocoder = paper_vocoder().eval()
    paths = build_paths(vocoder, precisions)
    torch.set_num_threads(threads[0])
    diffs, peak = max_abs_difference(paths, signal(min(durations), seed=1))

    def peak_rss(n, seconds, name):
        if args.no_rss or (args.quick and seconds != durations[-1]):
            return "-"
        child = ["--worker", "--path", name, "--rss-seconds", seconds, "--threads", n]
        return f"{run_isolated(__file__, child, threads=n)['peak_rss_mb']:.0f}"

    rows, ratios = timing_rows(paths, threads, durations, args.repeats, extra=peak_rss)

    print(f"# Enhancer at the paper's sizes, CPU ({machine()}), median of {args.repeats} interleaved runs")
    print_table(
        ["threads", "input s", "path", "median s", "min s", "max s", "RTF", "speed-up", "peak RSS MB"], rows
    )
    print()
    listed = ", ".join(f"{name} {value:.2e}" for name, value in diffs.items())
    print(f"max abs difference from the reference (random weights, output peak {peak:.3f}): {listed}")

    long_line = ""
    if args.long_minutes and not args.no_rss:
        default = f"fast {precisions[-1]}"
        seconds = args.long_minutes * 60
        child = ["--worker", "--path", default, "--rss-seconds", seconds, "--threads", threads[-1]]
        result = run_isolated(__file__, child, threads=threads[-1])
        long_line = (f"; {args.long_minutes:g}-minute input ({default}, {threads[-1]} threads): "
                     f"peak RSS {result['peak_rss_mb']:.0f} MB (model loaded: {result['loaded_mb']:.0f} MB), "
                     f"RTF {result['seconds'] / seconds:.3f}")  # fmt: skip
        print(f"\n{args.long_minutes:g}-minute input, {default}, {threads[-1]} threads: peak RSS "
              f"{result['peak_rss_mb']:.0f} MB (after loading the model: {result['loaded_mb']:.0f} MB), "
              f"{result['seconds']:.1f} s (RTF {result['seconds'] / seconds:.3f})")  # fmt: skip

    if args.model:
        source, model_rows = packaged_model_rows(args.model, threads, durations, args.repeats)
        print(f"\n# Packaged model {source} (SpectrumAwareEnhancer, chunked), median of {args.repeats}")
        header = ["threads", "input s", "path", "median s", "min s", "max s", "RTF", "speed-up"]
        print_table(header, model_rows)

    if torch.cuda.is_available():
        print(f"\n# CUDA ({torch.cuda.get_device_name()}), batched throughput, median of {args.repeats}")
        print_table(
            ["path", "batch", "input s", "median s", "min s", "max s", "x real time", "speed-up"],
            cuda_throughput(paper_vocoder().eval(), args.repeats),
        )

    n, seconds, best = threads[-1], durations[-1], f"fast {precisions[-1]}"
    if (n, 10.0, best) in ratios:
        seconds = 10.0
    rtf, speedup = ratios[(n, seconds, best)]
    ref_rtf = ratios[(n, seconds, REFERENCE)][0]
    print(f"\nsummary: {best} on {n} thread(s), {seconds:g} s input: RTF {rtf:.3f} "
          f"({speedup:.2f}x the eager reference's {ref_rtf:.3f}){long_line}")  # fmt: skip


if __name__ == "__main__":
    main()
