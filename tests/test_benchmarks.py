"""Each benchmark script runs to its summary in quick mode (CI). No assertion on any time."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize(
    "script",
    [
        "bench_lobes.py",
        "bench_inference.py",
        "bench_candidates.py",
        "bench_train.py",
        "bench_data.py",
        "bench_peers.py",
        "bench_inference_paths.py",
    ],
)
def test_benchmark_runs_in_quick_mode(script, tmp_path):
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert any("median" in line for line in lines), result.stdout[-2000:]  # the table
    assert lines[-1].lower().startswith("summary"), lines[-1]  # the one-line summary
