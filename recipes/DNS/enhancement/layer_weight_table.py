#!/usr/bin/env python3
"""The paper's layer-weight table (variant x Layer1..L) over the runs of the DNS recipe.

For each run, the weights are those of the checkpoint that was packaged: the run's
``model/vocoder.ckpt`` when it was packaged (the best validation checkpoint by the run's
``selection_key``), else the best checkpoint of ``save/`` by that key; never simply the
last epoch. A packaged model folder (e.g. the shipped default model) can be given too.
Writes ``layer_weights.md`` (the paper's form, with the paper's values beside),
``layer_weights.csv`` and ``layer_weights.png`` (grouped bars).

> python layer_weight_table.py results/*/1986 --output_folder results/layer_weights
> python layer_weight_table.py --scan results ../../../speechbrain_sslse/assets/default_model

Authors
 * speechbrain-sslse contributors
"""

import argparse
import re
import sys
from pathlib import Path

import torch
from ruamel.yaml import YAML

from speechbrain_sslse.files import write_csv, write_text
from speechbrain_sslse.lobes.fusion import FUSIONS
from speechbrain_sslse.packaging import PackagingError, find_checkpoint

# The paper's variant numbers (EUSIPCO 2024 slides; 7 is our FiLM the other way round).
VARIANTS = {
    "proposed": "1",
    "magnitude": "2",
    "last_layer": "3",
    "additive": "4",
    "film": "5",
    "attention_by_spectrum": "6",
    "film_by_spectrum": "7",
    "clean_embedding": "8",
    "baseline": "-",
}
FUSION_VARIANTS = {
    "additive": "additive",
    "film": "film",
    "cross_attention_by_spectrum": "attention_by_spectrum",
    "film_by_spectrum": "film_by_spectrum",
    "ssl_only": "baseline",
}
# "Combination weights for TERA hidden state layers" of the paper.
PAPER = [
    ("1", "proposed", [-0.002, -0.011, 0.036, 0.098]),
    ("2", "magnitude", [0.003, 0.016, -0.105, -0.248]),
    ("4", "additive", [0.017, 0.025, -0.479, -1.229]),
    ("5", "film", [0.015, 0.116, -0.586, -1.495]),
    ("8", "clean_embedding", [-0.068, -0.048, -0.041, 0.115]),
]


def _load_yaml(path):
    with open(path) as f:
        return flat_settings(YAML(typ="rt").load(f) or {})


def _tag(node):
    tag = getattr(node, "tag", None)
    return str(getattr(tag, "value", tag) or "")


def flat_settings(raw):
    """A run's settings with ``fusion``, ``spectrum``, ``layer_mode`` and ``last_layer_only`` as names.

    The recipe's yaml builds these parts as modules (``fusion: !new:...AdditiveFusion``,
    ``noisy_spectrum``, ``layer_combination``); runs trained before that named them in
    top-level keys, which are kept as they are.

    Example
    -------
    >>> from ruamel.yaml import YAML
    >>> raw = YAML(typ="rt").load("fusion: !new:speechbrain_sslse.lobes.FiLMFusion\\n    d_model: 8\\n"
    ...                           "layer_combination: !new:x.LayerCombination\\n    last_only: True\\n")
    >>> settings = flat_settings(raw)
    >>> settings["fusion"], settings["last_layer_only"], settings["layer_mode"]
    ('film', True, 'linear')
    """
    settings = dict(raw)
    if _tag(raw.get("fusion")).startswith("!new:"):
        name = _tag(raw["fusion"]).rsplit(".", 1)[-1]
        settings["fusion"] = {cls.__name__: key for key, cls in FUSIONS.items()}.get(name, name)
    combination = raw.get("layer_combination")
    if _tag(combination).startswith("!new:"):
        settings["layer_mode"] = combination.get("mode", "linear")
        settings["last_layer_only"] = combination.get("last_only", False)
    spectrum = raw.get("noisy_spectrum")
    if _tag(spectrum).startswith("!new:"):
        settings["spectrum"] = spectrum.get("kind", "log")
    return settings


