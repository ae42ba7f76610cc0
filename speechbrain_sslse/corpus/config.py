"""What a mini corpus is made of: its format version, layouts, sizes and settings.

``FORMAT_VERSION`` and the settings of :func:`corpus_config` key a generated corpus
(:func:`.folder.corpus_matches`): a corpus is reused only when both are the same, so
the version moves whenever the generated content changes.
"""

import os
from pathlib import Path

import numpy as np

from .text import SENTENCES

FORMAT_VERSION = 1

CORPUS_LAYOUTS = {
    "DNS": "DNS",
    "VCTK": "VCTK",
    "NOISEX": "NOISEX",
    "MIT_IR": "MIT_IR",
    "Valentini": "Valentini",
    "DEMAND": "DEMAND",
    "TIMIT": "TIMIT",
}

SIZES = {
    "tiny": {
        "num_speakers": 6,
        "sentences_per_speaker": 4,
        "real_speakers": 6,
        "noise_seconds": 6.0,
        "noise_files_per_type": 1,
        "noisex_seconds": 6.0,
        "demand_seconds": 6.0,
        "demand_environments": 4,
        "dns_rirs": 6,
        "mit_rirs": 2,
        "rir_goal_pct": 10.0,
        "test_fraction": 0.25,
    },
    "default": {
        "num_speakers": 32,
        "sentences_per_speaker": 20,
        "real_speakers": None,
        "noise_seconds": 30.0,
        "noise_files_per_type": 2,
        "noisex_seconds": 60.0,
        "demand_seconds": 30.0,
        "demand_environments": 7,
        "dns_rirs": 40,
        "mit_rirs": 20,
        "rir_goal_pct": 5.0,
        "test_fraction": 0.25,
    },
    "large": {
        "num_speakers": 96,
        "sentences_per_speaker": 40,
        "real_speakers": None,
        "noise_seconds": 60.0,
        "noise_files_per_type": 4,
        "noisex_seconds": 180.0,
        "demand_seconds": 120.0,
        "demand_environments": 7,
        "dns_rirs": 120,
        "mit_rirs": 60,
        "rir_goal_pct": 5.0,
        "test_fraction": 0.25,
    },
}


class CorpusError(RuntimeError):
    """The corpus cannot be generated here (bad arguments or an unsafe output folder)."""


def check_seed(seed):
    """Returns ``seed`` as an int in [0, 2**32); anything else is refused.

    Example
    -------
    >>> check_seed(3)
    3
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    speechbrain_sslse.corpus.config.CorpusError: --seed must be an integer in [0, 4294967295], got -1
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**32:
        raise CorpusError(f"--seed must be an integer in [0, {2**32 - 1}], got {seed!r}")
    return int(seed)


def corpus_config(size="default", **overrides):
    """The generation settings of a size, with overrides.

    Arguments
    ---------
    size : str
        ``tiny``, ``default`` or ``large``.
    **overrides
        Any key of :data:`SIZES` (``num_speakers``, ``sentences_per_speaker``, ``dns_rirs`` ...).
        ``real_speakers=None`` uses every speaker of ``speech_dir``.

    Returns
    -------
    dict

    Example
    -------
    >>> corpus_config("tiny", num_speakers=8)["num_speakers"]
    8
    """
    if size not in SIZES:
        raise CorpusError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    config = dict(SIZES[size])
    unknown = set(overrides) - set(config)
    if unknown:
        raise CorpusError(f"unknown corpus setting(s) {sorted(unknown)}; known: {sorted(config)}")
    config.update(overrides)
    if config["num_speakers"] < 2:
        raise CorpusError("num_speakers must be at least 2 (train and test speakers)")
    if not 1 <= config["sentences_per_speaker"] <= len(SENTENCES) + 2:
        raise CorpusError(f"sentences_per_speaker must be in [1, {len(SENTENCES) + 2}]")
    return config


def default_corpus_dir(size="default", seed=0):
    """Where recipes keep the embedded corpus when no folder is given (shared by all recipes).

    ``$SSLSE_CACHE/mini_corpus-<size>-seed<seed>``, with ``$SSLSE_CACHE`` defaulting to
    ``~/.cache/speechbrain-sslse``.

    Example
    -------
    >>> default_corpus_dir("tiny", 3).name
    'mini_corpus-tiny-seed3'
    """
    cache = os.environ.get("SSLSE_CACHE") or Path.home() / ".cache" / "speechbrain-sslse"
    return Path(cache).expanduser() / f"mini_corpus-{size}-seed{seed}"
