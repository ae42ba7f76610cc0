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
from ruamel.yaml import YAML
from speechbrain.core import INTRA_EPOCH_CKPT_FLAG
from speechbrain.utils.distributed import if_main_process, run_on_main
from speechbrain.utils.parameter_transfer import Pretrainer

from speechbrain_sslse.audio import AudioError, atomic_path, write_audio
from speechbrain_sslse.metrics import MetricUnavailable, pesq_wb, stoi
from speechbrain_sslse.packaging import find_checkpoint, package_model
from speechbrain_sslse.upgrade import load_run_hyperparams

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
from dns_prepare import prepare_dns  # noqa: E402

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


def _process_cpu_seconds():
    """CPU seconds of this process and of its finished children (data loader workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _unwrap(module):
    """The module inside a DistributedDataParallel wrapper (or the module itself)."""
    return module.module if isinstance(module, torch.nn.parallel.DistributedDataParallel) else module


def _score(metric, estimate, reference=None):
    """A metric's value, NaN (logged) when it cannot be computed for this pair."""
    try:
        return metric(estimate) if reference is None else metric(estimate, reference)
    except MetricUnavailable as err:
        logger.warning("validation metric not computed: %s", err)
        return float("nan")


# Wide-band PESQ (MOS-LQO) lies in [1.04, 4.64]; a file it cannot score (no speech found in
# the output, e.g. a silent one) counts as this floor instead of dropping out of the mean.
PESQ_FLOOR = 1.0


def validation_metrics(scores):
    """Means over the validation files of their STOI, PESQ and (when computed) DNSMOS OVRL.

    A PESQ that could not be computed counts as :data:`PESQ_FLOOR` (and is counted in
    ``pesq_failed``), so that a nearly silent model cannot rank high on the files PESQ
    accepts. Other metrics average the files where they were computed (NaN when none).
    ``quality`` = DNSMOS OVRL + 5 STOI (both on a 0-5 scale) when DNSMOS was computed;
    ``level_db``: the median over the files of the output's level minus the clean target's.

    Arguments
    ---------
    scores : list of dict
        Per-file ``stoi``, ``pesq`` and optionally ``dnsmos_ovrl`` (NaN when not computed).

    Returns
    -------
    dict

    Example
    -------
    >>> stats = validation_metrics([{"stoi": 0.8, "pesq": 2.0}, {"stoi": 0.6, "pesq": float("nan")}])
    >>> round(stats["stoi"], 3), stats["pesq"], stats["pesq_failed"]
    (0.7, 1.5, 1)
    """
    stats = {}
    levels = np.array([s["level_db"] for s in scores if "level_db" in s], dtype=float)
    if np.isfinite(levels).any():
        stats["level_db"] = float(np.median(levels[np.isfinite(levels)]))
    for metric in ("stoi", "pesq", "dnsmos_ovrl"):
        values = np.array([s[metric] for s in scores if metric in s], dtype=float)
        if not len(values):
            continue
        finite = np.isfinite(values)
        if metric == "pesq":
            stats["pesq_failed"] = int((~finite).sum())
            stats[metric] = float(np.where(finite, values, PESQ_FLOOR).mean())
        else:
            stats[metric] = float(values[finite].mean()) if finite.any() else float("nan")
    if "dnsmos_ovrl" in stats:
        # Selection criterion of the default model: both terms on a 0-5 scale.
        stats["quality"] = stats["dnsmos_ovrl"] + 5.0 * stats["stoi"]
    return stats


def level_difference_db(estimate, reference, floor=1e-8):
    """RMS level of ``estimate`` minus that of ``reference`` in dB (NaN for a silent reference).

    Example
    -------
    >>> round(level_difference_db(0.1 * torch.ones(100), torch.ones(100)), 1)
    -20.0
    """
    ref = float(reference.double().pow(2).mean())
    if ref < floor:
        return float("nan")
    return 10.0 * float(np.log10((float(estimate.double().pow(2).mean()) + 1e-12) / ref))


