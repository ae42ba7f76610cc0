"""Deterministic train / held-out splits shared by the whole project.

The real speech beside the project (``../shared/assets/speech/librispeech-train-clean-100-excerpt``,
one LibriSpeech utterance per speaker) is split *by speaker*, once, the same way
everywhere: the held-out speakers are the test speakers of the enhancement models
and of the TERA pretraining recipe, and no model of the project is ever trained on
them.

The held-out speakers are chosen by ranking every speaker id by a keyed hash
(``sha1("<seed>:<speaker>")``), so the choice does not depend on the order of the
files, on the file system, or on Python's hash seed.

Authors
 * speechbrain-sslse contributors
"""

import hashlib
import os
from pathlib import Path

from .layouts import walk_files

__all__ = [
    "AUDIO_SUFFIXES",
    "SpeechFolderError",
    "speaker_of",
    "list_speech_files",
    "librispeech_excerpt_split",
]

AUDIO_SUFFIXES = (".flac", ".wav", ".sph", ".ogg")


class SpeechFolderError(FileNotFoundError):
    """A folder of speech that is missing or holds no audio; the message says what to pass."""


def speaker_of(path):
    """The speaker id of a LibriSpeech-style file name (``<speaker>-<chapter>-<utt>.flac``).

    Arguments
    ---------
    path : str or Path
        An audio file.

    Returns
    -------
    str
        The part of the file name before the first ``-`` (the whole stem when there is none).

    Example
    -------
    >>> speaker_of("/data/103-1240-0000.flac"), speaker_of("p225_001_mic1.flac")
    ('103', 'p225_001_mic1')
    """
    return Path(path).stem.split("-", 1)[0]


def list_speech_files(folder, suffixes=AUDIO_SUFFIXES):
    """Sorted audio files under ``folder`` (any depth; hidden files skipped).

    Arguments
    ---------
    folder : str or Path
        A folder of speech.
    suffixes : tuple of str
        Accepted extensions (lower case).

    Returns
    -------
    list of Path
        Absolute paths (symbolic links followed but not resolved), sorted.

    Raises
    ------
    SpeechFolderError
        If the folder does not exist or holds no audio file.

    Example
    -------
    >>> import tempfile
    >>> list_speech_files(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    speechbrain_sslse.data.splits.SpeechFolderError: ...holds no audio file...
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise SpeechFolderError(
            f"speech folder '{folder}' does not exist. Pass a folder holding audio files "
            f"({', '.join(suffixes)}), e.g. ../shared/assets/speech/librispeech-train-clean-100-excerpt."
        )
    # Absolute, links unresolved: folders reached through symbolic links are searched, and a
    # linked file keeps its own name (its speaker), not the name of the file it points to.
    folder = Path(os.path.abspath(folder))
    files = sorted(
        p
        for p in walk_files(folder)
        if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")
    )
    if not files:
        raise SpeechFolderError(
            f"speech folder '{folder}' holds no audio file ({', '.join(suffixes)}, any depth). "
            f"Pass a folder of speech recordings."
        )
    return files


def _rank_key(seed, speaker):
    return hashlib.sha1(f"{seed}:{speaker}".encode()).hexdigest()


def librispeech_excerpt_split(files_or_dir, num_test_speakers=32, seed=0):
    """Splits LibriSpeech-style files into training and held-out files by speaker.

    The speaker of a file is the file-name prefix before the first ``-``. The
    ``num_test_speakers`` speakers with the smallest ``sha1("<seed>:<speaker>")``
    are held out; all of their files go to the test list. The result depends only
    on the set of file names and on ``seed``.

    Arguments
    ---------
    files_or_dir : str, Path or iterable of (str or Path)
        A folder (searched recursively for audio) or a list of audio files.
    num_test_speakers : int
        Number of held-out speakers (32 of the 251 speakers of the project's excerpt).
    seed : int
        Seed of the choice.

    Returns
    -------
    train_files : list of Path
        Sorted files of the training speakers.
    test_files : list of Path
        Sorted files of the held-out speakers.

    Raises
    ------
    SpeechFolderError
        If a folder is given that is missing or holds no audio.
    ValueError
        If there are not more speakers than ``num_test_speakers``.

    Example
    -------
    >>> files = [f"{spk}-{chapter}-0000.flac" for spk, chapter in
    ...          [(19, 198), (26, 495), (27, 123), (32, 214), (39, 121), (40, 222)]]
    >>> train, test = librispeech_excerpt_split(files, num_test_speakers=2)
    >>> [f.name for f in test]
    ['27-123-0000.flac', '32-214-0000.flac']
    >>> len(train), set(train).isdisjoint(test)
    (4, True)
    >>> librispeech_excerpt_split(reversed(files), num_test_speakers=2)[1] == test
    True
    """
    if isinstance(files_or_dir, str | Path) and Path(files_or_dir).is_dir():
        files = list_speech_files(files_or_dir)
    elif isinstance(files_or_dir, str | Path):
        raise SpeechFolderError(
            f"'{files_or_dir}' is not a folder. Pass the folder of the LibriSpeech excerpt "
            f"(../shared/assets/speech/librispeech-train-clean-100-excerpt) or a list of files."
        )
    else:
        files = [Path(f) for f in files_or_dir]
    speakers = sorted({speaker_of(f) for f in files})
    if num_test_speakers < 0 or num_test_speakers >= len(speakers):
        raise ValueError(
            f"cannot hold out {num_test_speakers} speakers: the files hold {len(speakers)} speakers "
            f"and at least one must remain for training"
        )
    held_out = set(sorted(speakers, key=lambda spk: _rank_key(seed, spk))[:num_test_speakers])
    train = sorted((f for f in files if speaker_of(f) not in held_out), key=str)
    test = sorted((f for f in files if speaker_of(f) in held_out), key=str)
    return train, test
