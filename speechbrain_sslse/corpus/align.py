"""TIMIT-style word and phone segments from eSpeak NG's synthesis events.

Phones: each PHONEME event starts a segment that ends where the next one starts
(the last ends with the audio), so phone segments tile the speech as in TIMIT's
``.PHN``. eSpeak's pause phonemes (``_``, ``_:`` ...) become ``pau``; the silence
before the first and after the last phone is ``h#``. Labels are eSpeak's phoneme
mnemonics with the stress marks removed (not TIMIT's 61 phone set).

Words: every PHONEME event carries the text position of its WORD event, so a
word's segment runs from the start of its first phone to the end of its last
(word and phone boundaries coincide, as in TIMIT). eSpeak sometimes reads a
preposition and its article as one unit ("of the", "in a"): one WORD event whose
phones cover both words. Such a unit is split between its words by the number of
phones each word has when spoken alone (``count_phones``). Word labels come from
the written text, lower case without punctuation, so every speaker's ``.WRD`` of
a sentence holds the same words.

Times here are in milliseconds; :func:`to_samples` converts segments.
"""

import re

from .espeak import EVENT_PHONEME, EVENT_WORD

_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z0-9]+)*")


def phone_label(name):
    """TIMIT-like label of an eSpeak phoneme mnemonic (stress marks removed; pauses are ``pau``).

    Example
    -------
    >>> phone_label("'A@"), phone_label(",0"), phone_label("_:")
    ('A@', '0', 'pau')
    """
    if name.startswith("_"):
        return "pau"
    label = name.replace("'", "").replace(",", "").strip()
    return label or name


def text_words(text):
    """Words of a text with their character spans.

    Returns
    -------
    list of tuple
        ``(start_char, end_char, label)``, label in lower case.

    Example
    -------
    >>> text_words("The clown's hat.")
    [(0, 3, 'the'), (4, 11, "clown's"), (12, 15, 'hat')]
    """
    return [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(text)]


def phone_segments(events, duration_ms):
    """Phone segments ``(start_ms, end_ms, label, text_position)`` from the events, tiling the speech.

    Zero-length segments (two events at the same time) are dropped.

    Example
    -------
    >>> from speechbrain_sslse.corpus.espeak import SynthEvent
    >>> ev = [SynthEvent(7, 1, 0, 10, "h"), SynthEvent(7, 1, 0, 60, "'a"), SynthEvent(7, 3, 0, 200, "_:")]
    >>> phone_segments(ev, 250)
    [(10, 60, 'h', 1), (60, 200, 'a', 1), (200, 250, 'pau', 3)]
    """
    phones = [e for e in events if e.kind == EVENT_PHONEME]
    out = []
    for i, ev in enumerate(phones):
        end = phones[i + 1].time_ms if i + 1 < len(phones) else duration_ms
        end = min(end, duration_ms)
        if end > ev.time_ms:
            out.append((ev.time_ms, end, phone_label(ev.name), ev.text_position))
    return out


