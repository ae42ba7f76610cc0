"""The recipe's data: training mixtures made on the fly, and validation mixtures fixed by a seed.

:func:`dataio_prepare` builds both from the manifests of ``dns_prepare.py``;
:class:`MixingSampler` seeds each training mixture by its position (so that a resumed run
draws what an uninterrupted one draws) and :class:`MixedTrainSet` mixes it;
:class:`BadFileLog` reports the unusable audio files skipped.

Authors
 * speechbrain-sslse contributors
"""

import csv
import logging
import os
from pathlib import Path

import numpy as np
import speechbrain as sb
import torch

from speechbrain_sslse.audio import AudioError

logger = logging.getLogger(__name__)


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
    train_rows = read_csv_rows(manifest_folder / "train.csv")
    # Babble (when the mixer's babble_probability > 0) sums other training utterances.
    talkers = [{"wav": r["wav"], "duration": float(r["duration"])} for r in train_rows]
    mixer = hparams["mixer"].use_files(noises, rirs, on_bad_file=bad_files.add, babble_speech=talkers)

    def mix_or_skip(wav, duration, rng, segment_seconds=None, babble=True):
        """A mixture of ``wav``; an unusable file is reported and another utterance is used."""
        for _ in range(20):
            try:
                return mixer.mix(wav, duration, rng, segment_seconds=segment_seconds, babble=babble)
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
        # never babble: a run with babble is scored on the mixtures of a run without
        mix = mix_or_skip(wav, float(duration), rng, segment_seconds=seconds, babble=False)
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
