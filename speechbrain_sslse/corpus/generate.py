"""Generates the embedded mini corpus: speech, noise and RIRs in the real datasets' layouts.

Layout of ``out_dir`` (see :mod:`.writers` for the files inside each)::

    DNS/        clean speech (train speakers), noise, RIRs (SLR26/SLR28 paths) + RIR_table_simple.csv
    VCTK/       48 kHz FLAC of the held-out test speakers, with transcripts
    NOISEX/     one file per noise type at 19.98 kHz (other instances than DNS/noise)
    MIT_IR/     32 kHz RIRs of other rooms than DNS's
    Valentini/  48 kHz clean_trainset_28spk_wav (train speakers), clean_testset_wav (test speakers)
    DEMAND/     <ENV>/ch01.wav environments mixed from the noise generators (other instances)
    TIMIT/      TRAIN (train speakers) and TEST (test speakers): NIST SPHERE + .PHN/.WRD/.TXT
    corpus.json what was generated (written last: its presence marks a complete corpus)

Speakers are split once: the train speakers feed DNS, Valentini's trainset and
TIMIT/TRAIN; the held-out test speakers feed VCTK, Valentini's testset and
TIMIT/TEST, so test sets never share a speaker with DNS training data.

With ``speech_dir`` (a folder of real recordings), DNS, VCTK and Valentini hold
the real speech instead, cut into utterances of a few seconds (speaker = file
alignments, so it stays synthesised by eSpeak NG (corpus.json says so).

Everything is deterministic from ``seed`` (each item has its own generator,
:mod:`.seeding`); generating twice gives identical audio and text files (only the
timing fields of corpus.json differ).

The stages live in their own modules: the settings in :mod:`.config`, the output
folder (lock, marker, reuse) in :mod:`.folder`, speech in :mod:`.speech_stage`, noise
in :mod:`.noise_stage`, RIRs in :mod:`.rir_stage`, and corpus.json with its summary
in :mod:`.summary`. This module runs them in order; the names it re-exports keep
their old import path.
"""

import contextlib
import json
import time
from pathlib import Path

import torch

from ..audio import atomic_path
from .config import (
    CORPUS_LAYOUTS,
    FORMAT_VERSION,
    SIZES,
    CorpusError,
    check_seed,
    corpus_config,
    default_corpus_dir,
)
from .folder import (
    LOCK_NAME,
    MARKER_NAME,
    META_NAME,
    corpus_lock,
    corpus_matches,
    layout_files,
    prepare_out_dir,
    read_meta,
    write_marker,
)
from .noise_stage import write_noises
from .realspeech import find_speech_files
from .rir_stage import write_rirs
from .speakers import make_speakers, split_speakers
from .speech_stage import check_speech_dir, utterance_plan, write_real, write_synthetic
from .summary import LayoutStats, build_meta, format_summary

__all__ = [
    "CORPUS_LAYOUTS",
    "FORMAT_VERSION",
    "LOCK_NAME",
    "MARKER_NAME",
    "META_NAME",
    "SIZES",
    "CorpusError",
    "check_seed",
    "corpus_config",
    "corpus_lock",
    "corpus_matches",
    "default_corpus_dir",
    "ensure_corpus",
    "format_summary",
    "generate_corpus",
    "read_meta",
    "utterance_plan",
]


@contextlib.contextmanager
def _torch_threads(n):
    old = torch.get_num_threads()
    torch.set_num_threads(n)  # small resampling convolutions: one thread is faster than two
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _generate(out_dir, size, seed, speech_dir, config, progress):
    files = check_speech_dir(speech_dir, config) if speech_dir is not None else None
    prepare_out_dir(out_dir)
    try:
        return _generate_into(out_dir, size, seed, speech_dir, config, progress, files)
    except BaseException:  # stopped (Ctrl-C, an error): record what it wrote, so a rerun may replace it
        with contextlib.suppress(OSError):
            write_marker(out_dir, "interrupted", layout_files(out_dir))
        raise


