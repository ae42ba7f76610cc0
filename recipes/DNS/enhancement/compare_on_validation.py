#!/usr/bin/env python3
"""Scores packaged models, the DNN peers and the unprocessed input on a run's validation mixtures.

The test set is for the final claim; choices are made on validation. This script puts the
peers beside the models on the validation mixtures of a training run, per validation part
(``validation.VALIDATION_PARTS``: ``standard``, the run's own mixtures that train.py ranks
by, and ``dry``, the same held-out training-set utterances with no room at 0-20 dB, which
resemble recorded noisy speech such as VoiceBank-DEMAND's), so one can see on which part a
model is behind a peer before spending CPU-hours, without looking at the test set:

    python compare_on_validation.py --run ~/.cache/speechbrain-sslse/runs/mask_head \\
        --model shipped=../../../speechbrain_sslse/assets/default_model --peer gtcrn \\
        --part standard --part dry --output_folder results/compare_on_validation

``--model NAME=FOLDER`` (a packaged model; ``NAME=FOLDER@1.5`` sets a mask head's inference
exponent) may be given several times, so may ``--peer`` (``speechbrain_sslse.peers``).
Writes ``per_file.csv`` and ``table.md`` (means with 95 % bootstrap intervals, and the first
model's paired differences to every other system) in ``--output_folder``.

Authors
 * speechbrain-sslse contributors
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import validation  # noqa: E402  (this recipe's validation set and metrics)

METRICS = ("stoi", "pesq", "dnsmos_ovrl", "nisqa")
LABELS = {"stoi": "STOI", "pesq": "PESQ", "dnsmos_ovrl": "DNSMOS OVRL", "nisqa": "NISQA MOS"}


def parse_model(text):
    """``NAME=FOLDER[@EXPONENT]`` -> ``(name, folder, exponent or None)``.

    Example
    -------
    >>> parse_model("shipped=/m/default_model@1.75")
    ('shipped', '/m/default_model', 1.75)
    >>> parse_model("ft=/runs/ft/model")
    ('ft', '/runs/ft/model', None)
    """
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise argparse.ArgumentTypeError(
            f"--model {text!r}: give NAME=FOLDER (optionally NAME=FOLDER@EXPONENT)"
        )
    folder, at, exponent = rest.rpartition("@") if "@" in rest else (rest, "", "")
    return name, folder, float(exponent) if at else None


def model_enhancer(folder, exponent=None):
    """``[T] -> [T]`` enhancement by the packaged model in ``folder`` (fp32, its inference path)."""
    from speechbrain_sslse.inference import SpectrumAwareEnhancer

    if not (Path(folder) / "hyperparams.yaml").is_file():
        raise SystemExit(f"{folder}: not a packaged model folder (no hyperparams.yaml); give a model folder")
    enhancer = SpectrumAwareEnhancer.from_hparams(source=str(folder), precision="fp32")
    if exponent is not None:
        enhancer.configure_inference(fast=False)  # the attribute is read at every call on this path
        head = enhancer.mods.vocoder.generator
        if not hasattr(head, "mask_exponent"):
            raise SystemExit(f"{folder}: its generator ({type(head).__name__}) has no mask exponent")
        head.mask_exponent = float(exponent)
    return enhancer.enhance_waveform


def peer_enhancer(name):
    """``[T] -> [T]`` enhancement by the peer ``name`` (one thread)."""
    from speechbrain_sslse.peers import enhance_with_peer

    return lambda wav: enhance_with_peer(name, wav, num_threads=1)


def summary_table(rows, systems, parts, reference):
    """Markdown: per part, each system's means (± half the 95 % interval) and its paired difference."""
    from speechbrain_sslse.metrics.significance import bootstrap_mean_ci, paired_difference_ci

    metrics = [m for m in METRICS if any(m in r for r in rows)]
    lines = []
    for part in parts:
        by_system = {s: {r["id"]: r for r in rows if r["part"] == part and r["system"] == s} for s in systems}
        n = len(by_system[systems[0]])
        lines += [f"### Validation part `{part}` ({n} mixtures)", ""]
        lines.append("| system | " + " | ".join(LABELS[m] for m in metrics) + " |")
        lines.append("|---|" + "---|" * len(metrics))
        for system in systems:
            cells = []
            for m in metrics:
                iv = bootstrap_mean_ci([r.get(m, float("nan")) for r in by_system[system].values()])
                cells.append(f"{iv.mean:.3f} ± {(iv.hi - iv.lo) / 2:.3f}")
            lines.append(f"| {system} | " + " | ".join(cells) + " |")
        lines += ["", f"Paired, `{reference}` minus each system (95 % bootstrap interval):", ""]
        lines.append("| other system | " + " | ".join(LABELS[m] for m in metrics) + " |")
        lines.append("|---|" + "---|" * len(metrics))
        for system in systems:
            if system == reference:
                continue
            cells = []
            for m in metrics:
                a = {k: r.get(m, float("nan")) for k, r in by_system[reference].items()}
                b = {k: r.get(m, float("nan")) for k, r in by_system[system].items()}
                iv = paired_difference_ci(a, b)
                star = " *" if iv.lo > 0 or iv.hi < 0 else ""
                cells.append(f"{iv.mean:+.3f} [{iv.lo:+.3f}, {iv.hi:+.3f}]{star}")
            lines.append(f"| {system} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("`*`: the interval excludes 0.")
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Command line: score every system on every part, write the per-file scores and the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a training run's output_folder (its validation set)")
    parser.add_argument(
        "--model", type=parse_model, action="append", default=[], help="NAME=FOLDER[@EXPONENT]"
    )
    parser.add_argument("--peer", action="append", default=[], help="a peer of speechbrain_sslse.peers")
    parser.add_argument(
        "--part", action="append", choices=sorted(validation.VALIDATION_PARTS), help="default: standard"
    )
    parser.add_argument(
        "--num_mixtures", type=int, default=None, help="default: the run's num_valid_mixtures"
    )
    parser.add_argument("--no_nisqa", action="store_true", help="leave NISQA out (faster)")
    parser.add_argument("--output_folder", required=True)
    args = parser.parse_args(argv)
    if not args.model:
        parser.error("give at least one --model NAME=FOLDER (the first is the reference of the paired table)")
    names = [m[0] for m in args.model] + args.peer
    if len(set(names)) != len(names) or "unprocessed" in names:
        parser.error(f"system names must be distinct and not 'unprocessed': {names}")
    from speechbrain_sslse.files import write_csv, write_text
    from speechbrain_sslse.metrics import DNSMOS

    torch.set_num_threads(1)
    parts = args.part or ["standard"]
    enhancers = {name: model_enhancer(folder, exponent) for name, folder, exponent in args.model}
    enhancers.update({name: peer_enhancer(name) for name in args.peer})
    enhancers["unprocessed"] = None
    dnsmos = DNSMOS(num_threads=1)
    nisqa = None
    if not args.no_nisqa:
        from speechbrain_sslse.metrics import NISQA

        nisqa = NISQA()
    overrides = {"num_valid_mixtures": args.num_mixtures} if args.num_mixtures else None
    rows = []
    for part in parts:
        items = validation.validation_items(args.run, overrides, part=part)
        for name, enhance in enhancers.items():
            scores = validation.score_items(items, enhance, dnsmos, desc=f"{part}: {name}", nisqa=nisqa)
            rows += [{"part": part, "system": name, **s} for s in scores]
            means = validation.validation_metrics(scores)
            print(f"{part} {name}: " + ", ".join(f"{k} {means[k]:.3f}" for k in METRICS if k in means))
    out = Path(args.output_folder)
    columns = ["part", "system", "id", *[m for m in METRICS if m in rows[0]], "level_db"]
    write_csv(out / "per_file.csv", rows, columns)
    systems = list(enhancers)
    text = f"Validation mixtures of `{args.run}` (never the test set).\n\n" + summary_table(
        rows, systems, parts, reference=args.model[0][0]
    )
    write_text(out / "table.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
