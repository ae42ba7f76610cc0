"""Real recordings as the corpus speech: a folder of files, cut into utterances of a few seconds.

The speaker of a file is its name up to the first ``-`` (LibriSpeech's
``speaker-chapter-utterance``; a name without ``-`` is its own speaker; see
:func:`speechbrain_sslse.data.splits.speaker_of`). Long
recordings are cut at low-energy points into pieces of ``min_s`` to ``max_s``
seconds. Transcripts and gender are unknown (gender ``U``).
"""

from pathlib import Path

import numpy as np

AUDIO_EXTS = (".wav", ".flac", ".ogg", ".sph", ".nist")


class SpeechDirError(ValueError):
    """The real-speech folder is missing, empty or holds no readable audio."""


def find_speech_files(folder):
    """Audio files below ``folder``, sorted.

    Raises
    ------
    SpeechDirError
        If the folder does not exist or holds no audio file.

    Example
    -------
    >>> find_speech_files("/nonexistent/folder")
    Traceback (most recent call last):
    ...
    speechbrain_sslse.corpus.realspeech.SpeechDirError: --speech-dir /nonexistent/folder: folder does not...
    """
    root = Path(folder).expanduser()
    fix = "point --speech-dir at a folder of speech recordings (.wav/.flac), one speaker per file-name prefix"
    if not root.is_dir():
        raise SpeechDirError(f"--speech-dir {root}: folder does not exist; {fix}")
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in AUDIO_EXTS and not p.name.startswith(".")
    )
    if not files:
        raise SpeechDirError(f"--speech-dir {root}: no audio files (.wav, .flac, ...) found; {fix}")
    return files


def frame_energy_db(wav, sample_rate, frame_s=0.025, hop_s=0.010):
    """Frame energies in dB, ``[n_frames]`` (frame ``i`` starts at ``i * hop``).

    Example
    -------
    >>> frame_energy_db(np.ones(16000), 16000).shape
    (98,)
    """
    frame, hop = int(frame_s * sample_rate), int(hop_s * sample_rate)
    if len(wav) < frame:
        return np.array([10 * np.log10(np.mean(np.square(wav)) + 1e-12)])
    n = 1 + (len(wav) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    return 10 * np.log10(np.mean(np.square(wav[idx]), axis=1) + 1e-12)


def cut_points(wav, sample_rate, min_s=2.0, max_s=5.0, min_keep_s=1.0):
    """Sample offsets of the pieces of a long recording, cut at the quietest frame in each window.

    Pieces last ``min_s`` to ``max_s`` seconds; a last piece shorter than ``min_s``
    is joined to the previous one. A recording shorter than ``max_s`` is one piece
    (dropped only when shorter than ``min_keep_s``).

    Returns
    -------
    list of tuple
        ``(start, end)`` sample offsets.

    Example
    -------
    >>> x = np.concatenate([np.ones(48000), np.zeros(1600), np.ones(40000)])
    >>> cut_points(x, 16000)
    [(0, 48520), (48520, 89600)]
    >>> cut_points(np.ones(24000), 16000), cut_points(np.ones(8000), 16000)
    ([(0, 24000)], [])
    """
    hop = int(0.010 * sample_rate)
    energy = frame_energy_db(wav, sample_rate)
    # smooth over 50 ms so that a cut lands inside a pause, not between two syllables
    energy = np.convolve(energy, np.ones(5) / 5, mode="same")
    total = len(wav)
    pieces, start = [], 0
    while total - start > max_s * sample_rate:
        lo = (start + int(min_s * sample_rate)) // hop
        hi = min((start + int(max_s * sample_rate)) // hop, len(energy) - 1)
        cut = (lo + int(np.argmin(energy[lo : hi + 1]))) * hop + int(0.0125 * sample_rate)  # frame centre
        pieces.append((start, cut))
        start = cut
    if total - start >= (min_s if pieces else min_keep_s) * sample_rate:
        pieces.append((start, total))
    elif pieces:
        pieces[-1] = (pieces[-1][0], total)
    return pieces
