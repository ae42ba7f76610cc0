#!/usr/bin/env python3
"""Recipe for training the spectrum-aware denoising vocoder (and its ablations) on DNS 2021.

Noisy, reverberant mixtures are made on the fly from the DNS 2021 clean speech,
noises and RIRs (SNR uniform in [-5, 20] dB, T60 in [0.3, 1.3] s); a HiFi-GAN
generator conditioned on frozen SSL features (and on the noisy spectrum) is trained
adversarially (LSGAN + feature matching + mel L1) to output the dry clean speech.

To run the quick CPU setting on the embedded mini corpus (generated on first use):
> python train.py hparams/proposed.yaml

The paper's setting on DNS 2021 (command-line overrides kept in hparams/overrides/paper.args):
> python train.py hparams/proposed.yaml $(grep -v '^#' hparams/overrides/paper.args) \
>     --data_folder=/path/to/DNS-Challenge/datasets --ssl_ckpt=/path/to/tera/states-1000000.ckpt

Each ablation is one hparams file (baseline, magnitude, last_layer, additive, film,
attention_by_spectrum, clean_embedding).

Beside this file: ``data_pipeline.py`` (the training and validation mixtures),
``validation.py`` (the validation metrics and checkpoint ranking) and ``run_setup.py``
(command line, checks, data folder, workers, ``init_from``).

Authors
 * speechbrain-sslse contributors
"""

import csv
import logging
import os
import resource
import sys
from pathlib import Path

import numpy as np
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.core import INTRA_EPOCH_CKPT_FLAG
from speechbrain.utils.distributed import if_main_process, run_on_main

from speechbrain_sslse.audio import atomic_path, write_audio
from speechbrain_sslse.metrics import pesq_wb, stoi
from speechbrain_sslse.packaging import find_checkpoint, package_model

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
from data_pipeline import MixingSampler, dataio_prepare, read_csv_rows  # noqa: E402
from dns_prepare import prepare_dns  # noqa: E402
from run_setup import (  # noqa: E402
    absolute_paths,
    check_ssl_checkpoint,
    describe_ssl_encoder,
    initialise_from,
    mini_corpus_path,
    parse_overrides,
    resolve_data_folder,
    train_loader_options,
)
from validation import _score, level_difference_db, ranking_meta, validation_metrics  # noqa: E402

logger = logging.getLogger(__name__)