def validation_items(run_folder, overrides=None):
    """The validation mixtures of a training run, drawn as its training draws them.

    Arguments
    ---------
    run_folder : str or Path
        The run's ``output_folder`` (its ``hyperparams.yaml`` and manifests).
    overrides : dict, optional
        Hyperparameter overrides (e.g. ``{"num_valid_mixtures": 8}``).

    Returns
    -------
    list
        ``(id, noisy [T], clean [T])`` per validation mixture.
    """
    # a run of any former form of the recipe too (speechbrain_sslse.upgrade)
    overrides = {"output_folder": str(run_folder), **(overrides or {})}
    hparams = load_run_hyperparams(Path(run_folder) / "hyperparams.yaml", overrides)
    _, valid, _ = dataio_prepare(hparams, Path(hparams["manifest_folder"]))
    return [(item["id"], item["noisy_sig"], item["clean_sig"]) for item in valid]


def score_validation(items, enhance=None, dnsmos=None, desc=None):
    """:func:`validation_metrics` of ``enhance(noisy)`` over ``items``, as the training run scores itself.

    Arguments
    ---------
    items : list
        ``(id, noisy [T], clean [T])``, e.g. from :func:`validation_items`.
    enhance : callable, optional
        ``[T] -> [T]`` waveform enhancer (default: score the noisy input itself).
    dnsmos : speechbrain_sslse.metrics.DNSMOS, optional
        The scorer to reuse (default: a new one-thread scorer).
    desc : str, optional
        Label of a progress bar (none without it).

    Returns
    -------
    dict
        STOI, PESQ, DNSMOS OVRL, quality and level_db over the items.
    """
    from tqdm import tqdm

    if dnsmos is None:
        from speechbrain_sslse.metrics import DNSMOS

        dnsmos = DNSMOS(num_threads=1)
    scores = []
    for uid, noisy, clean in tqdm(items, desc=desc, disable=desc is None, leave=False):
        with torch.no_grad():
            est = noisy if enhance is None else torch.as_tensor(enhance(noisy), dtype=torch.float32)
        scores.append(
            {
                "id": uid,
                "stoi": _score(stoi, est, clean),
                "pesq": _score(pesq_wb, est, clean),
                "dnsmos_ovrl": _score(lambda w: dnsmos(w)["dnsmos_ovrl"], est),
                "level_db": level_difference_db(est, clean),
            }
        )
    return validation_metrics(scores)


def ranking_meta(meta, key):
    """``meta`` with a NaN value of the ranking ``key`` replaced by -inf.

    SpeechBrain's Checkpointer sorts the checkpoints by ``meta[key]`` to choose the
    ones it keeps; a NaN (a metric that could not be computed) makes that order
    arbitrary, and the best checkpoint can then be deleted. -inf ranks last.

    Example
    -------
    >>> ranking_meta({"epoch": 3, "pesq": float("nan"), "stoi": float("nan")}, "pesq")
    {'epoch': 3, 'pesq': -inf, 'stoi': nan}
    """
    value = meta.get(key)
    if isinstance(value, float) and np.isnan(value):
        return {**meta, key: float("-inf")}
    return dict(meta)


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


class BadFileLog:
    """Logs unusable audio files once each and appends them to a TSV report."""

    def __init__(self, path):
        self.path = Path(path)
        self.seen = set()

    def add(self, file, reason):
        if file in self.seen:
            return
        self.seen.add(file)
        logger.warning("skipping unusable audio file: %s", reason)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(f"{file}\t{reason}\n")

    def count(self):
        if not self.path.is_file():
            return 0
        return len({line.split("\t")[0] for line in self.path.read_text().splitlines() if line})


