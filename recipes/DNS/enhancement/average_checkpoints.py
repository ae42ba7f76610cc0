#!/usr/bin/env python3
"""Averages the generator weights of a run's end-of-epoch checkpoints into a new checkpoint.

Averaging the last few checkpoints of a run whose validation curve has flattened often
gives a better model than any one of them (it smooths the noise of a learning rate that
is still high). This script averages ``generator.ckpt`` over the chosen epochs with
SpeechBrain's :func:`speechbrain.utils.checkpoints.average_checkpoints` and writes the
result as a checkpoint folder ``<run>/averaged/CKPT+...`` (outside ``save/``, so that
resuming the run never picks it up), which ``sslse-package --checkpoint`` and
``tune_mask_exponent.py`` take like any other. Whether it is better is for the validation
set to say (``tune_mask_exponent.py`` reports the validation metrics). A run trained with a
discriminator keeps the last averaged epoch's ``discriminator.ckpt`` beside the average (not
averaged: it is the discriminator the latest generator was trained against), for
``sslse-package --with_discriminator`` and GAN fine-tunes started from the average.

    python average_checkpoints.py --run results/mask_head --epochs 7 8 9 10
    sslse-package results/mask_head -o results/mask_head/model_avg \\
        --checkpoint results/mask_head/averaged/CKPT+...

Authors
 * speechbrain-sslse contributors
"""

import argparse
import sys
from pathlib import Path

import torch
from speechbrain.utils.checkpoints import Checkpointer, average_checkpoints


class _Weights(torch.nn.Module):
    """Holds a state dict so that SpeechBrain's Checkpointer saves it as a module's ``generator.ckpt``."""

    def __init__(self, state):
        super().__init__()
        self._state = state

    def state_dict(self, *args, **kwargs):
        """The held state dict."""
        return self._state


def _load_weights(path, map_location="cpu"):
    """A checkpoint file's state dict, tensors and plain values only."""
    return torch.load(path, map_location=map_location, weights_only=True)


def epoch_checkpoints(save_folder, epochs):
    """The end-of-epoch checkpoints of ``save_folder`` for ``epochs``, in that order.

    Raises
    ------
    SystemExit
        Naming the epochs that have no checkpoint and those that have one.
    """
    found = {
        int(c.meta["epoch"]): c
        for c in Checkpointer(save_folder).list_checkpoints()
        if c.meta.get("end-of-epoch") and "epoch" in c.meta
    }
    missing = [e for e in epochs if e not in found]
    if missing:
        raise SystemExit(
            f"{save_folder}: no end-of-epoch checkpoint for epoch(s) {missing}; "
            f"epochs with one: {sorted(found)}"
        )
    return [found[e] for e in epochs]


def average_run(run_folder, epochs, output_folder=None):
    """Writes the average of the generator weights of ``epochs`` as a checkpoint folder.

    Arguments
    ---------
    run_folder : str or Path
        The training run's ``output_folder``.
    epochs : list of int
        Epochs whose end-of-epoch checkpoints are averaged.
    output_folder : str or Path, optional
        Where the new ``CKPT+...`` folder goes (default ``<run>/averaged``).

    Returns
    -------
    Path
        The new checkpoint folder (``generator.ckpt``, the last epoch's ``discriminator.ckpt``
        when the run has one, and ``CKPT.yaml``; its metadata lists the averaged epochs and
        the CPU time of the last of them).
    """
    run_folder = Path(run_folder)
    checkpoints = epoch_checkpoints(run_folder / "save", epochs)
    state = average_checkpoints(checkpoints, "generator", parameter_loader=_load_weights)
    last = checkpoints[-1].meta
    meta = {
        "epoch": int(last["epoch"]),
        "averaged_epochs": [int(e) for e in epochs],
        "cpu_seconds": last.get("cpu_seconds"),
    }
    recoverables = {"generator": _Weights(state)}
    discriminator = Path(checkpoints[-1].path) / "discriminator.ckpt"
    if discriminator.is_file():
        recoverables["discriminator"] = _Weights(_load_weights(discriminator))
        meta["discriminator_epoch"] = int(last["epoch"])
    out = Checkpointer(Path(output_folder or run_folder / "averaged"), recoverables=recoverables)
    folder = Path(out.save_checkpoint(meta=meta, end_of_epoch=True).path)
    return folder


def main(argv=None):
    """Command line: average the given epochs of a run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="the training run's output_folder")
    parser.add_argument("--epochs", type=int, nargs="+", required=True, help="epochs to average")
    parser.add_argument("--output_folder", default=None, help="default: <run>/averaged")
    args = parser.parse_args(argv)
    folder = average_run(args.run, args.epochs, args.output_folder)
    print(f"averaged epochs {args.epochs}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
