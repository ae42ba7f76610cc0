"""STOI and PESQ of each fast inference path against the eager fp32 path, on a test set.

Enhances the noisy files of a VCTK-NOISEX-style test set (``manifest.csv`` of
``recipes/VCTK-NOISEX/evaluation/create_testset.py``) with a trained model folder,
once per path: ``eager fp32`` (the reference, ``SpectrumAwareEnhancer(fast=False)``),
``fast fp32`` and ``fast bf16`` (bf16 only on CPUs with native bf16). Scores each
output against the clean target (STOI, wide-band PESQ) and prints the means, the
mean deltas from the reference with a 95% interval, the median and largest per-file
deltas, the SNR of each path's output against the reference output, and
whether the path keeps within the bounds set for a reduced-precision optimisation
(|mean delta| <= 0.01 STOI and <= 0.05 PESQ). Also prints the largest sample
difference from the reference.

Without ``--testset``, a test set is built from the embedded mini corpus (default
size: its VCTK, NOISEX and MIT_IR folders) under ``--workdir`` (resumed if present).

    python benchmarks/quality_fast_paths.py                       # results/quick_model, 60 utterances
    python benchmarks/quality_fast_paths.py --model MODEL_DIR --testset TESTSET_DIR
    python benchmarks/quality_fast_paths.py --quick               # CI: tiny corpus, 6 utterances
"""

import argparse
import csv
import importlib.util
import math
import statistics
import sys
import tempfile
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, print_table  # noqa: E402

from speechbrain_sslse.audio import read_audio  # noqa: E402
from speechbrain_sslse.fast import native_cpu_bf16  # noqa: E402
from speechbrain_sslse.inference import SpectrumAwareEnhancer  # noqa: E402
from speechbrain_sslse.metrics import MetricUnavailable  # noqa: E402
from speechbrain_sslse.metrics.intrusive import pesq_wb, stoi  # noqa: E402

BOUNDS = {"stoi": 0.01, "pesq": 0.05}
REFERENCE = "eager fp32"