def read_csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def dataio_prepare(hparams, manifest_folder):
    """Training set (random mixtures on the fly) and validation set (mixtures fixed by a seed)."""
    noises = [
        {"wav": r["wav"], "duration": float(r["duration"])}
        for r in read_csv_rows(manifest_folder / "noise.csv")
    ]
    rirs = [
        {"wav": r["wav"], "t60": float(r["t60"]), "channel": int(r["channel"])}
        for r in read_csv_rows(manifest_folder / "rir.csv")
    ]
    bad_files = BadFileLog(hparams["bad_files_log"])
    # The mixer is created in the yaml (its settings); the files are this run's manifests'.
    mixer = hparams["mixer"].use_files(noises, rirs, on_bad_file=bad_files.add)
    train_rows = read_csv_rows(manifest_folder / "train.csv")

    def mix_or_skip(wav, duration, rng, segment_seconds=None):
        """A mixture of ``wav``; an unusable file is reported and another utterance is used."""
        for _ in range(20):
            try:
                return mixer.mix(wav, duration, rng, segment_seconds=segment_seconds)
            except AudioError as err:
                bad_files.add(err.file or wav, str(err))
                row = train_rows[int(rng.integers(len(train_rows)))]
                wav, duration = row["wav"], float(row["duration"])
        raise RuntimeError(f"20 unusable audio files in a row; see {bad_files.path}")

    # SSLSE_SAMPLE_LOG=PREFIX: each DDP rank appends what it trains on to PREFIX.rank<R> (debugging aid).
    sample_log = os.environ.get("SSLSE_SAMPLE_LOG")
    sample_log = f"{sample_log}.rank{int(os.environ.get('RANK', 0))}" if sample_log else None
    train_data = MixedTrainSet(train_rows, mix_or_skip, seed=hparams["seed"], sample_log=sample_log)

    valid_rows = read_csv_rows(manifest_folder / "valid.csv")
    valid_items = {}
    for i in range(min(hparams["num_valid_mixtures"], 10**6)):
        row = valid_rows[i % len(valid_rows)]
        valid_items[f"valid_{i:04d}_{row['ID']}"] = {
            "wav": row["wav"],
            "duration": row["duration"],
            "index": i,
        }

    @sb.utils.data_pipeline.takes("wav", "duration", "index")
    @sb.utils.data_pipeline.provides("noisy_sig", "clean_sig")
    def valid_pipeline(wav, duration, index):
        rng = np.random.default_rng([hparams["valid_seed"], int(index)])
        seconds = min(float(duration), hparams["valid_segment_seconds"])
        mix = mix_or_skip(wav, float(duration), rng, segment_seconds=seconds)
        yield mix["noisy"]
        yield mix["target"]

    valid_data = sb.dataio.dataset.DynamicItemDataset(
        valid_items, dynamic_items=[valid_pipeline], output_keys=["id", "noisy_sig", "clean_sig"]
    )
    return train_data, valid_data, bad_files


class MixingSampler(torch.utils.data.Sampler):
    """Pairs each index of ``sampler`` with the seed of its mixture: ``(index, (seed, epoch, position))``.

    The mixture drawn at a position of an epoch (noise, SNR, RIR, segment, level) is a
    function of the run's seed, the epoch and the position alone, so the random state
    of the mixing is the sampler's position, which SpeechBrain checkpoints (the epoch
    counter and the data loader's position). A run resumed from any checkpoint, also
    mid-epoch after a kill, draws exactly what the uninterrupted run draws, and no epoch
    replays another's mixtures. Under DDP the positions are global, so the ranks'
    mixtures differ.

    Arguments
    ---------
    sampler : torch.utils.data.Sampler
        The index sampler (SpeechBrain's reproducible samplers, with ``set_epoch``).
    seed : int
        The run's seed.

    Example
    -------
    >>> base = sb.dataio.sampler.ReproducibleRandomSampler(range(5), seed=1, replacement=True, num_samples=3)
    >>> sampler = MixingSampler(base, seed=1)
    >>> sampler.set_epoch(2)
    >>> [entropy for _, entropy in sampler]
    [(1, 2, 0), (1, 2, 1), (1, 2, 2)]
    """

    def __init__(self, sampler, seed):
        self.sampler = sampler
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch):
        """Sets the epoch (of the mixtures and of the wrapped sampler's draws)."""
        self.epoch = int(epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self):
        for position, index in enumerate(self.sampler):
            yield int(index), (self.seed, self.epoch, position)

    def __len__(self):
        return len(self.sampler)


