#!/usr/bin/env python3
"""Recipe for training the spectrum-aware denoising vocoder (and its ablations) on DNS 2021.

Noisy, reverberant mixtures are made on the fly from the DNS 2021 clean speech,
noises and RIRs (SNR uniform in [-5, 20] dB, T60 in [0.3, 1.3] s); a HiFi-GAN
generator conditioned on frozen SSL features (and on the noisy spectrum) is trained
adversarially (LSGAN + feature matching + mel L1) to output the dry clean speech.

To run the quick CPU schedule on the embedded mini corpus (generated on first use):
> python train.py hparams/proposed.yaml

The paper's setting on DNS 2021:
> python train.py hparams/proposed.yaml --schedule=paper --data_folder=/path/to/DNS-Challenge/datasets \
>     --ssl_ckpt=/path/to/tera/states-1000000.ckpt

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

from speechbrain_sslse.audio import AudioError, atomic_path, write_audio
from speechbrain_sslse.data.mixing import OnTheFlyMixer
from speechbrain_sslse.metrics import MetricUnavailable, pesq_wb, stoi
from speechbrain_sslse.packaging import package_model

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
        start = int(torch.randint(0, length - crop + 1, (1,)))
        return tuple(w[:, start : start + crop] for w in wavs)

    def fit_batch(self, batch):
        """One discriminator step, then one generator step."""
        batch = batch.to(self.device)
        target, _ = batch.clean_sig
        with self.training_ctx:
            enhanced = self.compute_forward(batch, sb.Stage.TRAIN)
        if self.optimizer_step < self.hparams.adversarial_start_step:
            return self._fit_reconstruction(enhanced, target)

        fake, real = self._crop(enhanced, target)

        # Discriminator: real and generated waveforms in one pass.
        with self.training_ctx:
            scores, _ = self._discriminate(torch.cat([fake.detach(), real]))
            batch_size = target.shape[0]
            scores_fake = [s[:batch_size] for s in scores]
            scores_real = [s[batch_size:] for s in scores]
            loss_d = self.hparams.discriminator_loss(scores_fake, scores_real)
        self._step(loss_d["D_loss"], self.optimizer_d)

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
            self._step(loss_g["G_loss"], self.optimizer_g)
        finally:
            discriminator.requires_grad_(True)
        self.scaler.update()
        self.optimizer_step += 1
        self._accumulate({**loss_g, **loss_d})
        return loss_g["G_loss"].detach().cpu()

    def _fit_reconstruction(self, enhanced, target):
        """Warm-up step before ``adversarial_start_step``: the generator's mel L1 loss alone."""
        with self.training_ctx:
            loss_g = self.hparams.generator_loss(sb.Stage.TRAIN, enhanced.unsqueeze(1), target.unsqueeze(1))
        self._step(loss_g["G_loss"], self.optimizer_g)
        self.scaler.update()
        self.optimizer_step += 1
        self._accumulate(loss_g)
        return loss_g["G_loss"].detach().cpu()

    def _step(self, loss, optimizer):
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(
            [p for group in optimizer.param_groups for p in group["params"]], self.max_grad_norm
        )
        self.scaler.step(optimizer)

    def _accumulate(self, losses):
        for key, value in losses.items():
            if isinstance(value, torch.Tensor):
                self.stage_sums[key] = self.stage_sums.get(key, 0.0) + float(value.detach())
        self.stage_count += 1

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
            if "valid_dnsmos" in vars(self.hparams) and self.hparams.valid_dnsmos:
                scores["dnsmos_ovrl"] = _score(self._dnsmos, est)
            self.valid_scores.append(scores)
            if len(self.samples) < self.hparams.num_samples_to_write:
                self.samples.append((uid, noisy[i, : lengths[i]].cpu(), est, ref))
        self._accumulate({"mel_loss": loss.get("G_l1_spec_loss", loss["G_loss"])})
        return loss["G_loss"].detach().cpu()

    @property
    def _dnsmos(self):
        """DNSMOS OVRL of a ``[T]`` waveform (the scorer is created on first use)."""
        if getattr(self, "_dnsmos_scorer", None) is None:
            from speechbrain_sslse.metrics import DNSMOS

            self._dnsmos_scorer = DNSMOS(num_threads=1)
        return lambda wav: self._dnsmos_scorer(wav)["dnsmos_ovrl"]

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
        self.stage_sums, self.stage_count = {}, 0
        self.valid_scores, self.samples = [], []

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs, schedules the learning rates, checkpoints and writes samples."""
        stats = {k: v / max(self.stage_count, 1) for k, v in self.stage_sums.items()}
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
            return
        metrics = [m for m in ("stoi", "pesq", "dnsmos_ovrl") if any(m in s for s in self.valid_scores)]
        for metric in metrics:
            values = [s[metric] for s in self.valid_scores if np.isfinite(s[metric])]
            stats[metric] = float(np.mean(values)) if values else float("nan")
        if "dnsmos_ovrl" in stats:
            # Selection criterion of the default model: both terms on a 0-5 scale.
            stats["quality"] = stats["dnsmos_ovrl"] + 5.0 * stats["stoi"]
        if stage == sb.Stage.VALID:
            lr_g = self.optimizer_g.param_groups[0]["lr"]
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
            kept = ("stoi", "pesq", "dnsmos_ovrl", "quality")
            meta = {"epoch": epoch, "cpu_seconds": cpu_seconds, **{m: stats[m] for m in kept if m in stats}}
            self.checkpointer.save_and_keep_only(
                meta=meta, max_keys=[key], num_to_keep=self.hparams.keep_checkpoints
            )
            if if_main_process():
                self._write_samples(Path(self.hparams.samples_folder) / f"epoch_{epoch}")
                write_layer_weights(Path(self.hparams.output_folder) / "layer_weights.csv", epoch, weights)

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
    mixer = OnTheFlyMixer(
        noises,
        rirs,
        segment_seconds=hparams["segment_seconds"],
        snr_range=hparams["snr_range"],
        rir_probability=hparams["rir_probability"],
        t60_range=hparams["t60_range"],
        level_range=hparams["level_range"],
        early_ms=hparams["early_reverb_ms"],
        sample_rate=hparams["sample_rate"],
        on_bad_file=bad_files.add,
        augment=hparams.get("augment"),
    )
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

    rank = int(os.environ.get("RANK", 0))
    sample_log = os.environ.get("SSLSE_SAMPLE_LOG")  # debugging aid: what each DDP rank trains on

    @sb.utils.data_pipeline.takes("wav", "duration")
    @sb.utils.data_pipeline.provides("noisy_sig", "clean_sig")
    def train_pipeline(wav, duration):
        seed = int(torch.randint(0, 2**62, (1,)))
        # DDP ranks share the global seed: the rank keeps their mixtures apart (rank 0 draws as alone).
        rng = np.random.default_rng(seed if rank == 0 else [seed, rank])
        mix = mix_or_skip(wav, float(duration), rng)
        if sample_log:
            with open(f"{sample_log}.rank{rank}", "a") as f:
                f.write(f"{wav}\t{mix['snr']:.4f}\t{mix['noise']}\n")
        yield mix["noisy"]
        yield mix["target"]

    train_data = sb.dataio.dataset.DynamicItemDataset.from_csv(
        manifest_folder / "train.csv",
        dynamic_items=[train_pipeline],
        output_keys=["id", "noisy_sig", "clean_sig"],
    )

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


def apply_schedule(hparams_file, overrides):
    """Merges the overrides of the chosen ``schedule`` (``schedules.<name>`` in the yaml) under ``overrides``.

    Command-line overrides win over the schedule's.
    """
    yaml = YAML(typ="rt")
    with open(hparams_file) as f:
        raw_hparams = yaml.load(f)
    user = dict(yaml.load(overrides) or {}) if isinstance(overrides, str) else dict(overrides or {})
    if "schedules" not in raw_hparams:  # a yaml without schedules is its own setting
        return user
    name = user.get("schedule", raw_hparams["schedule"])
    schedules = raw_hparams["schedules"] or {}
    if name not in schedules:
        raise ValueError(f"unknown schedule {name!r}: {hparams_file} defines {list(schedules)}")
    return {**dict(schedules[name] or {}), **user}


def resolve_data_folder(hparams):
    """The DNS root: ``data_folder``, or the embedded mini corpus generated on first use."""
    if hparams["data_folder"]:
        return Path(hparams["data_folder"])
    from speechbrain_sslse.corpus import ensure_corpus

    root = ensure_corpus(hparams["mini_corpus_folder"], size=hparams["mini_corpus_size"])
    return Path(root) / "DNS"


def main(argv):
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    overrides = apply_schedule(hparams_file, overrides)
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file) as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"], hyperparams_to_save=hparams_file, overrides=overrides
    )
    if not hparams["data_folder"]:
        logger.info(
            "No data_folder given: training on the embedded mini corpus (%s)", hparams["mini_corpus_folder"]
        )
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
    brain.fit(
        brain.hparams.epoch_counter,
        train_set=train_data,
        valid_set=valid_data,
        train_loader_kwargs={
            "batch_size": hparams["batch_size"],
            "sampler": sampler,
            "num_workers": hparams["num_workers"],
        },
        valid_loader_kwargs={"batch_size": hparams["valid_batch_size"]},
    )
    if if_main_process():
        skipped = bad_files.count()
        if hparams["model_folder"]:
            folder = package_model(
                hparams["output_folder"],
                hparams["model_folder"],
                max_key=hparams.get("selection_key", "pesq"),
                overwrite=True,
            )
            print(f"Packaged model (for sslse-enhance --model / SpectrumAwareEnhancer): {folder}")
        print(f"Checkpoints: {hparams['save_folder']}")
        print(f"Enhanced validation samples: {hparams['samples_folder']}")
        print(f"Training log: {hparams['train_log']}")
        print(f"Learned layer weights: {Path(hparams['output_folder']) / 'layer_weights.csv'}")
        if skipped:
            print(f"{skipped} unusable audio files were skipped: {hparams['bad_files_log']}")
    return brain


if __name__ == "__main__":
    main(sys.argv[1:])
