"""Which utterances the test set holds and what each gets: SNR, noise, RIR and noise segment.

Utterances are drawn round-robin over speakers in seeded orders; SNRs, noise types and
RIRs are assigned in balanced cycles of seeded permutations (counts differ by at most
one); each item's noise segment starts at a seeded offset. Everything is deterministic
from the test set's seed.
"""

import logging
from pathlib import Path

import numpy as np

from speechbrain_sslse.audio import AudioError, audio_info
from speechbrain_sslse.data.mixing import power

logger = logging.getLogger("create_testset")


def read_speaker_list(spec):
    """Speaker ids from a comma-separated string or a file with one id per line."""
    if spec is None:
        return None
    path = Path(spec).expanduser()
    if path.is_file():
        return {line.strip() for line in path.read_text().splitlines() if line.strip()}
    return {s.strip() for s in spec.split(",") if s.strip()}


def select_utterances(items, num, rng, min_duration, max_duration, speakers=None):
    """Picks utterances round-robin over speakers (seeded orders), within the duration limits.

    Arguments
    ---------
    items : list of dict
        ``id, path, speaker``.
    num : int
        How many (0 = all eligible).
    rng : numpy.random.Generator
        Seeded generator.
    min_duration, max_duration : float
        Duration limits in seconds (``max_duration`` 0 = none).
    speakers : set or None
        Keep only these speakers.

    Returns
    -------
    selected : list of dict
        Items with ``duration`` added.
    counts : dict
        ``too_short``, ``too_long``.
    """
    by_speaker = {}
    for item in items:
        if speakers is None or item["speaker"] in speakers:
            by_speaker.setdefault(item["speaker"], []).append(item)
    if speakers is not None and not by_speaker:
        raise ValueError(f"none of the held-out speakers {sorted(speakers)[:10]} ... has utterances here")
    names = sorted(by_speaker)
    queues = [[by_speaker[s][i] for i in rng.permutation(len(by_speaker[s]))] for s in names]
    queues = [queues[i] for i in rng.permutation(len(queues))]
    selected, counts = [], {"too_short": 0, "too_long": 0}
    depth = 0
    while any(depth < len(q) for q in queues) and (num <= 0 or len(selected) < num):
        for q in queues:
            if depth >= len(q) or (num > 0 and len(selected) >= num):
                continue
            try:
                sr, frames, _ = audio_info(q[depth]["path"])
            except AudioError as err:  # unreadable or empty: left out, named in the log
                logger.warning("skipping unusable speech file: %s", err)
                counts["unusable"] = counts.get("unusable", 0) + 1
                continue
            duration = frames / sr
            if duration < min_duration:
                counts["too_short"] += 1
            elif max_duration > 0 and duration > max_duration:
                counts["too_long"] += 1
            else:
                selected.append({**q[depth], "duration": duration})
        depth += 1
    return selected, counts


def balanced(values, n, rng):
    """``n`` draws from ``values`` with counts differing by at most one, in seeded order.

    Example
    -------
    >>> sorted(balanced([0, 5], 5, np.random.default_rng(0)))
    [0, 0, 0, 5, 5]
    """
    tiled = [values[i % len(values)] for i in range(n)]
    return [tiled[i] for i in rng.permutation(n)]


def make_plan(utterances, noises, rirs, snrs, seed):
    """Assigns SNR, noise type and RIR to every utterance (balanced, seeded).

    Returns
    -------
    list of dict
        Utterance items with ``snr``, ``noise`` (item), ``rir`` (item) and ``noise_seed``.
    """
    rng = np.random.default_rng([seed, 1])
    n = len(utterances)
    snr_list = balanced(list(snrs), n, rng)
    noise_list = balanced(list(range(len(noises))), n, rng)
    rir_list = balanced(list(range(len(rirs))), n, rng)
    return [
        {**u, "snr": float(snr_list[i]), "noise": noises[noise_list[i]], "rir": rirs[rir_list[i]], "index": i}
        for i, u in enumerate(utterances)
    ]


def draw_offset(seed, index, noise_length, length):
    """Seeded start (in samples) of the noise segment of item ``index``.

    Example
    -------
    >>> draw_offset(0, 3, 100, 40) == draw_offset(0, 3, 100, 40), draw_offset(0, 3, 10, 40)
    (True, 0)
    """
    if noise_length <= length:
        return 0
    return int(np.random.default_rng([seed, 2, index]).integers(0, noise_length - length))


def segment_offset(seed, index, noise_wav, length, active=False, tries=8, min_ratio=0.5):
    """Start (in samples) of the noise segment of item ``index``.

    ``active=False``: :func:`draw_offset`. ``active=True``: up to ``tries`` seeded starts
    are drawn (the first is :func:`draw_offset`'s) and the first whose segment has at
    least ``min_ratio`` of the recording's mean power is taken (else the most powerful
    one drawn), so that sparse noises (a dog bark in a 5-s clip) are not cut to silence.

    Example
    -------
    >>> import torch
    >>> burst = torch.zeros(16000); burst[12000:13000] = 1.0
    >>> start = segment_offset(0, 0, burst, 4000, active=True)
    >>> float(burst[start : start + 4000].abs().sum()) > 0
    True
    """
    n = noise_wav.shape[-1]
    if n <= length:
        return 0
    if not active:
        return draw_offset(seed, index, n, length)
    rng = np.random.default_rng([seed, 2, index])
    whole = float(power(noise_wav))
    best, best_power = 0, -1.0
    for _ in range(tries):
        start = int(rng.integers(0, n - length))
        p = float(power(noise_wav[start : start + length]))
        if p >= min_ratio * whole:
            return start
        if p > best_power:
            best, best_power = start, p
    return best