def _split_counts(group_words, n_phones, count_phones):
    """Phones per word of a unit of several words: trailing words get their spoken-alone counts."""
    counts = [max(1, int(count_phones(w))) for w in group_words[1:]]
    if sum(counts) >= n_phones:  # cannot honour them: share the phones out evenly
        base = [n_phones // len(group_words)] * len(group_words)
        for k in range(n_phones % len(group_words)):
            base[k] += 1
        return base
    return [n_phones - sum(counts)] + counts


def word_segments(events, text, duration_ms, count_phones):
    """Word segments ``(start_ms, end_ms, label)`` from the events.

    Arguments
    ---------
    events : list of SynthEvent
        Events of one synthesis.
    text : str
        The text synthesised.
    duration_ms : float
        Audio duration in milliseconds.
    count_phones : callable
        ``count_phones(word) -> int``: phones of a word spoken alone, used to split
        units eSpeak reads as one word.

    Returns
    -------
    list of tuple

    Example
    -------
    >>> from speechbrain_sslse.corpus.espeak import SynthEvent as E
    >>> ev = [E(1, 1, 2, 0, "of"), E(7, 1, 0, 5, "@"), E(7, 1, 0, 50, "v"), E(7, 1, 0, 90, "D"),
    ...       E(7, 1, 0, 120, "@2"), E(1, 8, 3, 150, "sea"), E(7, 8, 0, 160, "s"), E(7, 8, 0, 220, "'i:")]
    >>> word_segments(ev, "of the sea", 400, lambda w: 2)
    [(5, 90, 'of'), (90, 160, 'the'), (160, 400, 'sea')]
    """
    words = text_words(text)
    phones = [p for p in phone_segments(events, duration_ms) if p[2] != "pau"]
    word_events = [e for e in events if e.kind == EVENT_WORD]
    starts = [e.text_position - 1 for e in word_events]
    out = []
    for i, ev in enumerate(word_events):
        lo = starts[i]
        hi = starts[i + 1] if i + 1 < len(starts) else len(text)
        # text words of this unit: those starting inside [lo, hi); the first may start at lo exactly
        unit = [w for w in words if lo <= w[0] < hi]
        if not unit:
            continue
        own = [p for p in phones if p[3] == ev.text_position]
        if not own:  # no phones reported: fall back to the word events' times
            end = min(word_events[i + 1].time_ms if i + 1 < len(word_events) else duration_ms, duration_ms)
            step = (end - ev.time_ms) / len(unit)
            for k, (_, _, label) in enumerate(unit):
                if step > 0:
                    out.append((ev.time_ms + k * step, ev.time_ms + (k + 1) * step, label))
            continue
        counts = [len(own)] if len(unit) == 1 else _split_counts([w[2] for w in unit], len(own), count_phones)
        k = 0
        for (_, _, label), n in zip(unit, counts):
            if n <= 0:
                continue
            seg = own[k : k + n]
            out.append((seg[0][0], seg[-1][1], label))
            k += n
    return out


def to_samples(segments, sample_rate, shift, length):
    """Converts ``(start_ms, end_ms, label, ...)`` segments to sample offsets in ``[0, length]``.

    Segments are shifted by ``shift`` samples, clipped, kept in order without overlap,
    and dropped when empty.

    Example
    -------
    >>> to_samples([(0, 10, "a"), (10, 20, "b"), (20, 30, "c")], 1000, -5, 12)
    [(0, 5, 'a'), (5, 12, 'b')]
    """
    out = []
    prev_end = 0
    for seg in segments:
        start = int(round(seg[0] * sample_rate / 1000.0)) + shift
        end = int(round(seg[1] * sample_rate / 1000.0)) + shift
        start, end = max(start, prev_end, 0), min(end, length)
        if end > start:
            out.append((start, end, seg[2]))
            prev_end = end
    return out


def tile_with_silence(phones, length):
    """Makes phone segments cover ``[0, length]``: ``h#`` at both ends, ``pau`` in gaps.

    Pauses touching either end are merged into the ``h#``.

    Example
    -------
    >>> tile_with_silence([(3, 5, "pau"), (5, 8, "a"), (8, 9, "pau")], 12)
    [(0, 5, 'h#'), (5, 8, 'a'), (8, 12, 'h#')]
    """
    core = list(phones)
    while core and core[0][2] == "pau":
        core.pop(0)
    while core and core[-1][2] == "pau":
        core.pop()
    if not core:
        return [(0, length, "h#")]
    out = []
    if core[0][0] > 0:
        out.append((0, core[0][0], "h#"))
    for seg in core:
        if out and seg[0] > out[-1][1]:
            out.append((out[-1][1], seg[0], "pau"))
        if out and out[-1][2] == "pau" and seg[2] == "pau":
            out[-1] = (out[-1][0], seg[1], "pau")
        else:
            out.append(seg)
    if core[-1][1] < length:
        out.append((core[-1][1], length, "h#"))
    return out
