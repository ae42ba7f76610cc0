"""Synthetic speakers: eSpeak NG accent x voice variant x pitch x rate, with corpus identities.

Each speaker has one identity used in every layout: a VCTK-style id (``p225`` ...)
for DNS, VCTK and Valentini, and a TIMIT id (gender letter, three initials, a
digit, e.g. ``FJKL0``) with a dialect region taken from the accent. Babble noise
uses other voice variants (:data:`BABBLE_VARIANTS`), never a corpus speaker's voice.
"""

import string
from dataclasses import asdict, dataclass, fields

from .seeding import rng_for

# Variants whose voice file declares the gender, natural enough for speech.
MALE_VARIANTS = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "Andy",
    "Lee",
    "antonio",
    "sandro",
    "travis",
    "victor",
    "michel",
    "miguel",
    "Denis",
    "Diogo",
    "Hugo",
    "Marco",
    "Henrique",
)
FEMALE_VARIANTS = (
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "Alicia",
    "Andrea",
    "Annie",
    "anika",
    "belinda",
    "linda",
    "steph",
    "steph2",
    "steph3",
)
# Babble talkers: variants no corpus speaker uses.
BABBLE_VARIANTS = (
    "Alex",
    "Gene",
    "Jacky",
    "Mario",
    "Michael",
    "Reed",
    "ed",
    "gustave",
    "iven",
    "john",
    "norbert",
    "pablo",
    "paul",
    "pedro",
    "quincy",
    "robert",
    "shelby",
    "grandpa",
    "aunty",
    "grandma",
    "Nguyen",
)
# English accents of eSpeak NG and the TIMIT dialect region that stands for each.
ACCENTS = (
    ("en-us", "DR1"),
    ("en", "DR2"),
    ("en-gb-x-rp", "DR3"),
    ("en-gb-scotland", "DR4"),
    ("en-gb-x-gbclan", "DR5"),
    ("en-gb-x-gbcwmd", "DR6"),
    ("en-029", "DR7"),
)


@dataclass(frozen=True)
class Speaker:
    """One corpus speaker.

    Attributes
    ----------
    id : str
        Id in DNS, VCTK and Valentini (``p225``).
    gender : str
        ``M``, ``F`` or ``U`` (unknown).
    timit_id : str
        TIMIT folder name (``MABC0``); its first letter is the gender.
    dialect : str
        TIMIT dialect region (``DR1`` ...).
    voice, variant : str
        eSpeak NG accent and voice variant (empty for real speakers).
    pitch, pitch_range, rate : int
        eSpeak NG parameters (0 for real speakers).
    source : str
        ``espeak-ng`` or ``real``.
    """

    id: str
    gender: str
    timit_id: str
    dialect: str
    voice: str = ""
    variant: str = ""
    pitch: int = 0
    pitch_range: int = 0
    rate: int = 0
    source: str = "espeak-ng"

    def synth_kwargs(self):
        """Keyword arguments of :meth:`ESpeak.synthesize` for this speaker.

        Example
        -------
        >>> Speaker("p225", "M", "MABC0", "DR1", "en-us", "m3", 50, 50, 170).synth_kwargs()["variant"]
        'm3'
        """
        return {
            "voice": self.voice,
            "variant": self.variant,
            "pitch": self.pitch,
            "pitch_range": self.pitch_range,
            "rate": self.rate,
        }

    def to_dict(self):
        """Plain dict for corpus.json."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        """A speaker from a corpus.json entry (extra keys such as ``split`` are ignored).

        Example
        -------
        >>> entry = {"id": "p1", "gender": "F", "timit_id": "FABC0", "dialect": "DR1", "split": "test"}
        >>> Speaker.from_dict(entry).id
        'p1'
        """
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def _initials(rng, taken):
    while True:
        letters = "".join(rng.choice(list(string.ascii_uppercase), size=3))
        if letters not in taken:
            taken.add(letters)
            return letters


def make_speakers(count, seed, first_id=225):
    """``count`` distinct synthetic speakers, alternating male and female.

    Variants are cycled per gender, accents are cycled with an offset, and pitch,
    pitch range and rate are drawn per speaker; no two speakers share all of
    (accent, variant, pitch, rate).

    Arguments
    ---------
    count : int
        Number of speakers.
    seed : int
        Corpus seed.
    first_id : int
        Number of the first ``pNNN`` id.

    Returns
    -------
    list of Speaker

    Example
    -------
    >>> spk = make_speakers(4, seed=0)
    >>> [s.gender for s in spk], spk[0].id, spk[1].timit_id[0]
    (['M', 'F', 'M', 'F'], 'p225', 'F')
    """
    rng = rng_for(seed, "speakers")
    males = list(rng.permutation(MALE_VARIANTS))
    females = list(rng.permutation(FEMALE_VARIANTS))
    taken_initials, seen = set(), set()
    speakers = []
    for i in range(count):
        gender = "M" if i % 2 == 0 else "F"
        pool = males if gender == "M" else females
        k = i // 2
        variant = str(pool[k % len(pool)])
        voice, dialect = ACCENTS[(k + k // len(pool)) % len(ACCENTS)]
        while True:
            pitch = int(rng.integers(30, 71))
            pitch_range = int(rng.integers(35, 81))
            rate = int(rng.integers(140, 196))
            key = (voice, variant, pitch, rate)
            if key not in seen:
                seen.add(key)
                break
        speakers.append(
            Speaker(
                id=f"p{first_id + i}",
                gender=gender,
                timit_id=f"{gender}{_initials(rng, taken_initials)}0",
                dialect=dialect,
                voice=voice,
                variant=variant,
                pitch=pitch,
                pitch_range=pitch_range,
                rate=rate,
            )
        )
    return speakers


def split_speakers(speakers, test_fraction=0.25, min_test=2):
    """Splits speakers into train and held-out test speakers (the last ones; both genders when alternating).

    Returns
    -------
    train, test : list of Speaker

    Example
    -------
    >>> tr, te = split_speakers(make_speakers(8, seed=0))
    >>> len(tr), len(te), sorted({s.gender for s in te})
    (6, 2, ['F', 'M'])
    """
    n_test = max(min_test, int(round(len(speakers) * test_fraction)))
    n_test = min(n_test, len(speakers) - 1)
    return list(speakers[:-n_test]), list(speakers[-n_test:])
