"""Distributed training: ``torchrun --nproc_per_node=2`` with the gloo backend on CPU runs the debug
schedule of the DNS recipe to the end; rank-0-only work happens once, and the ranks see different data.

Which process writes which file is observed with a Python audit hook (installed by a
``sitecustomize`` module on ``PYTHONPATH``) that records every file opened for writing,
with the process's rank; nothing in the recipe is changed for the test.
"""

import csv
import os
import socket
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import speechbrain as sb
from recipe_helpers import DNS_RECIPE, tiny_overrides

from speechbrain_sslse.checkpointing import AtomicCheckpointer

STEPS, BATCH, WORLD = 4, 2, 2

TRACER = """
import os, sys
_rank = os.environ.get("RANK")
if _rank is not None:
    _fd = os.open(os.environ["SSLSE_WRITE_TRACE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    _busy = []
    _WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND

    def _hook(event, args):
        if event != "open" or _busy:
            return
        path, mode, flags = args
        if not isinstance(path, (str, os.PathLike)):
            return
        writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & _WRITE)
        if writes:
            _busy.append(1)
            try:
                os.write(_fd, f"{_rank}\\t{os.path.abspath(os.fspath(path))}\\n".encode())
            finally:
                _busy.pop()

    sys.addaudithook(_hook)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def destination(path):
    """The file an atomic write stands for: ``.name.XXXX.part`` -> ``name``, and a file of a
    staging folder ``.folder.XXXX/`` (packaging) -> ``folder/``."""
    path = Path(path)
    if path.name.startswith(".") and path.name.endswith(".part"):
        path = path.with_name(path.name[1:].rsplit(".", 2)[0])
    if path.parent.name.startswith("."):
        path = path.parent.with_name(path.parent.name[1:].rsplit(".", 1)[0]) / path.name
    return path


def test_torchrun_gloo_two_ranks(mini_corpus, tiny_tera_ckpt, tmp_path):
    (tmp_path / "tracer").mkdir()
    (tmp_path / "tracer" / "sitecustomize.py").write_text(TRACER)
    out, manifests = tmp_path / "run", tmp_path / "manifests"
    argv = tiny_overrides(
        DNS_RECIPE / "hparams" / "proposed.yaml",
        out,
        manifests,
        mini_corpus / "DNS",
        tiny_tera_ckpt,
        steps_per_epoch=STEPS,
        batch_size=BATCH,
        num_samples_to_write=2,
    )
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(tmp_path / "tracer"), os.environ.get("PYTHONPATH", "")]),
        "SSLSE_WRITE_TRACE": str(tmp_path / "writes.tsv"),
        "SSLSE_SAMPLE_LOG": str(tmp_path / "samples"),
    }
    cmd = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={WORLD}",
        f"--master_port={free_port()}", "train.py", *argv, "--distributed_backend=gloo",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=DNS_RECIPE, env=env, capture_output=True, text=True, timeout=500)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]

    # Rank-0-only work happened once, on rank 0.
    writes = defaultdict(list)  # file -> ranks of each write (a temporary name is one write)
    for line in sorted(set((tmp_path / "writes.tsv").read_text().splitlines())):
        rank, path = line.split("\t")
        writes[destination(path)].append(int(rank))
    assert writes[Path(f"{tmp_path / 'samples'}.rank1")]  # both ranks are traced
    once = [manifests / m for m in ("train.csv", "valid.csv", "noise.csv", "rir.csv", "prepare_report.json")]
    once += [out / "layer_weights.csv", out / "train_log.txt", out / "model" / "README.md"]
    for path in once:
        assert writes[path] == [0], (path, writes[path])
    samples = [p for p in writes if out / "samples" in p.parents]
    assert len(samples) == 2 * 3 and all(writes[p] == [0] for p in samples)  # noisy, enhanced, clean
    saved = [p for p in writes if out / "save" in p.parents]
    assert saved and all(set(writes[p]) == {0} for p in saved)
    assert (out / "train_log.txt").read_text().count("epoch: 1") == 1
    checkpoints = AtomicCheckpointer(out / "save").list_checkpoints()
    assert len(checkpoints) == 1 and checkpoints[0].meta["end-of-epoch"]
    assert proc.stdout.count("Packaged model") == 1

    # Each rank trained on its share of the epoch's draws: DistributedSamplerWrapper over the
    # recipe's ReproducibleRandomSampler gives rank r the draws r, r + 2, r + 4, ...
    with open(manifests / "train.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    sampler = sb.dataio.sampler.ReproducibleRandomSampler(
        rows, seed=1986, replacement=True, num_samples=STEPS * BATCH
    )
    sampler.set_epoch(1)
    draws = [rows[i]["wav"] for i in sampler]
    logs = {}
    for rank in range(WORLD):
        lines = Path(f"{tmp_path / 'samples'}.rank{rank}").read_text().splitlines()
        logs[rank] = [line.split("\t") for line in lines]
        assert [wav for wav, _, _ in logs[rank]] == draws[rank::WORLD]
    # ... and mixed them with different noises and SNRs (the ranks share the global seed).
    assert all(a[1] != b[1] for a, b in zip(logs[0], logs[1]))
