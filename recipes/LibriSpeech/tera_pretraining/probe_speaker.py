#!/usr/bin/env python3
"""Speaker-ID linear probe of a pretrained TERA against the same TERA with random weights.

The held-out speakers of the project-wide split
(:func:`speechbrain_sslse.data.splits.librispeech_excerpt_split`, never trained on) are
the classes. Each held-out file is cut into consecutive segments of ``--segment_seconds``;
each segment is encoded on its own by ``SSLEncoder`` (s3prl's ``tera_local``) and every
hidden state is mean-pooled over frames. Per speaker, the first ``--train_fraction`` of
the segments (in time order) train a multinomial logistic regression (scikit-learn,
standardised features, ``--C``) and the remaining segments test it. ``--pooling meanstd``
appends the standard deviation over frames to the mean. The same is done for
randomly initialised TERAs of the same configuration (``--random_seeds``).

Writes ``<output_folder>/speaker_probe.csv`` (one row per model and layer) and prints a
markdown table.

Example::

    python probe_speaker.py --ckpt results/tera_small/1986/s3prl/states-3000.ckpt \\
        --data_folder ../../../../shared/assets/speech/librispeech-train-clean-100-excerpt \\
        --output_folder results/probe

Authors
 * speechbrain-sslse contributors
"""

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from speechbrain_sslse.audio import read_audio
from speechbrain_sslse.data.splits import librispeech_excerpt_split, speaker_of
from speechbrain_sslse.files import write_csv
from speechbrain_sslse.lobes import SSLEncoder
from speechbrain_sslse.tera import write_tera_checkpoint

logger = logging.getLogger(__name__)
SAMPLE_RATE = 16000


def segment_files(files, segment_seconds):
    """Cuts each file into consecutive equal segments (files with fewer than two are left out).

    Returns
    -------
    segments : torch.Tensor
        ``[N, segment_samples]``.
    speakers : list of str
        Speaker of each segment.
    positions : list of int
        Index of each segment within its file.
    """
    size = int(round(segment_seconds * SAMPLE_RATE))
    segments, speakers, positions = [], [], []
    for path in files:
        wav = read_audio(path)
        count = len(wav) // size
        if count < 2:  # one segment to train and one to test, at least
            logger.info("%s: shorter than two segments of %.2f s, left out", path.name, segment_seconds)
            continue
        for index in range(count):
            segments.append(wav[index * size : (index + 1) * size])
            speakers.append(speaker_of(path))
            positions.append(index)
    return torch.stack(segments), speakers, positions


@torch.no_grad()
def pooled_embeddings(ckpt, segments, batch_size=32, pooling="mean"):
    """Hidden states of ``segments`` pooled over frames: ``[L, N, D]`` (mean) or ``[L, N, 2D]`` (meanstd)."""
    if pooling not in ("mean", "meanstd"):
        raise ValueError(f"unknown pooling {pooling!r}: expected 'mean' or 'meanstd'")
    encoder = SSLEncoder("tera", ckpt=ckpt)
    pooled = []
    for start in tqdm(range(0, len(segments), batch_size), desc=f"encoding {Path(ckpt).name}"):
        hidden, _ = encoder(segments[start : start + batch_size])
        stats = [hidden.mean(dim=2)] + ([hidden.std(dim=2)] if pooling == "meanstd" else [])
        pooled.append(torch.cat(stats, dim=-1))
    return torch.cat(pooled, dim=1).numpy()


def split_by_position(speakers, positions, train_fraction):
    """Boolean train mask: per speaker, the first ``train_fraction`` of its segments in time order."""
    speakers = np.asarray(speakers)
    positions = np.asarray(positions)
    train = np.zeros(len(speakers), dtype=bool)
    for speaker in np.unique(speakers):
        index = np.flatnonzero(speakers == speaker)
        count = len(index)
        cut = min(max(int(round(train_fraction * count)), 1), count - 1)
        order = index[np.argsort(positions[index], kind="stable")]
        train[order[:cut]] = True
    return train


