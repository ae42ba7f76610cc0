"""The DNS recipe's chunk_length_quality.py: the shipped model on a held-out real mixture, scored
with the evaluation recipe's scorer (Evaluator) and the package's level function."""

import csv
import math

import torch
from recipe_helpers import DNS_RECIPE, load_recipe_module

from speechbrain_sslse.data import signals
from speechbrain_sslse.metrics import Evaluator

COLUMNS = ["chunk_seconds", "overlap_seconds", "stoi", "pesq", "dnsmos_ovrl", "out_dbfs", "in_dbfs"]


def test_level_dbfs_reads_the_level_set_level_sets():
    x = torch.randn(16000, generator=torch.Generator().manual_seed(0))
    (y,) = signals.set_level([x], -25.0, peak=1e9)
    assert abs(signals.level_dbfs(y) - -25.0) < 1e-6


def test_chunk_length_quality_writes_its_tables_with_the_package_scorer(assets, tmp_path):
    script = load_recipe_module("dns_chunk_length_quality", DNS_RECIPE / "chunk_length_quality.py")
    # no private copies of the package's scoring or level helpers
    assert not hasattr(script, "_score") and not hasattr(script, "dbfs")
    assert script.level_dbfs is signals.level_dbfs and script.Evaluator is Evaluator

    out = tmp_path / "chunk_length"
    assert script.main(["--num_files", "1", "--chunks", "2", "--output_folder", str(out)]) == 0
    with open(out / "chunk_length_quality.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == COLUMNS
    assert [r["chunk_seconds"] for r in rows] == ["2.0", "whole file"]
    assert [float(r["overlap_seconds"]) for r in rows] == [0.5, 0.0]
    for r in rows:
        assert 0.0 < float(r["stoi"]) <= 1.0 and 1.0 <= float(r["pesq"]) <= 4.5
        assert 1.0 <= float(r["dnsmos_ovrl"]) <= 5.0
        assert abs(float(r["in_dbfs"]) - -25.0) < 0.01  # the mixture is set to -25 dBFS
        assert math.isfinite(float(r["out_dbfs"])) and float(r["out_dbfs"]) < 0.0
    lines = (out / "chunk_length_quality.md").read_text().splitlines()
    assert lines[0].startswith("Model `") and "1 held-out mixtures" in lines[0]
    assert lines[2] == "| chunk (s) | overlap (s) | STOI | PESQ | DNSMOS OVRL | output dBFS | input dBFS |"
    assert lines[4].startswith("| 2.0 | 0.5 | ") and lines[5].startswith("| whole file | 0 | ")
