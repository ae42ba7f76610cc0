"""Shared helpers of the benchmark scripts: timing, peak memory, tables, paper-size models.

Benchmarks print figures; they never assert on time.
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def time_runs(fn, repeats=5, warmup=1):
    """Runs ``fn`` ``warmup`` times, then ``repeats`` times; returns the list of seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def interleaved_times(paths, arg, repeats, sync=lambda: None, warmup=True):
    """``{name: [seconds]}`` of ``fn(arg)`` for each ``{name: fn}`` of ``paths``.

    One warm-up call per path (unless ``warmup`` is False), then ``repeats`` rounds over
    all paths, so that every path sees the same machine conditions. ``sync`` is called
    around each timed call (e.g. ``torch.cuda.synchronize``).
    """
    if warmup:
        for fn in paths.values():
            fn(arg)
    sync()
    times = {name: [] for name in paths}
    for _ in range(repeats):
        for name, fn in paths.items():
            sync()
            start = time.perf_counter()
            fn(arg)
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def summary(times):
    """(median, min, max) of a list of seconds."""
    return statistics.median(times), min(times), max(times)


def peak_rss_mb():
    """Peak resident memory of this process in MB.

    Read from ``VmHWM`` in ``/proc/self/status`` where there is one: Linux carries
    ``ru_maxrss`` over ``execve``, so a child started by a large parent process (e.g.
    :func:`run_isolated`) would report at least the parent's size; ``VmHWM`` belongs to
    the new program's own address space. Elsewhere ``ru_maxrss`` (KB on Linux).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_table(headers, rows):
    """Prints a markdown table."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")


def machine():
    """One line naming the CPU and the torch build."""
    name = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores, torch {torch.__version__}"


def paper_tera_checkpoint(folder=None):
    """A TERA-base-sized checkpoint (3 x 768, random weights) in s3prl's format."""
    from speechbrain_sslse.tera import write_tera_checkpoint

    folder = Path(folder or tempfile.gettempdir())
    path = folder / "tera_base_random.ckpt"
    if not path.is_file():
        write_tera_checkpoint(path, seed=0)
    return path


def paper_vocoder(fusion="cross_attention", ckpt=None, **kwargs):
    """The paper-size vocoder: TERA-base-sized encoder, d_model 256, V1 generator at hop 160."""
    from speechbrain_sslse.lobes import SSLEncoder, spectrum_aware_vocoder

    encoder = SSLEncoder("tera", ckpt=ckpt or paper_tera_checkpoint())
    options = {"num_heads": 4, "ffn_dim": 1024} if fusion.startswith("cross_attention") else {}
    torch.manual_seed(0)
    return spectrum_aware_vocoder(
        encoder, fusion=fusion, d_model=256, fusion_options=options, generator="v1", **kwargs
    )


def run_isolated(script, args, threads=None):
    """Runs ``script args`` in a fresh Python process (for a clean peak-memory reading).

    The child prints one JSON object on its last line, which is returned.
    """
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    out = subprocess.run(
        [sys.executable, str(script), *map(str, args)], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{script} {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
