#!/usr/bin/env python3
"""Recipe for pretraining TERA on any folder of speech, with TERA's own objective.

TERA (Liu, Li, Lee, "TERA: Self-Supervised Learning of Transformer Encoder Representation
for Speech", IEEE/ACM TASLP 2021) reconstructs log-Mel frames from an altered copy:
time masking, frequency masking and magnitude alteration (Gaussian noise), with an L1
loss on the altered positions. Models, features and alteration are s3prl's own
(``s3prl.upstream.mockingjay.model``, ``s3prl.upstream.baseline.preprocessor``,
``s3prl.pretrain.mockingjay.task``), with the defaults of s3prl's ``pretrain/tera``
configurations. Checkpoints are exported in s3prl's format to
``<output_folder>/s3prl/states-<step>.ckpt``: ``tera_local`` (and
``speechbrain_sslse.lobes.SSLEncoder("tera", ckpt=...)``) loads them unchanged.

Logged in ``<output_folder>/loss_curve.csv``: the training loss every ``log_interval``
optimizer steps, and on the held-out speakers (the same alteration every time) the
loss at initialisation, after every epoch, and the copy-the-input baseline.

To run::

    python train.py hparams/tera_small.yaml \\
        --data_folder=../../../../shared/assets/speech/librispeech-train-clean-100-excerpt \\
        --extra_folders='[results/mini_corpus/DNS/clean]'

Authors
 * speechbrain-sslse contributors
"""

import csv
import json
import logging
import random
import sys
import time
from pathlib import Path

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.sampler import ReproducibleRandomSampler
from speechbrain.utils.checkpoints import mark_as_loader, mark_as_saver, register_checkpoint_hooks
from speechbrain.utils.distributed import if_main_process, run_on_main
from tqdm import tqdm

from speechbrain_sslse.audio import atomic_path, read_audio
from speechbrain_sslse.tera import (
    alter_frames,
    copy_input_loss,
    export_tera,
    normalize_level,
    reconstruction_loss,
    seed_of,
    tera_config,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare import prepare_tera_pretraining  # noqa: E402

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@register_checkpoint_hooks
class RunClock:
    """Wall-clock and process CPU seconds of training, summed over resumed runs.

    Example
    -------
    >>> clock = RunClock()
    >>> wall, cpu = clock.totals()
    >>> wall >= 0 and cpu >= 0
    True
    """

    def __init__(self):
        self.wall_offset = 0.0
        self.cpu_offset = 0.0
        self.restart()

    def restart(self):
        """Starts counting from now (on top of the recovered offsets)."""
        self.wall_start = time.time()
        self.cpu_start = time.process_time()

    def totals(self):
        """``(wall_seconds, cpu_seconds)`` so far."""
        return (
            self.wall_offset + time.time() - self.wall_start,
            self.cpu_offset + time.process_time() - self.cpu_start,
        )

    @mark_as_saver
    def save(self, path):
        wall, cpu = self.totals()
        Path(path).write_text(json.dumps({"wall_s": wall, "cpu_s": cpu}), encoding="utf-8")

    @mark_as_loader
    def load(self, path, end_of_epoch=False):
        del end_of_epoch
        totals = json.loads(Path(path).read_text(encoding="utf-8"))
        self.wall_offset, self.cpu_offset = totals["wall_s"], totals["cpu_s"]
        self.restart()


class LossCurve:
    """Rows of ``loss_curve.csv`` (step, epoch, split, loss, copy_baseline, lr, wall_s, cpu_s).

    The file is rewritten atomically after each new row; on resume, rows past the
    recovered step are dropped (they belong to the interrupted run).
    """

    FIELDS = ["step", "epoch", "split", "loss", "copy_baseline", "lr", "wall_s", "cpu_s"]

    def __init__(self, path):
        self.path = Path(path)
        self.rows = []
        if self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as handle:
                self.rows = list(csv.DictReader(handle))

    def has(self, split):
        return any(row["split"] == split for row in self.rows)

    def get(self, split):
        return [row for row in self.rows if row["split"] == split]

    def truncate(self, step):
        """Drops the rows logged after optimizer step ``step``."""
        self.rows = [row for row in self.rows if int(row["step"]) <= step or row["split"] == "init"]
        self._write()

    def add(self, **row):
        self.rows.append({key: _csv_value(row.get(key, "")) for key in self.FIELDS})
        self._write()

    def _write(self):
        if not if_main_process():
            return
        with atomic_path(self.path) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=self.FIELDS)
                writer.writeheader()
                writer.writerows(self.rows)