class EnhancementBrain(sb.Brain):
    """Adversarial training of the spectrum-aware vocoder with HiFi-GAN's MPD + MSD."""

    def compute_forward(self, batch, stage):
        """Enhances the noisy batch: ``[B, T] -> [B, T]``."""
        batch = batch.to(self.device)
        noisy, lens = batch.noisy_sig
        clean = batch.clean_sig[0] if self.hparams.clean_embedding else None
        return self.modules.generator(noisy, lens, clean=clean)

    def _discriminate(self, wavs, module=None):
        """Discriminator scores and features of ``[B, T]`` waveforms."""
        return (module or self.modules.discriminator)(wavs.unsqueeze(1))

    def _crop(self, *wavs):
        """The same random window of ``discriminator_crop_seconds`` from each ``[B, T]`` waveform."""
        seconds = self.hparams.discriminator_crop_seconds
        length = wavs[0].shape[1]
        crop = int(seconds * self.hparams.sample_rate) if seconds else length
        if crop >= length:
            return wavs
        # Drawn from the optimizer step (checkpointed), so that a resumed run crops as an uninterrupted one.
        generator = torch.Generator().manual_seed(int(self.hparams.seed) * 1_000_003 + self.optimizer_step)
        start = int(torch.randint(0, length - crop + 1, (1,), generator=generator))
        return tuple(w[:, start : start + crop] for w in wavs)

    def fit_batch(self, batch):
        """One discriminator step, then one generator step.

        With ``grad_accumulation_factor`` N, the gradients of N batches are summed (each
        loss divided by N) and both optimizers step once every N batches; the
        discriminator stays fixed within those N batches. Non-finite losses are counted
        against ``nonfinite_patience`` and, with ``skip_nonfinite_grads``, an optimizer
        step whose gradients are not finite is skipped.
        """
        should_step = self.step % self.grad_accumulation_factor == 0
        batch = batch.to(self.device)
        target, _ = batch.clean_sig
        with self.no_sync(not should_step):
            return self._fit_batch(batch, target, should_step)

    def _fit_batch(self, batch, target, should_step):
        with self.training_ctx:
            enhanced = self.compute_forward(batch, sb.Stage.TRAIN)
        if self.optimizer_step < self.hparams.adversarial_start_step:
            return self._fit_reconstruction(enhanced, target, should_step)

        fake, real = self._crop(enhanced, target)

        # Discriminator: real and generated waveforms in one pass.
        with self.training_ctx:
            scores, _ = self._discriminate(torch.cat([fake.detach(), real]))
            batch_size = target.shape[0]
            scores_fake = [s[:batch_size] for s in scores]
            scores_real = [s[batch_size:] for s in scores]
            loss_d = self.hparams.discriminator_loss(scores_fake, scores_real)
        self._backward(loss_d["D_loss"])
        loss_d.update(discriminator_scores(scores_fake, scores_real))
        norms = {}
        if should_step:
            norms["D_grad_norm"] = self._optimizer_step(self.optimizer_d, "discriminator")

        # Generator: adversarial + feature matching (real features are targets) + mel L1.
        # The discriminator's weights get no gradient here (they would be discarded): it
        # runs unwrapped from DDP with its parameters frozen for this pass.
        discriminator = _unwrap(self.modules.discriminator)
        discriminator.requires_grad_(False)
        try:
            with self.training_ctx:
                scores_fake, feats_fake = self._discriminate(fake, discriminator)
                with torch.no_grad():
                    _, feats_real = self._discriminate(real, discriminator)
                loss_g = self.hparams.generator_loss(
                    sb.Stage.TRAIN,
                    enhanced.unsqueeze(1),
                    target.unsqueeze(1),
                    scores_fake,
                    feats_fake,
                    feats_real,
                )
            self._backward(loss_g["G_loss"])
        finally:
            discriminator.requires_grad_(True)
        if should_step:
            norms["G_grad_norm"] = self._optimizer_step(self.optimizer_g, "generator")
            self._end_step()
        self._accumulate({**loss_g, **loss_d}, norms)
        return loss_g["G_loss"].detach().cpu()

    def _fit_reconstruction(self, enhanced, target, should_step=True):
        """Warm-up step before ``adversarial_start_step``: the generator's mel L1 loss alone."""
        with self.training_ctx:
            loss_g = self.hparams.generator_loss(sb.Stage.TRAIN, enhanced.unsqueeze(1), target.unsqueeze(1))
        self._backward(loss_g["G_loss"])
        norms = {}
        if should_step:
            norms["G_grad_norm"] = self._optimizer_step(self.optimizer_g, "generator")
            self._end_step()
        self._accumulate(loss_g, norms)
        return loss_g["G_loss"].detach().cpu()

    def _backward(self, loss):
        """Back-propagates ``loss / grad_accumulation_factor`` (a non-finite loss is counted first)."""
        scaled = self.scaler.scale(loss / self.grad_accumulation_factor)
        self.check_loss_isfinite(scaled)
        scaled.backward()

    def check_loss_isfinite(self, loss):
        """Counts a non-finite loss; more than ``nonfinite_patience`` in an epoch stop the run."""
        if torch.isfinite(loss):
            return
        self.nonfinite_count += 1
        if self.nonfinite_count > self.nonfinite_patience:
            raise ValueError(
                f"the training loss was not finite {self.nonfinite_count} times in this epoch, more than "
                f"nonfinite_patience={self.nonfinite_patience}: lower the learning rate (--lr), try "
                "--precision=fp32, raise --nonfinite_patience, or pass --skip_nonfinite_grads=True to skip "
                "the optimizer steps whose gradients are not finite"
            )
        logger.warning(
            "non-finite training loss (%d of nonfinite_patience=%d in this epoch)",
            self.nonfinite_count,
            self.nonfinite_patience,
        )

    def grad_norm_limit(self, name):
        """The gradient-norm clip of the ``generator`` or the ``discriminator``.

        ``max_grad_norm`` for both, unless the yaml sets ``max_grad_norm_discriminator``:
        the discriminator's gradients are about a hundred times smaller than the
        generator's (its loss has no x45 mel term), so one value cannot clip the spikes
        of both.
        """
        if name == "discriminator" and "max_grad_norm_discriminator" in vars(self.hparams):
            return float(self.hparams.max_grad_norm_discriminator)
        return float(self.max_grad_norm)

    def _optimizer_step(self, optimizer, name):
        """Unscales, clips (:meth:`grad_norm_limit`) and steps ``optimizer``; returns the gradient norm.

        With ``skip_nonfinite_grads`` (and no fp16 grad scaler, which skips such steps
        itself), a step whose gradients hold NaN or Inf is skipped.
        """
        self.scaler.unscale_(optimizer)
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if self.skip_nonfinite_grads and not self.scaler.is_enabled():
            if not all(torch.isfinite(p.grad).all() for p in params):
                logger.warning("non-finite %s gradients: optimizer step skipped (skip_nonfinite_grads)", name)
                self.skipped_steps = getattr(self, "skipped_steps", 0) + 1
                optimizer.zero_grad(set_to_none=True)
                return float("nan")
        norm = float(torch.nn.utils.clip_grad_norm_(params, self.grad_norm_limit(name))) if params else 0.0
        self.scaler.step(optimizer)
        optimizer.zero_grad(set_to_none=True)
        return norm

    def _end_step(self):
        self.scaler.update()
        self.optimizer_step += 1

    def _accumulate(self, losses, norms=None):
        """Adds the batch's losses (and the gradient norms of its optimizer steps) to the stage sums."""
        for key, value in losses.items():
            if isinstance(value, torch.Tensor):
                self.stage_sums[key] = self.stage_sums.get(key, 0.0) + float(value.detach())
        self.stage_count += 1
        for key, norm in (norms or {}).items():
            if np.isfinite(norm):
                self.grad_norms.setdefault(key, []).append(norm)

    def evaluate_batch(self, batch, stage):
        """Mel L1 loss, STOI and PESQ (wide band) of the enhanced validation mixtures."""
        batch = batch.to(self.device)
        target, lens = batch.clean_sig
        noisy, _ = batch.noisy_sig
        with torch.no_grad(), self.evaluation_ctx:
            enhanced = self.compute_forward(batch, stage).float()
        loss = self.hparams.generator_loss(stage, enhanced.unsqueeze(1), target.unsqueeze(1))
        lengths = torch.round(lens * target.shape[1]).long().tolist()
        for i, uid in enumerate(batch.id):
            ref, est = target[i, : lengths[i]].cpu(), enhanced[i, : lengths[i]].cpu()
            scores = {"id": uid, "stoi": _score(stoi, est, ref), "pesq": _score(pesq_wb, est, ref)}
            scores["level_db"] = level_difference_db(est, ref)
            if "valid_dnsmos" in vars(self.hparams) and self.hparams.valid_dnsmos:
                scores["dnsmos_ovrl"] = _score(self._dnsmos_ovrl, est)
            self.valid_scores.append(scores)
            if len(self.samples) < self.hparams.num_samples_to_write:
                self.samples.append((uid, noisy[i, : lengths[i]].cpu(), est, ref))
        self._accumulate({"mel_loss": loss.get("G_l1_spec_loss", loss["G_loss"])})
        return loss["G_loss"].detach().cpu()

    def _dnsmos_ovrl(self, wav):
        """DNSMOS OVRL of a ``[T]`` waveform (the scorer is created on first use)."""
        if getattr(self, "_dnsmos_scorer", None) is None:
            from speechbrain_sslse.metrics import DNSMOS

            self._dnsmos_scorer = DNSMOS(num_threads=1)
        return self._dnsmos_scorer(wav)["dnsmos_ovrl"]

    def on_fit_start(self):
        """Recovers the run, and the CPU time it had used, from the latest checkpoint."""
        super().on_fit_start()
        latest = self.checkpointer.find_checkpoint() if self.checkpointer is not None else None
        self.cpu_seconds_before = float(latest.meta.get("cpu_seconds", 0.0)) if latest else 0.0
        self._cpu_start = _process_cpu_seconds()

    def cpu_seconds(self):
        """CPU seconds this run has used so far, across resumed sessions (training process and workers)."""
        return self.cpu_seconds_before + _process_cpu_seconds() - self._cpu_start

    def _save_intra_epoch_ckpt(self):
        """SpeechBrain's intra-epoch checkpoint, with the CPU time used so far in its metadata."""
        self.checkpointer.save_and_keep_only(
            end_of_epoch=False,
            num_to_keep=1,
            ckpt_predicate=lambda c: INTRA_EPOCH_CKPT_FLAG in c.meta,
            meta={INTRA_EPOCH_CKPT_FLAG: True, "cpu_seconds": self.cpu_seconds()},
            verbosity=logging.DEBUG,
        )

    def on_stage_start(self, stage, epoch=None):
        """Resets the per-stage statistics."""
        self.stage_sums, self.stage_count, self.grad_norms = {}, 0, {}
        self.valid_scores, self.samples = [], []

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs, schedules the learning rates, checkpoints and writes samples."""
        stats = {k: v / max(self.stage_count, 1) for k, v in self.stage_sums.items()}
        if stage == sb.Stage.TRAIN:
            for key, norms in self.grad_norms.items():  # what max_grad_norm is compared with
                stats[key], stats[f"{key}_max"] = float(np.median(norms)), float(np.max(norms))
                limit = self.grad_norm_limit("discriminator" if key.startswith("D") else "generator")
                stats[f"{key}_clipped"] = float(np.mean(np.array(norms) > limit))
            self.train_stats = stats
            gap = stats.get("D_score_gap")
            if gap is not None and abs(gap) < BLIND_DISCRIMINATOR_GAP:
                logger.warning(
                    "the discriminator scored real and generated speech alike this epoch (mean score "
                    "gap %.4f < %.2f): it gives the generator no signal; raise its learning rate "
                    "(lr_discriminator in mask_head.yaml) or its size",
                    gap,
                    BLIND_DISCRIMINATOR_GAP,
                )
            return
        stats.update(validation_metrics(self.valid_scores))
        if stage == sb.Stage.VALID:
            lr_g = self.optimizer_g.param_groups[0]["lr"]
            if self.lr_decays():
                self.scheduler_g.step()
                self.scheduler_d.step()
            weights = [round(float(w), 4) for w in _unwrap(self.modules.generator).layer_weights]
            cpu_seconds = self.cpu_seconds()
            self.hparams.train_logger.log_stats(
                stats_meta={
                    "epoch": epoch,
                    "lr_g": lr_g,
                    "cpu_hours": round(cpu_seconds / 3600, 4),
                    "layer_weights": weights,
                },
                train_stats=getattr(self, "train_stats", None),
                valid_stats=stats,
            )
            key = getattr(self.hparams, "selection_key", "pesq")
            kept = ("stoi", "pesq", "dnsmos_ovrl", "quality", "level_db")
            meta = {"epoch": epoch, "cpu_seconds": cpu_seconds, **{m: stats[m] for m in kept if m in stats}}
            self.checkpointer.save_and_keep_only(
                meta=ranking_meta(meta, key), max_keys=[key], num_to_keep=self.hparams.keep_checkpoints
            )
            if if_main_process():
                self._write_samples(Path(self.hparams.samples_folder) / f"epoch_{epoch}")
                write_layer_weights(Path(self.hparams.output_folder) / "layer_weights.csv", epoch, weights)

    def lr_decays(self):
        """Whether the learning rates decay at the end of this epoch.

        With ``decay_lr_in_warmup: False`` they stay at ``lr`` until the adversarial
        training (and so the discriminator's) has begun: the exponential decay counts
        the epochs of GAN training only. A yaml without the key decays every epoch.
        """
        if "decay_lr_in_warmup" not in vars(self.hparams) or self.hparams.decay_lr_in_warmup:
            return True
        return self.optimizer_step > self.hparams.adversarial_start_step

    def _write_samples(self, folder):
        for uid, noisy, enhanced, clean in self.samples:
            for name, wav in (("noisy", noisy), ("enhanced", enhanced), ("clean", clean)):
                write_audio(folder / f"{uid}_{name}.wav", wav, self.hparams.sample_rate)

    def init_optimizers(self):
        """One optimizer and one exponential scheduler each for generator and discriminator."""
        generator_params = [p for p in self.modules.generator.parameters() if p.requires_grad]
        self.optimizer_g = self.hparams.opt_class_generator(generator_params)
        self.optimizer_d = self.hparams.opt_class_discriminator(self.modules.discriminator.parameters())
        self.scheduler_g = self.hparams.sch_class_generator(self.optimizer_g)
        self.scheduler_d = self.hparams.sch_class_discriminator(self.optimizer_d)
        self.optimizers_dict = {"generator": self.optimizer_g, "discriminator": self.optimizer_d}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("optimizer_g", self.optimizer_g)
            self.checkpointer.add_recoverable("optimizer_d", self.optimizer_d)
            self.checkpointer.add_recoverable("scheduler_g", self.scheduler_g)
            self.checkpointer.add_recoverable("scheduler_d", self.scheduler_d)


# A mean score gap (real minus generated) below this means a blind discriminator.
BLIND_DISCRIMINATOR_GAP = 0.01


def discriminator_scores(scores_fake, scores_real):
    """The discriminator's mean score of generated and of real waveforms, and their gap.

    Logged every epoch: an LSGAN discriminator that has stopped learning scores both
    alike (about 0.5), and a gap near 0 shows that while the run is going.

    Arguments
    ---------
    scores_fake, scores_real : list of torch.Tensor
        One ``[B, N]`` score map per sub-discriminator.

    Returns
    -------
    dict
        ``D_score_real``, ``D_score_fake`` (means over sub-discriminators of their mean
        score) and ``D_score_gap`` (real minus fake), as 0-d tensors.

    Example
    -------
    >>> out = discriminator_scores([torch.zeros(2, 3)], [torch.ones(2, 5)])
    >>> {k: float(v) for k, v in out.items()}
    {'D_score_real': 1.0, 'D_score_fake': 0.0, 'D_score_gap': 1.0}
    """
    with torch.no_grad():
        real = torch.stack([s.float().mean() for s in scores_real]).mean()
        fake = torch.stack([s.float().mean() for s in scores_fake]).mean()
    return {"D_score_real": real, "D_score_fake": fake, "D_score_gap": real - fake}


def _process_cpu_seconds():
    """CPU seconds of this process and of its finished children (data loader workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _unwrap(module):
    """The module inside a DistributedDataParallel wrapper (or the module itself)."""
    return module.module if isinstance(module, torch.nn.parallel.DistributedDataParallel) else module


def write_layer_weights(path, epoch, weights):
    """Appends (or rewrites) the learned layer weights of ``epoch`` in a CSV (the paper's table)."""
    rows = []
    if path.is_file():
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["epoch"]) != int(epoch)]
    rows.append({"epoch": epoch, **{f"layer{i + 1}": w for i, w in enumerate(weights)}})
    fields = ["epoch"] + [f"layer{i + 1}" for i in range(len(weights))]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


