"""Interruption: ``train.py`` killed with SIGKILL after its first intra-epoch checkpoint resumes from
that checkpoint and finishes; the kill leaves no half-written file that a later run would use."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from recipe_helpers import DNS_RECIPE, tiny_overrides

from speechbrain_sslse.checkpointing import AtomicCheckpointer, damaged_files

STEPS, BATCH = 6, 2
RECOVERABLES = {
    "generator.ckpt", "discriminator.ckpt", "optimizer_g.ckpt", "optimizer_d.ckpt",
    "scheduler_g.ckpt", "scheduler_d.ckpt", "counter.ckpt", "brain.ckpt", "dataloader-TRAIN.ckpt",
}  # fmt: skip


def checkpoints(save_folder):
    """Complete checkpoints, read while the training process may be writing or deleting some."""
    for _ in range(50):
        try:
            return AtomicCheckpointer(save_folder).list_checkpoints() if save_folder.is_dir() else []
        except (FileNotFoundError, NotADirectoryError):  # a folder deleted while being listed
            time.sleep(0.01)
    raise AssertionError(f"cannot list {save_folder}")


def brain_state(checkpoint):
    return yaml.safe_load((checkpoint.path / "brain.ckpt").read_text())


def sample_log(prefix):
    path = Path(f"{prefix}.rank0")
    return [line.split("\t")[0] for line in path.read_text().splitlines()] if path.is_file() else []


def start(argv, log, sample_prefix):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SSLSE_SAMPLE_LOG": str(sample_prefix)}
    env.pop("RANK", None)
    return subprocess.Popen(
        [sys.executable, "train.py", *argv], cwd=DNS_RECIPE, stdout=log, stderr=subprocess.STDOUT, env=env
    )


def test_killed_training_resumes_from_its_intra_epoch_checkpoint(mini_corpus, tiny_tera_ckpt, tmp_path):
    out = tmp_path / "run"
    argv = tiny_overrides(
        DNS_RECIPE / "hparams" / "proposed.yaml",
        out,
        tmp_path / "manifests",
        mini_corpus / "DNS",
        tiny_tera_ckpt,
        steps_per_epoch=STEPS,
        batch_size=BATCH,
        ckpt_interval_minutes=0,
    ) + ["--ckpt_interval_steps=1"]  # a Brain run option: an intra-epoch checkpoint after every step

    with open(tmp_path / "first.log", "w") as log:
        proc = start(argv, log, tmp_path / "first_samples")
        deadline = time.time() + 240
        while not [c for c in checkpoints(out / "save") if c.meta.get("brain_intra_epoch_ckpt")]:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"no intra-epoch checkpoint:\n{(tmp_path / 'first.log').read_text()[-3000:]}")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL

    # What the kill left: complete checkpoints and manifests; at most an incomplete CKPT folder.
    left = checkpoints(out / "save")
    assert left and all(c.meta["end-of-epoch"] is False for c in left)
    for checkpoint in left:
        assert {p.name for p in checkpoint.path.iterdir()} >= RECOVERABLES | {"CKPT.yaml"}
        assert not damaged_files(checkpoint.path)
    latest = max(left, key=lambda c: c.meta["unixtime"])
    done = brain_state(latest)["step"]
    assert 1 <= done < STEPS and brain_state(latest)["optimizer_step"] == done
    report = json.loads((tmp_path / "manifests" / "prepare_report.json").read_text())
    with open(tmp_path / "manifests" / "train.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == report["counts"]["train_utterances"]
    part_files = [p for p in out.rglob("*.part") if not p.parent.name.startswith("CKPT+")]
    assert not part_files
    first_draws = sample_log(tmp_path / "first_samples")
    assert len(first_draws) >= done * BATCH

    with open(tmp_path / "second.log", "w") as log:
        proc = start(argv, log, tmp_path / "second_samples")
        status = proc.wait(timeout=300)
    text = (tmp_path / "second.log").read_text()
    assert status == 0, text[-3000:]
    assert f"Loading a checkpoint from {latest.path}" in text
    # It went on from the recovered step: only the remaining steps drew training data, and they
    # drew what the killed run was drawing (the sampler resumes at its position).
    second_draws = sample_log(tmp_path / "second_samples")
    assert len(second_draws) == (STEPS - done) * BATCH
    assert second_draws[: len(first_draws) - done * BATCH] == first_draws[done * BATCH :]

    final = [c for c in checkpoints(out / "save") if c.meta["end-of-epoch"]]
    assert len(final) == 1 and brain_state(final[0])["optimizer_step"] == STEPS
    state = torch.load(final[0].path / "generator.ckpt", weights_only=True)
    assert state and not damaged_files(final[0].path)
    assert "epoch: 1" in (out / "train_log.txt").read_text()
    assert (out / "model" / "vocoder.ckpt").is_file()
    assert not AtomicCheckpointer(out / "save").incomplete_folders()
    assert not list(out.rglob("*.part"))
