"""Real-time factor and peak memory of the shipped model and of the peers, on the CPU.

Systems: the shipped default model (``SpectrumAwareEnhancer.from_hparams(source=
default_model_dir())``, its default path: chunked, fast path) and every peer of
:data:`speechbrain_sslse.peers.PEERS` (RNNoise, spectral gating, NSNet2, GTCRN,
DeepFilterNet3), each as a user runs it: one call per file, 16 kHz in and out, the
peers' resampling and delay compensation included (DeepFilterNet3 also creates its
runtime state, about 1 s of model loading, for every file).

For each thread count (``torch.set_num_threads`` and the peers' ``num_threads``:
ONNX Runtime's intra-op threads for NSNet2 and GTCRN; RNNoise, spectral gating and
DeepFilterNet3 run on one thread whatever the setting) and each input duration, the
systems are timed interleaved in one process (one warm-up call each, then ``repeats``
rounds over all systems), so that they share the machine's conditions. The input is
real LibriSpeech speech mixed with a real noise at 5 dB when ``../shared/assets`` is
present (a noisy-speech-like white noise otherwise). Peak RSS is measured in a fresh
process per system, thread count and input (load, then one call).

    python benchmarks/bench_peers.py              # 1 and 2 threads; 10 and 60 s; median of 5
    python benchmarks/bench_peers.py --quick      # CI: 1 thread, 2 s, 2 repeats
    python benchmarks/bench_peers.py --systems shipped,gtcrn --threads 1 --seconds 10
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, interleaved_times, machine, peak_rss_mb, print_table, run_isolated, summary  # noqa: E402

from speechbrain_sslse.peers import PEERS  # noqa: E402

SAMPLE_RATE = 16000
SHIPPED = "shipped model"
ASSETS = ROOT.parent / "shared" / "assets"


def noisy_input(seconds):
    """``([T], description)``: the input of every system, deterministic."""
    speech_dir = ASSETS / "speech" / "librispeech-train-clean-100-excerpt"
    noise_file = ASSETS / "noise" / "noise1.wav"
    n = int(seconds * SAMPLE_RATE)
    if speech_dir.is_dir() and noise_file.is_file():
        from speechbrain_sslse.audio import read_audio
        from speechbrain_sslse.data.mixing import mix_at_snr

        pieces, total = [], 0
        for path in sorted(speech_dir.glob("*.flac")):
            pieces.append(read_audio(path))
            total += len(pieces[-1])
            if total >= n:
                break
        speech = torch.cat(pieces)[:n]
        noise = read_audio(noise_file)
        noise = noise.repeat(n // len(noise) + 1)[:n]
        return mix_at_snr(speech, noise, 5.0)[0], "LibriSpeech speech + real noise (noise1) at 5 dB"
    wav = 0.1 * torch.randn(n, generator=torch.Generator().manual_seed(0))
    return wav, "white noise at -20 dBFS (../shared/assets absent)"


def build_system(name, threads):
    """``callable(wav [T]) -> [T]`` for one system at ``threads`` threads."""
    torch.set_num_threads(threads)
    if name == SHIPPED:
        from speechbrain_sslse.inference import SpectrumAwareEnhancer, default_model_dir

        enhancer = SpectrumAwareEnhancer.from_hparams(source=default_model_dir(), num_threads=threads)
        return enhancer.enhance_waveform
    peer = PEERS[name]
    return lambda wav: peer(wav, num_threads=threads)


def rss_worker(args):
    """Child process: builds one system, runs it once on one input, prints peak RSS (JSON)."""
    fn = build_system(args.system, args.threads)
    wav, _ = noisy_input(args.rss_seconds)
    loaded = peak_rss_mb()
    start = time.perf_counter()
    fn(wav)
    seconds = time.perf_counter() - start
    print(json.dumps({"loaded_mb": loaded, "peak_rss_mb": peak_rss_mb(), "seconds": seconds}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated CPU thread counts")
    parser.add_argument("--seconds", default="10,60", help="comma-separated input durations")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--systems", default=",".join(["shipped", *PEERS]), help="comma-separated: shipped and peer names"
    )
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    parser.add_argument("--quick", action="store_true", help="CI mode: 1 thread, 2 s, 2 repeats")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--system", default=SHIPPED, help=argparse.SUPPRESS)
    parser.add_argument("--rss-seconds", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.threads = int(args.threads)
        return rss_worker(args)
    if args.quick:
        args.threads, args.seconds, args.repeats = "1", "2", 2
    threads = [int(t) for t in args.threads.split(",")]
    durations = [float(s) for s in args.seconds.split(",")]
    names = [SHIPPED if s.strip() == "shipped" else s.strip() for s in args.systems.split(",")]
    unknown = [n for n in names if n != SHIPPED and n not in PEERS]
    if unknown:
        parser.error(f"unknown system(s) {', '.join(unknown)}; choose from shipped, {', '.join(PEERS)}")

    rows, rtf = [], {}
    description = ""
    for n in threads:
        systems = {name: build_system(name, n) for name in names}
        torch.set_num_threads(n)
        for seconds in durations:
            wav, description = noisy_input(seconds)
            times = interleaved_times(systems, wav, args.repeats)
            for name, values in times.items():
                med, lo, hi = summary(values)
                rtf[(n, seconds, name)] = med / seconds
                rss = "-"
                if not args.no_rss:
                    child = ["--worker", "--system", name, "--rss-seconds", seconds, "--threads", n]
                    rss = f"{run_isolated(__file__, child, threads=n)['peak_rss_mb']:.0f}"
                rows.append([n, f"{seconds:g}", name, f"{med:.3f}", f"{lo:.3f}", f"{hi:.3f}",
                             f"{med / seconds:.4f}", rss])  # fmt: skip
            print(f"... {n} thread(s), {seconds:g} s done", file=sys.stderr, flush=True)

    print(f"# Shipped model and peers, CPU ({machine()}), median of {args.repeats} interleaved runs")
    print(f"input: {description}; peak RSS: a fresh process per row (load, then one call)")
    print_table(["threads", "input s", "system", "median s", "min s", "max s", "RTF", "peak RSS MB"], rows)
    n, seconds = threads[0], durations[-1]
    listed = ", ".join(f"{name} {rtf[(n, seconds, name)]:.4f}" for name in names)
    print(f"\nsummary: RTF on {n} thread(s), {seconds:g} s input: {listed}")


if __name__ == "__main__":
    main()
