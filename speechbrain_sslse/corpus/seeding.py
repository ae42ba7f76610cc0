"""Deterministic random streams: one independent generator per named item.

Every random choice of the corpus draws from a generator seeded by the corpus seed
and the item's name (``rng_for(seed, "rir", "DNS", 3)``), so an item does not
change when others are added, removed or generated in another order or process.
Names are hashed with CRC-32 (stable across runs, unlike Python's ``hash``).
"""

import zlib

import numpy as np


def seed_sequence(seed, *names):
    """A ``numpy.random.SeedSequence`` from an integer seed and a tuple of names.

    Example
    -------
    >>> seed_sequence(0, "a", 1).entropy == seed_sequence(0, "a", 1).entropy
    True
    """
    keys = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(n).encode("utf-8")) for n in names]
    return np.random.SeedSequence(keys)


def rng_for(seed, *names):
    """The generator of one named item.

    Arguments
    ---------
    seed : int
        Corpus seed.
    *names : str or int
        The item's name (any number of parts).

    Returns
    -------
    numpy.random.Generator

    Example
    -------
    >>> float(rng_for(0, "noise", "white").random()) == float(rng_for(0, "noise", "white").random())
    True
    >>> float(rng_for(0, "x").random()) == float(rng_for(1, "x").random())
    False
    """
    return np.random.default_rng(seed_sequence(seed, *names))


def int_seed_for(seed, *names):
    """A 31-bit integer seed for libraries that take one (pyroomacoustics, torch).

    Example
    -------
    >>> 0 <= int_seed_for(0, "room", 1) < 2**31
    True
    """
    return int(seed_sequence(seed, *names).generate_state(1, dtype=np.uint32)[0] >> 1)