def system_of(settings):
    """The paper's system a run's settings train: ``(variant number, name)``.

    Example
    -------
    >>> system_of({"fusion": "film", "spectrum": "log"})
    ('5', 'film')
    >>> system_of({"fusion": "cross_attention", "spectrum": "magnitude"})
    ('2', 'magnitude')
    """
    if settings.get("clean_embedding"):
        name = "clean_embedding"
    elif settings.get("last_layer_only"):
        name = "last_layer"
    elif settings.get("fusion") in FUSION_VARIANTS:
        name = FUSION_VARIANTS[settings["fusion"]]
    elif settings.get("spectrum") == "magnitude":
        name = "magnitude"
    else:
        name = "proposed"
    return VARIANTS[name], name


def effective_weights(raw, mode="linear", last_only=False):
    """The per-layer weights a :class:`~speechbrain_sslse.lobes.LayerCombination` applies.

    Example
    -------
    >>> effective_weights(torch.tensor([0.0, 0.0]), mode="softmax").tolist()
    [0.5, 0.5]
    >>> effective_weights(torch.tensor([0.3, 0.2, 0.1]), last_only=True).tolist()
    [0.0, 0.0, 1.0]
    """
    raw = raw.detach().float().cpu()
    if last_only:
        out = torch.zeros_like(raw)
        out[-1] = 1.0
        return out
    return raw.softmax(dim=0) if mode == "softmax" else raw


def _state_weights(path, mode, last_only):
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "combination.weight" not in state:
        raise PackagingError(f"{path}: no layer-combination weights (combination.weight)")
    return effective_weights(state["combination.weight"], mode, last_only).tolist()


def _row(source, settings, weights, checkpoint, epoch, how):
    variant, name = system_of(settings)
    if "head_channels" in settings:  # the mask-head generator family: not one of the paper's systems
        variant, name = "-", f"{name} fusion, mask head"
    label = str(settings.get("experiment_name") or name)
    if settings.get("schedule"):
        label += f" ({settings['schedule']} schedule)"
    return {
        "variant": variant,
        "system": name,
        "run": label,
        "source": str(source),
        "checkpoint": checkpoint,
        "epoch": epoch,
        "chosen_by": how,
        "weights": [round(float(w), 4) for w in weights],
    }


def model_folder_row(folder):
    """The row of a packaged model folder (``vocoder.ckpt`` + ``train_hyperparams.yaml``)."""
    folder = Path(folder)
    settings = _load_yaml(folder / "train_hyperparams.yaml")
    card = (folder / "README.md").read_text() if (folder / "README.md").is_file() else ""
    match = re.search(r"Packaged checkpoint: `([^`]+)` \(epoch (\w+)", card)
    checkpoint, epoch = (match.group(1), match.group(2)) if match else ("", "")
    weights = _state_weights(
        folder / "vocoder.ckpt", settings.get("layer_mode", "linear"), bool(settings.get("last_layer_only"))
    )
    how = f"packaged (best {settings.get('selection_key', 'pesq')})"
    return _row(folder, settings, weights, checkpoint, epoch, how)


def run_row(run_folder):
    """The row of a training run: its packaged model when it has one, else its best checkpoint."""
    run_folder = Path(run_folder)
    settings = _load_yaml(run_folder / "hyperparams.yaml")
    model = run_folder / "model"
    if (model / "vocoder.ckpt").is_file() and (model / "train_hyperparams.yaml").is_file():
        row = model_folder_row(model)
        row["source"] = str(run_folder)
        return row
    key = settings.get("selection_key") or "pesq"
    checkpoint = find_checkpoint(run_folder / "save", key)
    weights = _state_weights(
        Path(checkpoint.path) / "generator.ckpt",
        settings.get("layer_mode", "linear"),
        bool(settings.get("last_layer_only")),
    )
    scored = isinstance(checkpoint.meta.get(key), int | float)
    how = f"best {key} (not packaged)" if scored else "latest (no validation metric)"
    epoch = checkpoint.meta.get("epoch", "")
    return _row(run_folder, settings, weights, Path(checkpoint.path).name, epoch, how)


NO_SSL_FUSIONS = ("spectrum_only",)


def _settings_of(folder):
    """The training settings of a run folder or a model folder (empty when neither)."""
    folder = Path(folder)
    name = "train_hyperparams.yaml" if (folder / "vocoder.ckpt").is_file() else "hyperparams.yaml"
    return _load_yaml(folder / name) if (folder / name).is_file() else {}


def find_runs(root):
    """Run folders under ``root``: folders with a ``hyperparams.yaml`` and a ``save/`` folder."""
    return sorted(p.parent for p in Path(root).rglob("hyperparams.yaml") if (p.parent / "save").is_dir())