def build_testset(workdir, size, num):
    """A test set from the embedded mini corpus (VCTK + NOISEX + MIT IR); returns its manifest."""
    from speechbrain_sslse.corpus import ensure_corpus

    corpus = Path(ensure_corpus(None, size=size))
    script = ROOT / "recipes" / "VCTK-NOISEX" / "evaluation" / "create_testset.py"
    spec = importlib.util.spec_from_file_location("create_testset", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = Path(workdir) / f"testset-{size}-{num}"
    return module.main(
        [
            "--vctk_folder", str(corpus / "VCTK"),
            "--noisex_folder", str(corpus / "NOISEX"),
            "--mit_ir_folder", str(corpus / "MIT_IR"),
            "--output_folder", str(out),
            "--num_utterances", str(num),
        ]
    )  # fmt: skip


def read_manifest(manifest, num):
    """(id, noisy path, clean path) of the first ``num`` rows (0 = all)."""
    manifest = Path(manifest)
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    rows = rows[:num] if num else rows
    return [(r["id"], manifest.parent / r["noisy"], manifest.parent / r["clean"]) for r in rows]


def scores(estimate, clean):
    """(STOI, PESQ) of ``estimate`` against ``clean``; None where a metric is unavailable."""
    result = []
    for metric in (stoi, pesq_wb):
        try:
            result.append(metric(estimate, clean))
        except MetricUnavailable:
            result.append(None)
    return result


def mean_ci(values):
    """Mean and half-width of a normal 95% interval."""
    mean = statistics.fmean(values)
    half = 1.96 * statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else float("nan")
    return mean, half


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "results" / "quick_model"), help="model folder")
    parser.add_argument("--testset", default=None, help="test-set folder with manifest.csv")
    parser.add_argument("--num", type=int, default=60, help="utterances (0 = all of the manifest)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "sslse_quality"))
    parser.add_argument("--quick", action="store_true", help="CI mode: tiny corpus, 6 utterances")
    args = parser.parse_args(argv)
    if args.quick:
        args.num = 6
    torch.set_num_threads(args.threads)
    if args.testset:
        manifest = Path(args.testset) / "manifest.csv"
        if not manifest.is_file():
            sys.exit(f"error: {manifest} not found: pass a folder written by create_testset.py")
    else:
        manifest = build_testset(args.workdir, "tiny" if args.quick else "default", args.num)
    items = read_manifest(manifest, args.num)

    paths = {REFERENCE: {"fast": False}, "fast fp32": {"precision": "fp32"}}
    if native_cpu_bf16():
        paths["fast bf16"] = {"precision": "bf16"}
    enhancers = {
        name: SpectrumAwareEnhancer.from_hparams(source=args.model, **kw) for name, kw in paths.items()
    }

    table = {name: [] for name in ["distorted", *paths]}
    max_sample_diff = dict.fromkeys(paths, 0.0)
    energy = {name: [0.0, 0.0] for name in paths}  # reference energy, difference energy
    for _uid, noisy_path, clean_path in tqdm(items, desc="enhancing", unit="utt"):
        noisy, clean = read_audio(noisy_path), read_audio(clean_path)
        table["distorted"].append(scores(noisy, clean))
        reference = None
        for name, enhancer in enhancers.items():
            enhanced = enhancer.enhance_waveform(noisy).cpu()
            if reference is None:
                reference = enhanced
            difference = (enhanced - reference).double()
            max_sample_diff[name] = max(max_sample_diff[name], float(difference.abs().max()))
            energy[name][0] += float(reference.double().pow(2).sum())
            energy[name][1] += float(difference.pow(2).sum())
            table[name].append(scores(enhanced, clean))

    rows, verdicts = [], []
    for name, values in table.items():
        row = [name]
        within = True
        for k, metric in enumerate(("stoi", "pesq")):
            pairs = [(v[k], r[k]) for v, r in zip(values, table[REFERENCE]) if None not in (v[k], r[k])]
            row.append(f"{statistics.fmean(v for v, _ in pairs):.4f}")
            if name in ("distorted", REFERENCE):
                row += ["-", "-", "-"]
                continue
            deltas = [v - r for v, r in pairs]
            mean, half = mean_ci(deltas)
            row += [f"{mean:+.4f} ± {half:.4f}", f"{statistics.median(deltas):+.4f}",
                    f"{max(deltas, key=abs):+.4f}"]  # fmt: skip
            within &= abs(mean) <= BOUNDS[metric]
        row.append("-" if name == "distorted" else f"{max_sample_diff[name]:.2e}")
        ref_energy, diff_energy = energy.get(name, (0.0, 0.0))
        snr = "-" if name in ("distorted", REFERENCE) else f"{10 * math.log10(ref_energy / diff_energy):.1f}"
        row.append(snr)
        row.append("-" if name in ("distorted", REFERENCE) else ("yes" if within else "NO"))
        if name not in ("distorted", REFERENCE):
            verdicts.append(f"{name}: {'within' if within else 'OUTSIDE'} bounds")
        rows.append(row)

    print(f"# Fast paths vs eager fp32: {len(items)} utterances of {manifest}, model {args.model}")
    print(f"# {machine()}, {args.threads} threads")
    print_table(
        ["path", "STOI", "ΔSTOI mean (95% CI)", "ΔSTOI median", "largest ΔSTOI", "PESQ",
         "ΔPESQ mean (95% CI)", "ΔPESQ median", "largest ΔPESQ", "max |Δsample|", "SNR vs ref dB",
         "within bounds"],
        rows,
    )  # fmt: skip
    print(f"\nsummary: bounds |mean ΔSTOI| <= {BOUNDS['stoi']}, |mean ΔPESQ| <= {BOUNDS['pesq']}; "
          + "; ".join(verdicts))  # fmt: skip


if __name__ == "__main__":
    main()