class MixedTrainSet(torch.utils.data.Dataset):
    """Training utterances mixed on the fly: item ``(index, entropy)`` -> ``id, noisy_sig, clean_sig``.

    ``entropy`` (from :class:`MixingSampler`) seeds the mixture's generator; a plain
    integer index uses ``(seed, 0, index)``.

    Arguments
    ---------
    rows : list of dict
        ``train.csv`` rows (``ID``, ``wav``, ``duration``).
    mix : callable
        ``mix(wav, duration, rng) -> dict`` with ``noisy``, ``target``, ``snr``, ``noise``.
    seed : int
        The run's seed.
    sample_log : str, optional
        A file that each mixture's file, SNR and noise are appended to.
    """

    def __init__(self, rows, mix, seed, sample_log=None):
        self.rows = rows
        self.mix = mix
        self.seed = int(seed)
        self.sample_log = sample_log
        self.data_ids = [row["ID"] for row in rows]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, key):
        index, entropy = key if isinstance(key, tuple) else (int(key), (self.seed, 0, int(key)))
        row = self.rows[index]
        mix = self.mix(row["wav"], float(row["duration"]), np.random.default_rng(list(entropy)))
        if self.sample_log:
            with open(self.sample_log, "a") as f:
                f.write(f"{row['wav']}\t{mix['snr']:.4f}\t{mix['noise']}\n")
        return {"id": row["ID"], "noisy_sig": mix["noisy"], "clean_sig": mix["target"]}


OVERRIDES_FOLDER = Path(__file__).resolve().parent / "hparams" / "overrides"


def override_args(path):
    """The ``--key=value`` arguments of an override file (``hparams/overrides/*.args``).

    What ``$(grep -v '^#' FILE)`` gives on the command line: the comment lines left out, the
    rest split at white space.

    Example
    -------
    >>> override_args(OVERRIDES_FOLDER / "paper.args")[:2]
    ['--number_of_epochs=250', '--steps_per_epoch=2000']
    """
    lines = Path(path).read_text().splitlines()
    return " ".join(line for line in lines if not line.startswith("#")).split()


def parse_overrides(overrides):
    """SpeechBrain's overrides (the yaml text ``sb.parse_arguments`` makes of ``--key=value``) as a dict.

    A key given twice takes its last value: overrides typed after an override file's win.

    Example
    -------
    >>> parse_overrides("batch_size: 16\\nlr: 0.1\\nbatch_size: 8")
    {'batch_size': 8, 'lr': 0.1}
    """
    if not isinstance(overrides, str):
        return dict(overrides or {})
    yaml, out, entry = YAML(typ="rt"), {}, []
    for line in [*overrides.splitlines(), ""]:
        if entry and not line.startswith((" ", "\t")):  # one top-level key and its indented lines
            out.update(dict(yaml.load("\n".join(entry)) or {}))
            entry = []
        if line.strip():
            entry.append(line)
    return out


NO_SSL_CHECKPOINT = (None, "", "null", "None")
PATH_KEYS = (
    "output_folder",
    "save_folder",
    "manifest_folder",
    "data_folder",
    "mini_corpus_folder",
    "ssl_ckpt",
)


def absolute_paths(overrides):
    """``overrides`` with the relative paths given for :data:`PATH_KEYS` made absolute.

    The run's ``hyperparams.yaml`` then records where its data, manifests and SSL
    checkpoint are, whatever folder the run is later packaged or evaluated from.

    Example
    -------
    >>> import os
    >>> absolute_paths({"data_folder": "data/DNS", "lr": 0.1})["data_folder"] == os.path.abspath("data/DNS")
    True
    """
    out = dict(overrides)
    for key in PATH_KEYS:
        value = out.get(key)
        if isinstance(value, str) and value not in NO_SSL_CHECKPOINT and not os.path.isabs(value):
            out[key] = os.path.abspath(os.path.expanduser(value))
    return out


def check_ssl_checkpoint(hparams_file, overrides):
    """Refuses a setting with ``require_ssl_ckpt: True`` (``overrides/paper.args``) and no ``ssl_ckpt``.

    Without ``ssl_ckpt`` the recipe falls back to the small TERA shipped in the package,
    which is right for the CPU settings and wrong for the paper's setting (TERA base,
    960 h): a paper-sized run would otherwise train for days on the wrong encoder.
    ``--require_ssl_ckpt=False`` allows it explicitly.

    Arguments
    ---------
    hparams_file : str or Path
        The recipe's hparams file.
    overrides : dict
        The overrides in force (override file and command line, as from :func:`parse_overrides`).
    """
    with open(hparams_file) as f:
        raw_hparams = YAML(typ="rt").load(f)

    hparams = {**dict(raw_hparams), **overrides}
    if hparams.get("require_ssl_ckpt", False) and hparams.get("ssl_ckpt") in NO_SSL_CHECKPOINT:
        raise ValueError(
            f"{hparams_file} with require_ssl_ckpt=True (hparams/overrides/paper.args) is the paper's "
            "setting, which needs "
            "a real SSL checkpoint: pass --ssl_ckpt=/path/to/tera/states-1000000.ckpt (TERA base in "
            "s3prl's format; any s3prl upstream with --ssl_upstream). Without --ssl_ckpt the small TERA "
            "shipped in the package would be used; to train the paper's setting on it anyway, pass "
            "--require_ssl_ckpt=False."
        )