def markdown(rows, with_paper=True):
    """The table in the paper's form (and the paper's own table beside it)."""
    layers = max(len(r["weights"]) for r in rows)
    head = "| Variant | system | run | " + " | ".join(f"Layer{i + 1}" for i in range(layers))
    lines = [head + " | checkpoint (epoch), chosen by |", "|---|---|---|" + "---|" * (layers + 1)]
    order = {v: i for i, v in enumerate(VARIANTS.values())}
    for r in sorted(rows, key=lambda r: (order.get(r["variant"], 99), r["run"])):
        cells = [f"{w:.3f}" for w in r["weights"]] + [""] * (layers - len(r["weights"]))
        ckpt = f"`{r['checkpoint']}` ({r['epoch']}), {r['chosen_by']}"
        lines.append(f"| {r['variant']} | {r['system']} | {r['run']} | " + " | ".join(cells) + f" | {ckpt} |")
    if with_paper:
        lines += ["", "Paper (TERA base, DNS 2021; Song et al., EUSIPCO 2024):", ""]
        lines += ["| Variant | system | Layer1 | Layer2 | Layer3 | Layer4 |", "|---|---|---|---|---|---|"]
        lines += [f"| {v} | {n} | " + " | ".join(f"{w:.3f}" for w in ws) + " |" for v, n, ws in PAPER]
    return "\n".join(lines) + "\n"


def plot(rows, path):
    """Grouped bars: one group per run, one bar per layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from speechbrain_sslse.audio import atomic_path

    layers = max(len(r["weights"]) for r in rows)
    width = 0.8 / layers
    fig, ax = plt.subplots(figsize=(max(6.5, 1.6 * len(rows) + 2), 4.2))
    for layer in range(layers):
        xs = [i + (layer - (layers - 1) / 2) * width for i in range(len(rows))]
        ys = [r["weights"][layer] if layer < len(r["weights"]) else 0.0 for r in rows]
        ax.bar(xs, ys, width, label=f"Layer{layer + 1}")
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xticks(range(len(rows)), [f"{r['variant']}: {r['run']}" for r in rows], rotation=20, ha="right")
    ax.set_ylabel("combination weight")
    ax.set_title("Learned SSL layer weights (packaged checkpoints)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", help="run folders (train.py output_folder) or model folders")
    parser.add_argument("--scan", action="append", default=[], help="add every run folder under this one")
    parser.add_argument("--output_folder", default="results/layer_weights")
    parser.add_argument("--no_paper", action="store_true", help="leave the paper's table out")
    args = parser.parse_args(argv)
    folders = [Path(f) for f in args.folders] + [run for root in args.scan for run in find_runs(root)]
    if not folders:
        parser.error("give run or model folders, or --scan a folder holding runs")
    rows = []
    for folder in folders:
        try:
            settings = _settings_of(folder)
            if settings.get("fusion") in NO_SSL_FUSIONS:
                print(f"skipped: {folder} trains without the SSL stream (fusion {settings['fusion']})")
                continue
            if (folder / "save").is_dir():
                rows.append(run_row(folder))
            elif (folder / "vocoder.ckpt").is_file():
                rows.append(model_folder_row(folder))
            else:
                raise PackagingError(f"{folder}: not a run folder (save/) nor a model folder (vocoder.ckpt)")
        except (PackagingError, FileNotFoundError) as err:
            print(f"skipped: {err}", file=sys.stderr)
    if not rows:
        print("error: no run gave layer weights", file=sys.stderr)
        return 1
    out = Path(args.output_folder)
    layers = max(len(r["weights"]) for r in rows)
    fields = ["variant", "system", "run", "source", "checkpoint", "epoch", "chosen_by"]
    fields += [f"layer{i + 1}" for i in range(layers)]
    flat = [{**r, **{f"layer{i + 1}": w for i, w in enumerate(r["weights"])}} for r in rows]
    write_csv(out / "layer_weights.csv", flat, fields)
    text = markdown(rows, with_paper=not args.no_paper)
    write_text(out / "layer_weights.md", text)
    plot(rows, out / "layer_weights.png")
    print(text)
    print(f"Written: {out / 'layer_weights.md'}, {out / 'layer_weights.csv'}, {out / 'layer_weights.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