def main(argv):
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    overrides = absolute_paths(parse_overrides(overrides))
    check_ssl_checkpoint(hparams_file, overrides)
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file) as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"], hyperparams_to_save=hparams_file, overrides=overrides
    )
    # Logging is set up now: what the yaml printed while it was built goes to log.txt as well.
    logger.info(describe_ssl_encoder(hparams))
    if not hparams["data_folder"]:
        corpus = mini_corpus_path(hparams)
        logger.info("No data_folder given: training on the embedded mini corpus (%s)", corpus)
        run_on_main(resolve_data_folder, kwargs={"hparams": hparams})
    data_folder = resolve_data_folder(hparams)
    manifest_folder = Path(hparams["manifest_folder"])
    run_on_main(
        prepare_dns,
        kwargs={
            "data_folder": str(data_folder),
            "save_folder": str(manifest_folder),
            "valid_fraction": hparams["valid_fraction"],
            "t60_range": hparams["t60_range"],
            "min_duration": hparams["min_duration"],
            "seed": hparams["seed"],
            "train_min_bak": hparams.get("train_min_bak", 0.0),
        },
    )
    train_data, valid_data, bad_files = dataio_prepare(hparams, manifest_folder)

    brain = EnhancementBrain(
        modules=hparams["modules"], hparams=hparams, run_opts=run_opts, checkpointer=hparams["checkpointer"]
    )
    initialise_from(hparams, brain.checkpointer)
    num_samples = hparams["steps_per_epoch"] * hparams["batch_size"]
    if hparams["sample_by_duration"]:  # each second of speech equally likely
        weights = [float(row["duration"]) for row in read_csv_rows(manifest_folder / "train.csv")]
        sampler = sb.dataio.sampler.ReproducibleWeightedRandomSampler(
            weights, num_samples=num_samples, replacement=True, seed=hparams["seed"]
        )
    else:  # each utterance equally likely
        sampler = sb.dataio.sampler.ReproducibleRandomSampler(
            train_data, seed=hparams["seed"], replacement=True, num_samples=num_samples
        )
    sampler = MixingSampler(sampler, seed=hparams["seed"])
    brain.train_sampler = sampler  # SpeechBrain calls set_epoch on it (it does so for its own samplers only)
    loader_kwargs = train_loader_options(hparams, sampler)
    brain.fit(
        brain.hparams.epoch_counter,
        train_set=train_data,
        valid_set=valid_data,
        train_loader_kwargs=loader_kwargs,
        valid_loader_kwargs={"batch_size": hparams["valid_batch_size"]},
    )
    if if_main_process():
        skipped = bad_files.count()
        checkpoints_dir = Path(brain.checkpointer.checkpoints_dir)
        if checkpoints_dir != Path(hparams["save_folder"]):
            logger.info(
                "Debug mode (--debug without --debug_persistently): the checkpoints are in the temporary "
                "folder %s, removed at exit, not in save_folder; the model is packaged from there",
                checkpoints_dir,
            )
        if hparams["model_folder"]:
            max_key = hparams.get("selection_key", "pesq")
            folder = package_model(
                hparams["output_folder"],
                hparams["model_folder"],
                checkpoint=find_checkpoint(checkpoints_dir, max_key).path,
                max_key=max_key,
                overwrite=True,
            )
            print(f"Packaged model (for sslse-enhance --model / SpectrumAwareEnhancer): {folder}")
        print(f"Checkpoints: {checkpoints_dir}")
        print(f"Enhanced validation samples: {hparams['samples_folder']}")
        print(f"Training log: {hparams['train_log']}")
        print(f"Learned layer weights: {Path(hparams['output_folder']) / 'layer_weights.csv'}")
        if skipped:
            print(f"{skipped} unusable audio files were skipped: {hparams['bad_files_log']}")
    return brain


if __name__ == "__main__":
    main(sys.argv[1:])