def _csv_value(value):
    """A number of the history CSV with six significant digits (other values as they are)."""
    return f"{value:.6g}" if isinstance(value, float) else value


class TeraBrain(sb.Brain):
    """Pretrains :class:`speechbrain_sslse.tera.MaskedAcousticModel` with TERA's objective."""

    def compute_forward(self, batch, stage):
        """Features, s3prl's alteration, reconstruction.

        Held-out batches are altered from a seed derived from their ids, so that every
        evaluation (and the initial one) sees the very same alteration.
        """
        batch = batch.to(self.device)
        wavs, wav_lens = batch.sig
        lengths = torch.round(wav_lens * wavs.shape[1]).long()
        inputs, targets, frame_lens = self.modules.features(wavs, lengths)
        seed = None if stage == sb.Stage.TRAIN else seed_of(batch.id, self.hparams.seed)
        altered = alter_frames(inputs, targets, self.hparams.task, frame_lens, seed=seed)
        predicted = self.modules.tera(altered.altered, altered.pos_enc, altered.attn_mask)
        return predicted, altered

    def compute_objectives(self, predictions, batch, stage):
        """L1 (s3prl ``task.loss``) between predicted and target frames on the altered positions."""
        predicted, altered = predictions
        loss = reconstruction_loss(predicted, altered.target, altered.mask_label, self.hparams.task["loss"])
        if stage != sb.Stage.TRAIN and altered.altered.shape == altered.target.shape:
            self.copy_losses.append(
                float(
                    copy_input_loss(
                        altered.altered, altered.target, altered.mask_label, self.hparams.task["loss"]
                    )
                )
            )
        return loss

    def optimizers_step(self):
        """One AdamW step; clips the gradient norm over all parameters, as s3prl's runner does."""
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.modules.parameters(), self.max_grad_norm)
        if not self.scaler.is_enabled() and self.skip_nonfinite_grads:
            self.check_gradients()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.optimizer_step += 1

    def on_fit_start(self):
        """Recovers the latest checkpoint, then drops the log rows of an interrupted run."""
        super().on_fit_start()
        # The schedule follows this run's settings, so that a resumed run may be extended.
        self.hparams.lr_annealing.num_training_steps = self.hparams.total_steps
        self.hparams.lr_annealing.num_warmup_steps = self.hparams.total_steps * self.hparams.warmup_proportion
        self.loss_curve.truncate(self.optimizer_step)
        self.window_losses = []

    def on_fit_batch_start(self, batch, should_step):
        """Sets the learning rate of the coming optimizer step (linear warmup, then linear decay)."""
        if should_step:
            self.hparams.lr_annealing(self.optimizer)

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        """Logs the mean training loss every ``log_interval`` optimizer steps."""
        self.window_losses.append(float(loss.detach()))
        if should_step and self.optimizer_step % self.hparams.log_interval == 0:
            wall, cpu = self.clock.totals()
            self.loss_curve.add(
                step=self.optimizer_step,
                epoch=self.hparams.epoch_counter.current,
                split="train",
                loss=sum(self.window_losses) / len(self.window_losses),
                lr=self.optimizer.param_groups[0]["lr"],
                wall_s=wall,
                cpu_s=cpu,
            )
            self.window_losses = []

    def on_stage_start(self, stage, epoch=None):
        self.copy_losses = []

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs the held-out losses, checkpoints, and exports the s3prl checkpoint."""
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        copy_baseline = sum(self.copy_losses) / max(len(self.copy_losses), 1)
        if stage == sb.Stage.VALID:
            wall, cpu = self.clock.totals()
            lr = self.optimizer.param_groups[0]["lr"]
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "step": self.optimizer_step, "lr": lr},
                train_stats={"loss": self.train_loss},
                valid_stats={"loss": stage_loss, "copy_baseline": copy_baseline},
            )
            self.loss_curve.add(
                step=self.optimizer_step,
                epoch=epoch,
                split="heldout",
                loss=float(stage_loss),
                copy_baseline=copy_baseline,
                lr=lr,
                wall_s=wall,
                cpu_s=cpu,
            )
            self.checkpointer.save_and_keep_only(
                meta={"loss": float(stage_loss), "step": self.optimizer_step}, num_to_keep=1
            )
            self.export()

    def _save_intra_epoch_ckpt(self):
        """Intra-epoch checkpoint, plus its s3prl export."""
        super()._save_intra_epoch_ckpt()
        self.export()

    def heldout_losses(self, dataset):
        """Reconstruction loss and copy baseline of the current weights on ``dataset``.

        Returns
        -------
        (float, float)
            Mean batch loss and mean copy-the-input baseline.
        """
        loader = self.make_dataloader(
            dataset, sb.Stage.TEST, ckpt_prefix=None, **self.hparams.heldout_dataloader_opts
        )
        self.modules.eval()
        self.copy_losses = []
        losses = []
        for batch in tqdm(loader, desc="held-out", disable=self.noprogressbar):
            losses.append(float(self.evaluate_batch(batch, sb.Stage.TEST)))
        return sum(losses) / len(losses), sum(self.copy_losses) / max(len(self.copy_losses), 1)

    def record_initial_loss(self, dataset):
        """Logs the held-out loss of the freshly initialised model (once per experiment)."""
        if self.loss_curve.has("init"):
            return
        loss, copy_baseline = self.heldout_losses(dataset)
        logger.info("held-out loss at initialisation %.4f, copy-the-input baseline %.4f", loss, copy_baseline)
        wall, cpu = self.clock.totals()
        self.loss_curve.add(
            step=0, epoch=0, split="init", loss=loss, copy_baseline=copy_baseline, wall_s=wall, cpu_s=cpu
        )

    def export(self):
        """Writes ``<export_folder>/states-<step>.ckpt`` (s3prl format); keeps the last ``max_exports``."""
        if not if_main_process():
            return None
        folder = Path(self.hparams.export_folder)
        path = folder / f"states-{self.optimizer_step}.ckpt"
        export_tera(
            self.hparams.tera,
            tera_config(self.hparams.transformer, self.hparams.task, self.hparams.audio),
            path,
            step=self.optimizer_step,
            dtype=DTYPES[self.hparams.export_dtype],
        )
        exports = sorted(folder.glob("states-*.ckpt"), key=lambda p: int(p.stem.split("-")[-1]))
        for old in exports[: max(len(exports) - self.hparams.max_exports, 0)]:
            old.unlink()
        logger.info("s3prl TERA checkpoint: %s", path)
        return path


def dataio_prepare(hparams, manifests):
    """Training items: random segments of ``sequence_length`` frames (s3prl's sampling).
    Held-out items: every held-out file cut into consecutive segments of ``sequence_length``
    frames (a shorter last piece is kept when it lasts at least ``min_duration``). Utterances are first
    scaled to ``audio.target_level`` dB as a whole, as s3prl's online pretraining dataset does."""
    hop = round(hparams["audio"]["hop_ms"] * 16000 / 1000)
    segment = int(hparams["task"]["sequence_length"]) * hop
    target_level = hparams["audio"]["target_level"]

    def load(wav):
        return normalize_level(read_audio(wav), target_level)

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def train_pipeline(wav):
        sig = load(wav)
        if 0 < segment < len(sig):
            start = random.randint(0, len(sig) - segment)
            sig = sig[start : start + segment]
        return sig

    @sb.utils.data_pipeline.takes("wav", "start", "stop")
    @sb.utils.data_pipeline.provides("sig")
    def heldout_pipeline(wav, start, stop):
        return load(wav)[int(start) : int(stop)]

    train = sb.dataio.dataset.DynamicItemDataset.from_csv(csv_path=str(manifests["train"]))
    train.add_dynamic_item(train_pipeline)
    train.set_output_keys(["id", "sig"])

    pieces = {}
    min_samples = int(hparams["min_duration"] * 16000)
    with open(manifests["heldout"], newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            total = round(float(row["duration"]) * 16000)
            step = segment if segment > 0 else total
            for index, start in enumerate(range(0, total, step)):
                stop = min(start + step, total)
                if stop - start >= min(min_samples, step, total):
                    pieces[f"{row['ID']}/{index}"] = {"wav": row["wav"], "start": start, "stop": stop}
    if not pieces:
        raise ValueError(
            f"no held-out audio in {manifests['heldout']}: hold out more speakers or longer files"
        )
    heldout = sb.dataio.dataset.DynamicItemDataset(pieces)
    heldout.add_dynamic_item(heldout_pipeline)
    heldout.set_output_keys(["id", "sig"])
    return {"train": train, "heldout": heldout}


def manifest_hours(path):
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return len(rows), sum(float(row["duration"]) for row in rows) / 3600


def main(argv):
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    if hparams["torch_num_threads"] > 0:
        torch.set_num_threads(hparams["torch_num_threads"])

    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )

    prepare_kwargs = {
        "data_folder": hparams["data_folder"],
        "save_folder": hparams["output_folder"],
        "extra_folders": hparams["extra_folders"],
        "num_test_speakers": hparams["num_test_speakers"],
        "split_seed": hparams["split_seed"],
        "min_duration": hparams["min_duration"],
        "skip_prep": hparams["skip_prep"],
    }
    run_on_main(prepare_tera_pretraining, kwargs=prepare_kwargs)
    manifests = prepare_tera_pretraining(**{**prepare_kwargs, "skip_prep": True})
    datasets = dataio_prepare(hparams, manifests)

    clock = RunClock()
    hparams["checkpointer"].add_recoverable("clock", clock)
    brain = TeraBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.clock = clock
    brain.loss_curve = LossCurve(hparams["loss_curve"])
    brain.record_initial_loss(datasets["heldout"])

    # An epoch is `steps_per_epoch` optimizer steps: the training files are visited in
    # a new random order each pass, as many passes as needed.
    samples = hparams["steps_per_epoch"] * hparams["batch_size"] * brain.grad_accumulation_factor
    sampler = ReproducibleRandomSampler(datasets["train"], seed=hparams["seed"], num_samples=samples)
    brain.train_sampler = sampler
    brain.fit(
        hparams["epoch_counter"],
        datasets["train"],
        datasets["heldout"],
        train_loader_kwargs={**hparams["train_dataloader_opts"], "sampler": sampler},
        valid_loader_kwargs=hparams["heldout_dataloader_opts"],
    )

    if not if_main_process():
        return
    folder = Path(hparams["export_folder"])
    final = folder / f"states-{brain.optimizer_step}.ckpt"
    if not final.is_file():
        final = brain.export()
    curve = brain.loss_curve
    init = curve.get("init")[0]
    heldout = curve.get("heldout")
    train_rows = curve.get("train")
    wall, cpu = clock.totals()
    summary = {
        "checkpoint": str(final),
        "steps": brain.optimizer_step,
        "train_files_hours": manifest_hours(manifests["train"]),
        "heldout_files_hours": manifest_hours(manifests["heldout"]),
        "init_heldout_loss": float(init["loss"]),
        "copy_baseline": float(init["copy_baseline"]),
        "final_heldout_loss": float(heldout[-1]["loss"]) if heldout else None,
        "final_train_loss": float(train_rows[-1]["loss"]) if train_rows else None,
        "wall_s": wall,
        "cpu_s": cpu,
    }
    with atomic_path(Path(hparams["output_folder"]) / "summary.json") as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(f"s3prl TERA checkpoint: {final}")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
