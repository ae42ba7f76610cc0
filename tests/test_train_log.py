"""One reader of SpeechBrain's train_log.txt: the model card, plot_training.py and ship_model.py use it."""

import doctest
import importlib.util
import math
from pathlib import Path

from speechbrain_sslse.packaging import parse_train_log
from speechbrain_sslse.packaging.model_card import _validation_history

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "DNS" / "enhancement"
LOG = (
    "epoch: 1, lr_g: 1.00e-03, layer_weights: [0.3326, 0.3326, 0.3326] - train G_loss: 4.78, "
    "train G_grad_norm_clipped: 0.00e+00 - valid mel_loss: 2.71, valid level_db: -9.32e-01, "
    "valid stoi: 5.62e-01, valid pesq_failed: 0, valid pesq: nan\n"
    "epoch: 2, lr_g: 9.00e-04, cpu_hours: 3.10e-03 - train G_loss: 1.17e+02 - valid stoi: 5.48e-01, "
    "valid pesq: 1.05, valid dnsmos_ovrl: 1.20, valid quality: 3.94\n"
    "Epoch loaded: 2 - test stoi: 5.50e-01\n"
)


def recipe_module(name):
    spec = importlib.util.spec_from_file_location(name, RECIPE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_log_is_parsed_once_for_the_model_card_the_plots_and_the_budget(tmp_path):
    (tmp_path / "train_log.txt").write_text(LOG)
    rows = parse_train_log(tmp_path / "train_log.txt")
    assert [row["epoch"] for row in rows] == [1, 2]  # the test line is not an epoch
    assert rows[0]["meta"]["layer_weights"] == "[0.3326, 0.3326, 0.3326]"  # a list, as logged
    assert "cpu_hours" not in rows[0]["meta"]
    assert rows[0]["valid"]["level_db"] == -0.932 and math.isnan(rows[0]["valid"]["pesq"])
    assert rows[1]["train"] == {"G_loss": 117.0}

    assert _validation_history(tmp_path) == [
        ("1", "0.562", "nan", "", ""),
        ("2", "0.548", "1.050", "1.200", "3.940"),
    ]
    plot_training = recipe_module("plot_training")
    plotted = plot_training.parse_log(tmp_path / "train_log.txt")
    assert [(r["epoch"], r["cpu_hours"]) for r in plotted] == [(1, None), (2, 0.0031)]
    assert plotted[1]["valid"] == {"stoi": 0.548, "pesq": 1.05, "dnsmos_ovrl": 1.2, "quality": 3.94}
    assert set(plotted[0]["valid"]) == {"mel_loss", "level_db", "stoi", "pesq_failed", "pesq"}
    assert doctest.testmod(plot_training).failed == 0
    assert recipe_module("ship_model").budget_lines(tmp_path) == [
        "## Training budget",
        "",
        "- 2 epochs logged in `train_log.txt` (schedule: `train_hyperparams.yaml`).",
        "- CPU time of the whole run: 0.00 CPU-hours.",
    ]