def size_workers(requested, rss_bytes=None, available_bytes=None, cpus=None, headroom=0.6):
    """The number of data-loader workers this machine can hold (at most ``requested``).

    A worker is a fork of the training process; once it touches its copy-on-write
    pages it can cost as much memory as the process itself. The count is capped by
    the CPUs this process may use and by ``headroom`` x the available memory divided
    by the process's resident size.

    Arguments
    ---------
    requested : int
        ``num_workers`` asked for.
    rss_bytes, available_bytes : int, optional
        Resident size of this process and available memory (default: read from ``/proc``).
    cpus : int, optional
        CPUs available (default: this process's CPU affinity).
    headroom : float
        Fraction of the available memory the workers may take.

    Returns
    -------
    int

    Example
    -------
    >>> size_workers(8, rss_bytes=2 * 2**30, available_bytes=16 * 2**30, cpus=16)
    4
    >>> size_workers(8, rss_bytes=2**30, available_bytes=64 * 2**30, cpus=2)
    2
    >>> size_workers(0)
    0
    """
    requested = int(requested)
    if requested <= 0:
        return 0
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    rss_bytes = _resident_bytes() if rss_bytes is None else rss_bytes
    available_bytes = _available_bytes() if available_bytes is None else available_bytes
    workers = min(requested, max(int(cpus), 1))
    if rss_bytes and available_bytes:
        workers = min(workers, int(headroom * available_bytes // rss_bytes))
    return max(workers, 0)


def _resident_bytes():
    """Resident memory of this process (bytes), or None where ``/proc`` is not readable."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _available_bytes():
    """``MemAvailable`` of ``/proc/meminfo`` (bytes), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def train_loader_options(hparams, sampler):
    """Training data-loader arguments, with ``num_workers`` sized to the machine (:func:`size_workers`)."""
    workers = size_workers(hparams["num_workers"])
    if workers < hparams["num_workers"]:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        logger.warning(
            "num_workers=%d reduced to %d: %s CPUs and %.1f GB of available memory hold no more workers "
            "the size of this process (%.1f GB each; each epoch forks them anew)",
            hparams["num_workers"],
            workers,
            cpus,
            (_available_bytes() or 0) / 1e9,
            (_resident_bytes() or 0) / 1e9,
        )
    return {
        "batch_size": hparams["batch_size"],
        "sampler": sampler,
        "num_workers": workers,
        "collate_fn": sb.dataio.batch.PaddedBatch,
    }


def describe_ssl_encoder(hparams):
    """One line naming the SSL encoder and its checkpoint (for the log)."""
    encoder = hparams.get("ssl_encoder")
    if encoder is None:
        return "SSL encoder: none in this hparams file"
    ckpt = getattr(encoder, "_ckpt_path", None)
    note = ""
    try:
        from speechbrain_sslse.tera import default_tera_checkpoint

        if ckpt and Path(ckpt).resolve() == Path(default_tera_checkpoint()).resolve():
            note = " (the small TERA shipped in the package)"
    except (ImportError, FileNotFoundError):
        pass
    if hparams.get("ssl_ckpt") in NO_SSL_CHECKPOINT and not note:
        note = " (no ssl_ckpt given: a randomly initialised tiny TERA)"
    return f"SSL encoder: s3prl {encoder.name}, {encoder.num_layers} hidden states, checkpoint {ckpt}{note}"


def initialise_from(hparams, checkpointer):
    """Starts a new run from the generator weights of another run or a packaged model (fine-tuning).

    ``init_from`` names a checkpoint folder (``<run>/save/CKPT+...`` or one written by
    ``average_checkpoints.py``) holding ``generator.ckpt``, or a packaged model folder holding
    ``vocoder.ckpt`` (such as the default model shipped in the package, to fine-tune it on
    one's own data); its weights go through SpeechBrain's Pretrainer into this run's
    generator. The two must have the same architecture (the same hparams): a checkpoint
    whose parameter names or shapes differ is refused before anything is loaded. Nothing
    else is taken over: the optimizer, the learning-rate schedule and the epoch counter start
    afresh, from this run's hparams. A run that already has a checkpoint of its own resumes
    from it instead.

    Arguments
    ---------
    hparams : dict
        The loaded hparams (``init_from``, ``generator``, ``output_folder``).
    checkpointer : speechbrain.utils.checkpoints.Checkpointer
        This run's checkpointer.

    Returns
    -------
    pathlib.Path or None
        The weights loaded, or None (no ``init_from``, or resuming).
    """
    source = hparams.get("init_from")
    if not source or checkpointer.find_checkpoint() is not None:
        return None
    folder = Path(source).expanduser()
    path = next((folder / n for n in ("generator.ckpt", "vocoder.ckpt") if (folder / n).is_file()), None)
    if path is None:
        raise FileNotFoundError(
            f"init_from={source}: no generator.ckpt (a checkpoint folder such as <run>/save/CKPT+... "
            "or <run>/averaged/CKPT+...) nor vocoder.ckpt (a packaged model folder) there"
        )
    check_same_architecture(hparams["generator"].state_dict(), torch.load(path, map_location="cpu"), path)
    pretrainer = Pretrainer(
        collect_in=Path(hparams["output_folder"]) / "init_from",
        loadables={"generator": hparams["generator"]},
        paths={"generator": str(path.resolve())},
    )
    run_on_main(pretrainer.collect_files)
    pretrainer.load_collected()
    logger.info("Generator initialised from %s (optimizer and schedule start afresh)", path)
    return path


def check_same_architecture(own, loaded, path):
    """Raises a ValueError naming ``path`` when two state dicts differ in names or shapes.

    Example
    -------
    >>> check_same_architecture({"w": torch.zeros(2)}, {"w": torch.ones(2)}, "x.ckpt")
    >>> try:
    ...     check_same_architecture({"w": torch.zeros(2)}, {"w": torch.ones(3)}, "x.ckpt")
    ... except ValueError as err:
    ...     print(str(err).split("(")[1].split(")")[0])
    shape of w: [3] there, [2] here
    """
    missing = sorted(set(own) - set(loaded))
    extra = sorted(set(loaded) - set(own))
    shapes = [k for k in own if k in loaded and tuple(own[k].shape) != tuple(loaded[k].shape)]
    if not (missing or extra or shapes):
        return
    if shapes:
        k = shapes[0]
        what = f"shape of {k}: {list(loaded[k].shape)} there, {list(own[k].shape)} here"
    else:
        what = ", ".join(
            [f"{len(missing)} parameters missing there (e.g. {missing[0]})"] * bool(missing)
            + [f"{len(extra)} unknown here (e.g. {extra[0]})"] * bool(extra)
        )
    raise ValueError(
        f"init_from: {path} was trained with another architecture than this run's hparams ({what}); "
        "give the hparams of the run it comes from (e.g. head_channels, head_blocks, d_model)"
    )


def mini_corpus_path(hparams):
    """Where the embedded mini corpus is (or will be generated) when no ``data_folder`` is given."""
    if hparams["mini_corpus_folder"]:
        return Path(hparams["mini_corpus_folder"]).expanduser().resolve()
    from speechbrain_sslse.corpus.generate import default_corpus_dir

    return default_corpus_dir(hparams["mini_corpus_size"])


def resolve_data_folder(hparams):
    """The DNS root: ``data_folder``, or the embedded mini corpus generated on first use."""
    if hparams["data_folder"]:
        return Path(hparams["data_folder"])
    from speechbrain_sslse.corpus import ensure_corpus

    root = ensure_corpus(hparams["mini_corpus_folder"], size=hparams["mini_corpus_size"])
    return Path(root) / "DNS"


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