def probe_layers(embeddings, speakers, train_mask, seed=0, C=1.0):
    """Per-layer (train accuracy, test accuracy) of a multinomial logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(speakers)
    results = []
    for layer in embeddings:
        classifier = make_pipeline(
            StandardScaler(), LogisticRegression(C=C, max_iter=3000, random_state=seed)
        )
        classifier.fit(layer[train_mask], labels[train_mask])
        results.append(
            (
                float(classifier.score(layer[train_mask], labels[train_mask])),
                float(classifier.score(layer[~train_mask], labels[~train_mask])),
            )
        )
    return results


def random_checkpoint(ckpt, seed, folder):
    """A randomly initialised TERA with the configuration of ``ckpt``."""
    states = torch.load(ckpt, map_location="cpu", weights_only=True)
    config = states["Upstream_Config"]
    return write_tera_checkpoint(Path(folder) / f"random-seed{seed}.ckpt", config, seed=seed)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="pretrained TERA checkpoint (s3prl format)")
    parser.add_argument("--data_folder", required=True, help="the LibriSpeech excerpt folder")
    parser.add_argument("--output_folder", required=True)
    parser.add_argument("--num_test_speakers", type=int, default=32)
    parser.add_argument("--split_seed", type=int, default=0)
    parser.add_argument("--segment_seconds", type=float, default=1.0)
    parser.add_argument("--train_fraction", type=float, default=0.6)
    parser.add_argument("--random_seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--pooling", choices=["mean", "meanstd"], default="mean")
    parser.add_argument("--C", type=float, default=1.0, help="inverse L2 strength of the regression")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(min(2, torch.get_num_threads()))

    _, heldout = librispeech_excerpt_split(args.data_folder, args.num_test_speakers, args.split_seed)
    segments, speakers, positions = segment_files(heldout, args.segment_seconds)
    train_mask = split_by_position(speakers, positions, args.train_fraction)
    logger.info(
        "%d held-out speakers, %d segments of %.2f s (%d train, %d test)",
        len(set(speakers)),
        len(speakers),
        args.segment_seconds,
        int(train_mask.sum()),
        int((~train_mask).sum()),
    )

    rows = []
    models = [("trained", args.ckpt)]
    with tempfile.TemporaryDirectory() as tmp:
        models += [
            (f"random (seed {seed})", random_checkpoint(args.ckpt, seed, tmp)) for seed in args.random_seeds
        ]
        for name, ckpt in models:
            embeddings = pooled_embeddings(ckpt, segments, pooling=args.pooling)
            accuracies = probe_layers(embeddings, speakers, train_mask, C=args.C)
            for layer, (train_acc, test_acc) in enumerate(accuracies):
                rows.append({"model": name, "layer": layer, "train_acc": train_acc, "test_acc": test_acc})

    output = Path(args.output_folder) / "speaker_probe.csv"
    write_csv(output, rows, ["model", "layer", "train_acc", "test_acc"])
    print(markdown_table(rows, args.random_seeds))
    print(f"written: {output}")
    return rows


def markdown_table(rows, random_seeds):
    """Test accuracy per layer: trained, each random seed, and the mean over random seeds."""
    layers = sorted({row["layer"] for row in rows})
    lookup = {(row["model"], row["layer"]): row["test_acc"] for row in rows}
    lines = [
        "| layer | trained | random (mean over seeds) | "
        + " | ".join(f"seed {s}" for s in random_seeds)
        + " |"
    ]
    lines.append("|---" * (3 + len(random_seeds)) + "|")
    for layer in layers:
        random_accs = [lookup[(f"random (seed {s})", layer)] for s in random_seeds]
        mean = sum(random_accs) / len(random_accs) if random_accs else float("nan")
        cells = [f"{layer}", f"{lookup[('trained', layer)]:.3f}", f"{mean:.3f}"]
        cells += [f"{acc:.3f}" for acc in random_accs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
