"""The probing recipes plot every hidden layer of every model beside their CSVs (Figure 4 form)."""

import csv
import os
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROBUSTNESS = ROOT / "recipes" / "Valentini-DEMAND" / "robustness"
INFORMATION = ROOT / "recipes" / "TIMIT" / "probing"


def _run(script, hparams, args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(script), str(hparams), *args, "--device=cpu", "--noprogressbar"]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"


def _png_size(path):
    """(width, height) in pixels of a PNG file."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


def _models(path):
    with open(path, newline="") as f:
        return {r["model"] for r in csv.DictReader(f)}


def test_robustness_recipe_plots_every_layer_of_every_model(mini_corpus, tiny_tera_ckpt, tmp_path):
    out = tmp_path / "robustness"
    _run(
        ROBUSTNESS / "probe_robustness.py",
        ROBUSTNESS / "hparams" / "robustness.yaml",
        [
            f"--output_folder={out}",
            f"--valentini_folder={mini_corpus / 'Valentini'}",
            f"--demand_folder={mini_corpus / 'DEMAND'}",
            f"--mit_ir_folder={mini_corpus / 'MIT_IR'}",
            f"--tera_ckpt={tiny_tera_ckpt}",
            "--max_utterances=1",
            "--max_duration=1.0",
        ],
        tmp_path,
    )
    models = _models(out / "robustness_per_layer.csv")
    assert len(models) >= 2  # log-mel and the TERA checkpoints at least
    heights = set()
    for family, axis in (("noise", "snr"), ("reverb", "rt60"), ("both", "snr"), ("both", "rt60")):
        width, height = _png_size(out / f"robustness_layers_{family}_{axis}.png")
        heights.add(height)
    # One row of (MSE, CS) panels per model: 2.9 inches at 100 dpi each.
    assert heights == {round(2.9 * len(models) * 100)}


def test_information_recipe_plots_every_layer_of_every_model(mini_corpus, tiny_tera_ckpt, tmp_path):
    out = tmp_path / "information"
    _run(
        INFORMATION / "probe_information.py",
        INFORMATION / "hparams" / "information.yaml",
        [f"--output_folder={out}", f"--data_folder={mini_corpus / 'TIMIT'}", f"--tera_ckpt={tiny_tera_ckpt}",
         "--max_iter=100", "--tasks=[sx_speaker,sa1_word]"],
        tmp_path,
    )  # fmt: skip
    width, _ = _png_size(out / "information_layers.png")
    assert width == round(4.2 * 2 * 100)  # one panel per probe
