"""Synthetic utterances: eSpeak NG speech at 16 kHz with TIMIT-style word and phone segments.

An utterance is synthesised at eSpeak's 22050 Hz, resampled to 16 kHz, trimmed so
that exactly ``pad_s`` seconds of silence remain before the first and after the last
sample above -50 dB (relative to the peak), scaled to a drawn peak level, and given
a faint dither (about -84 dBFS) so that no stretch is digitally silent, like a real
recording. The segments (see :mod:`.align`) are shifted with the trim.
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from ..audio import SAMPLE_RATE, resample
from .align import phone_segments, tile_with_silence, to_samples, word_segments
from .espeak import get_espeak

TRIM_DB = -50.0
DITHER = 6e-5


@dataclass
class Utterance:
    """One utterance of one speaker.

    Attributes
    ----------
    speaker : Speaker
        Who speaks.
    name : str
        TIMIT utterance name (``SA1``, ``SX12``) or ``U<n>`` for real speech.
    index : int
        1-based number of the utterance for its speaker (``pXXX_NNN``).
    text : str
        What is said (empty when unknown).
    wav : numpy.ndarray
        ``[T]`` float32 at ``sample_rate``.
    sample_rate : int
        16000.
    words, phones : list of tuple
        ``(start_sample, end_sample, label)``; phones tile ``[0, T]``.
    """

    speaker: object
    name: str
    index: int
    text: str
    wav: np.ndarray
    sample_rate: int = SAMPLE_RATE
    words: list = field(default_factory=list)
    phones: list = field(default_factory=list)

    @property
    def duration(self):
        """Duration in seconds."""
        return len(self.wav) / self.sample_rate


def speech_bounds(wav, threshold_db=TRIM_DB):
    """First and last index of ``wav`` above ``threshold_db`` relative to its peak.

    Example
    -------
    >>> speech_bounds(np.array([0.0, 0.001, 0.5, -1.0, 0.2, 0.0]))
    (2, 4)
    """
    mag = np.abs(wav)
    peak = float(mag.max()) if mag.size else 0.0
    if peak == 0.0:
        raise ValueError("silent waveform")
    idx = np.nonzero(mag >= peak * 10 ** (threshold_db / 20.0))[0]
    return int(idx[0]), int(idx[-1])


def synthesize_utterance(speaker, text, name, index, rng, pad_s=0.15, peak_range=(0.3, 0.8), espeak=None):
    """Synthesises one utterance of ``speaker`` with its alignment.

    Arguments
    ---------
    speaker : Speaker
        An eSpeak speaker (:func:`.speakers.make_speakers`).
    text : str
        Sentence.
    name : str
        Utterance name (``SA1``, ``SX3`` ...).
    index : int
        1-based utterance number of the speaker.
    rng : numpy.random.Generator
        Draws the level and the dither.
    pad_s : float
        Silence kept before and after the speech (s).
    peak_range : tuple of float
        Range of the peak level.
    espeak : ESpeak or None
        Instance to synthesise with (default: the shared one); pass one from
        :func:`.espeak.private_espeak` for reproducible audio.

    Returns
    -------
    Utterance

    Example
    -------
    >>> from speechbrain_sslse.corpus.speakers import make_speakers
    >>> spk = make_speakers(1, 0)[0]
    >>> utt = synthesize_utterance(spk, "Good morning.", "SX1", 1, np.random.default_rng(0))
    >>> [w[2] for w in utt.words], utt.phones[0][2], utt.phones[-1][1] == len(utt.wav)
    (['good', 'morning'], 'h#', True)
    """
    kw = speaker.synth_kwargs()
    es = espeak or get_espeak()
    syn = es.synthesize(text, **kw)
    wav = resample(torch.from_numpy(syn.wav), syn.sample_rate, SAMPLE_RATE).numpy()
    duration_ms = 1000.0 * len(syn.wav) / syn.sample_rate

    words_ms = word_segments(syn.events, text, duration_ms, lambda word: es.count_phones(word, **kw))
    phones_ms = phone_segments(syn.events, duration_ms)

    first, last = speech_bounds(wav)
    pad = int(round(pad_s * SAMPLE_RATE))
    out = np.zeros(pad + (last - first + 1) + pad, dtype=np.float32)
    out[pad : pad + last - first + 1] = wav[first : last + 1]
    shift = pad - first
    length = len(out)
    words = to_samples(words_ms, SAMPLE_RATE, shift, length)
    phones = tile_with_silence(to_samples(phones_ms, SAMPLE_RATE, shift, length), length)

    out *= float(rng.uniform(*peak_range)) / float(np.abs(out).max())
    out += (DITHER * rng.standard_normal(length)).astype(np.float32)
    return Utterance(speaker=speaker, name=name, index=index, text=text, wav=out, words=words, phones=phones)