def _generate_into(out_dir, size, seed, speech_dir, config, progress, files):
    started = time.time()
    stats = LayoutStats()
    speakers = make_speakers(config["num_speakers"], seed)
    train, test = split_speakers(speakers, config["test_fraction"])
    test_ids = {s.id for s in test}
    stages = {}
    with _torch_threads(1):
        real_speakers = None
        tick = time.time()
        if files is not None:
            real_speakers = write_real(out_dir, speech_dir, files, config, stats, progress)
            stages["real_speech"] = round(time.time() - tick, 2)
            tick = time.time()
        write_synthetic(
            out_dir, speakers, test_ids, config, seed, stats, progress, timit_only=files is not None
        )
        stages["synthetic_speech"] = round(time.time() - tick, 2)
        tick = time.time()
        envs = write_noises(out_dir, config, seed, stats, progress)
        stages["noise"] = round(time.time() - tick, 2)
        tick = time.time()
        rirs, n_slr28 = write_rirs(out_dir, config, seed, progress)
        stages["rirs"] = round(time.time() - tick, 2)

    meta = build_meta(
        size,
        seed,
        speech_dir,
        config,
        stats,
        speakers,
        (train, test),
        real_speakers,
        envs,
        rirs,
        n_slr28,
        started,
        stages,
    )
    write_marker(out_dir, "complete", layout_files(out_dir))
    with atomic_path(out_dir / META_NAME) as tmp:
        Path(tmp).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return meta


def generate_corpus(out_dir, size="default", seed=0, speech_dir=None, progress=True, **overrides):
    """Generates the mini corpus into ``out_dir`` (replacing a previous one there).

    Arguments
    ---------
    out_dir : str or Path
        Output folder (created). A folder holding dataset folders that this generator
        did not write is refused.
    size : str
        ``tiny`` (tests, a few seconds), ``default`` or ``large``.
    seed : int
        Everything is deterministic from it.
    speech_dir : str or Path or None
        Folder of real recordings used instead of eSpeak NG for DNS, VCTK and
        Valentini (TIMIT stays synthesised).
    progress : bool
        Show progress bars.
    **overrides
        Settings of :func:`corpus_config` (``num_speakers=``, ``sentences_per_speaker=`` ...).

    Returns
    -------
    Path
        ``out_dir`` (absolute).

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_sslse.data.layouts import read_timit
    >>> out = generate_corpus(tempfile.mkdtemp(), size="tiny", progress=False, num_speakers=2,
    ...                       sentences_per_speaker=1, noise_seconds=0.5, noisex_seconds=0.5,
    ...                       demand_seconds=0.5, demand_environments=1, dns_rirs=0, mit_rirs=0)
    >>> [item["utterance"] for item in read_timit(out / "TIMIT", "TRAIN")]
    ['SA1']
    """
    out_dir = Path(out_dir).expanduser().resolve()
    seed = check_seed(seed)
    config = corpus_config(size, **overrides)
    if speech_dir is not None:
        find_speech_files(speech_dir)  # fail before creating anything
    with corpus_lock(out_dir):
        _generate(out_dir, size, seed, speech_dir, config, progress)
    return out_dir


def ensure_corpus(out_dir=None, size="default", seed=0, speech_dir=None, progress=True, **overrides):
    """Returns ``out_dir`` if it holds this corpus already, otherwise generates it.

    ``out_dir=None`` means :func:`default_corpus_dir` (for corpora of eSpeak speech).

    The corpus is reused when its corpus.json records the same size, seed, speech
    folder, settings and format version. Safe when several processes call it at once
    (DDP ranks, parallel tests): they queue on a lock file (``fcntl``) and all but the
    first find the corpus complete.

    Arguments
    ---------
    out_dir, size, seed, speech_dir, progress, **overrides
        As for :func:`generate_corpus`.

    Returns
    -------
    Path
        ``out_dir`` (absolute).

    Example
    -------
    >>> import tempfile
    >>> ensure_corpus(tempfile.mkdtemp(), size="bogus")
    Traceback (most recent call last):
    ...
    speechbrain_sslse.corpus.config.CorpusError: unknown size 'bogus'; choose one of tiny, default, large
    """
    if out_dir is None:
        if speech_dir is not None:
            raise CorpusError("give out_dir for a corpus made from a speech folder")
        out_dir = default_corpus_dir(size, check_seed(seed))
    out_dir = Path(out_dir).expanduser().resolve()
    seed = check_seed(seed)
    config = corpus_config(size, **overrides)
    if corpus_matches(out_dir, size, seed, speech_dir, config):
        return out_dir
    if speech_dir is not None:
        find_speech_files(speech_dir)  # fail before creating anything
    with corpus_lock(out_dir):  # another process may have generated it meanwhile: check again
        if not corpus_matches(out_dir, size, seed, speech_dir, config):
            _generate(out_dir, size, seed, speech_dir, config, progress)
    return out_dir
