"""eSpeak NG speech synthesis with word and phoneme events, through ctypes.

The library and its voice data come from the ``espeakng-loader`` wheel (no system
package). The C API (``speak_lib.h``, API revision 12) is used in synchronous
retrieval mode: ``espeak_Synth`` calls our callback with blocks of 16-bit samples
and a list of events (terminated by an event of type 0). Events used here:

- ``WORD`` (1): ``text_position`` (1-based character index) and ``length`` locate the
  word in the text; ``audio_position`` is its time in milliseconds.
- ``PHONEME`` (7): ``id.string`` holds the eSpeak phoneme mnemonic (up to 8 bytes).
- ``SENTENCE`` (2), ``END`` (5, end of clause), ``MSG_TERMINATED`` (6).

eSpeak keeps global state, so synthesis is serialised within a process (a lock).
That state also carries over from one synthesis to the next (wave generator phase,
echo buffer, noise generators): the same call can give slightly different audio
depending on what was synthesised before, even after ``espeak_Initialize`` again.
For reproducible output, :func:`private_espeak` loads a private copy of the library
(fresh static state), and both random generators eSpeak uses (its own and libc's
``rand``, used by the Klatt voices) are re-seeded before every synthesis: a given
sequence of calls on a fresh instance always gives the same samples and events.
"""

import contextlib
import ctypes
import os
import shutil
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
EVENT_SENTENCE = 2
EVENT_END = 5
EVENT_MSG_TERMINATED = 6
EVENT_PHONEME = 7
EVENT_SAMPLERATE = 8

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
POS_CHARACTER = 1
CHARS_UTF8 = 1

PARAM_RATE = 1
PARAM_PITCH = 3
PARAM_RANGE = 4

DEFAULT_RATE = 175
DEFAULT_PITCH = 50
DEFAULT_RANGE = 50


class EspeakError(RuntimeError):
    """eSpeak NG could not be loaded or failed to synthesise."""


class _EventId(ctypes.Union):
    _fields_ = [
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),
    ]


class EspeakEvent(ctypes.Structure):
    """``espeak_EVENT`` of ``speak_lib.h``.

    Example
    -------
    >>> [name for name, _ in EspeakEvent._fields_][:5]
    ['type', 'unique_identifier', 'text_position', 'length', 'audio_position']
    """

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(EspeakEvent)
)


@dataclass(frozen=True)
class SynthEvent:
    """One synthesis event, copied out of the C structure.

    Attributes
    ----------
    kind : int
        Event type (``EVENT_WORD``, ``EVENT_PHONEME``, ...).
    text_position : int
        1-based character position in the text.
    length : int
        Word length in characters (word events).
    time_ms : int
        Position in the audio, in milliseconds.
    name : str
        Phoneme mnemonic (phoneme events) or the word's text (word events).
    """

    kind: int
    text_position: int
    length: int
    time_ms: int
    name: str


@dataclass
class Synthesis:
    """Output of one call to :meth:`ESpeak.synthesize`.

    Attributes
    ----------
    text : str
        The text spoken.
    wav : numpy.ndarray
        ``[T]`` float32 waveform in [-1, 1].
    sample_rate : int
        Its rate (22050 Hz for eSpeak NG).
    events : list of SynthEvent
        Events in the order eSpeak reported them.
    voice : str
        The voice name used (``language+variant``).
    """

    text: str
    wav: np.ndarray
    sample_rate: int
    events: list
    voice: str

    def words(self):
        """Word events, in order."""
        return [e for e in self.events if e.kind == EVENT_WORD]

    def phonemes(self):
        """Phoneme events, in order."""
        return [e for e in self.events if e.kind == EVENT_PHONEME]


def data_path():
    """Folder of the bundled ``espeak-ng-data``.

    Example
    -------
    >>> Path(data_path()).name
    'espeak-ng-data'
    """
    try:
        import espeakng_loader
    except ImportError as err:  # pragma: no cover - dependency of the package
        raise EspeakError("espeakng-loader is not installed: `pip install espeakng-loader==0.2.4`") from err
    return espeakng_loader.get_data_path()


def list_variants():
    """Names of the voice variants shipped with eSpeak NG (``voices/!v``).

    Example
    -------
    >>> {"m1", "f2"} <= set(list_variants())
    True
    """
    folder = Path(data_path()) / "voices" / "!v"
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def variant_gender(variant):
    """Gender declared by a voice variant file: ``"M"``, ``"F"`` or ``None``.

    Example
    -------
    >>> variant_gender("f3"), variant_gender("m5")
    ('F', 'M')
    """
    path = Path(data_path()) / "voices" / "!v" / variant
    if not path.is_file():
        raise ValueError(f"unknown eSpeak NG voice variant {variant!r}; see list_variants()")
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].lower() == "gender":
            return {"male": "M", "female": "F"}.get(fields[1].lower())
    return None


def _private_copy(lib_path):
    """Loads a new copy of the library file (the dynamic loader shares one instance per file).

    The copy is deleted as soon as it is loaded (the mapping stays valid), so nothing
    is left behind. Returns the ``CDLL``, or None when no folder allows it.
    """
    for folder in (tempfile.gettempdir(), Path.home() / ".cache" / "speechbrain_sslse"):
        copy = None
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            fd, copy = tempfile.mkstemp(prefix="libespeak-ng-", suffix=".so", dir=folder)
            os.close(fd)
            shutil.copyfile(lib_path, copy)
            return ctypes.CDLL(copy)
        except OSError:  # e.g. a noexec temporary folder: try the next one
            continue
        finally:
            if copy is not None:
                with contextlib.suppress(OSError):
                    os.unlink(copy)
    return None


class ESpeak:
    """A handle on the eSpeak NG library.

    Use :func:`get_espeak` for the process's shared instance, or
    :func:`private_espeak` for a fresh one whose output is reproducible.

    Arguments
    ---------
    private : bool
        Load a private copy of the library (fresh state) instead of the shared one.

    Example
    -------
    >>> syn = get_espeak().synthesize("Hello there.", voice="en-us", variant="m3")
    >>> syn.sample_rate, [e.name for e in syn.words()]
    (22050, ['Hello', 'there'])
    """

    def __init__(self, private=False):
        try:
            import espeakng_loader
        except ImportError as err:  # pragma: no cover - dependency of the package
            raise EspeakError(
                "espeakng-loader is not installed: `pip install espeakng-loader==0.2.4`"
            ) from err
        lib_path = espeakng_loader.get_library_path()
        lib = _private_copy(lib_path) if private else None
        self.private = lib is not None
        if private and lib is None:
            warnings.warn(
                "could not load a private copy of eSpeak NG (temporary folders not executable?); "
                "using the shared library: synthesis may not be bit-exact reproducible",
                stacklevel=2,
            )
        if lib is None:
            try:
                lib = ctypes.CDLL(lib_path)
            except OSError as err:
                raise EspeakError(
                    f"cannot load eSpeak NG from {lib_path} ({err}). Reinstall it: "
                    "`pip install --force-reinstall espeakng-loader==0.2.4`"
                ) from err
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        self._seed_espeak = getattr(lib, "espeak_ng_SetRandSeed", None)
        if self._seed_espeak is not None:
            self._seed_espeak.argtypes = [ctypes.c_long]
        try:
            self._seed_libc = ctypes.CDLL(None).srand  # the Klatt voices draw noise from libc's rand()
            self._seed_libc.argtypes = [ctypes.c_uint]
        except (OSError, AttributeError):  # pragma: no cover - non-POSIX systems
            self._seed_libc = None
        rate = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path().encode("utf-8"), INITIALIZE_PHONEME_EVENTS
        )
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed (returned {rate}); is {data_path()} complete?")
        self.lib = lib
        self.sample_rate = int(rate)
        self.variants = set(list_variants())
        self.closed = False
        self._chunks = []
        self._events = []
        self._phone_counts = {}
        self._callback = _CALLBACK(self._on_synth)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self._lock = threading.Lock()

    def close(self):
        """Unloads a private instance (the shared library stays loaded)."""
        if self.closed or not self.private:
            return
        with self._lock:
            self.closed = True
            self.lib.espeak_Terminate()
            handle = self.lib._handle
            self.lib = None
            with contextlib.suppress(Exception):
                import _ctypes

                _ctypes.dlclose(handle)

    def _on_synth(self, wav, num_samples, events):
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events and events[i].type != EVENT_LIST_TERMINATED:
            ev = events[i]
            name = ""
            if ev.type == EVENT_PHONEME:
                name = bytes(ev.id.string).split(b"\0")[0].decode("utf-8", errors="replace")
            self._events.append(SynthEvent(ev.type, ev.text_position, ev.length, ev.audio_position, name))
            i += 1
        return 0

    def synthesize(
        self,
        text,
        voice="en-us",
        variant=None,
        rate=DEFAULT_RATE,
        pitch=DEFAULT_PITCH,
        pitch_range=DEFAULT_RANGE,
    ):
        """Synthesises ``text``.

        Arguments
        ---------
        text : str
            Text to speak (plain text, UTF-8).
        voice : str
            Language voice, e.g. ``en-us``, ``en``, ``en-gb-scotland``.
        variant : str or None
            Voice variant from ``voices/!v`` (``m3``, ``f2`` ...).
        rate : int
            Words per minute (80 to 450).
        pitch : int
            Base pitch, 0 to 100 (50 is the voice's normal).
        pitch_range : int
            Pitch range, 0 to 100 (50 is normal).

        Returns
        -------
        Synthesis
        """
        if variant is not None and variant not in self.variants:
            raise ValueError(f"unknown eSpeak NG voice variant {variant!r}; see list_variants()")
        name = voice if variant is None else f"{voice}+{variant}"
        data = text.encode("utf-8")
        with self._lock:
            if self.closed:
                raise EspeakError("this eSpeak NG instance was closed")
            if self._seed_espeak is not None:
                self._seed_espeak(0)
            if self._seed_libc is not None:
                self._seed_libc(0)
            if self.lib.espeak_SetVoiceByName(name.encode("utf-8")) != 0:
                raise EspeakError(f"eSpeak NG has no voice {name!r}")
            for param, value in ((PARAM_RATE, rate), (PARAM_PITCH, pitch), (PARAM_RANGE, pitch_range)):
                self.lib.espeak_SetParameter(param, int(value), 0)
            self._chunks, self._events = [], []
            err = self.lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
            chunks, events = self._chunks, self._events
            self._chunks, self._events = [], []
        if err != 0:
            raise EspeakError(f"espeak_Synth failed with error {err} on {text!r}")
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        wav = pcm.astype(np.float32) / 32768.0
        for k, ev in enumerate(events):
            if ev.kind == EVENT_WORD:
                start = ev.text_position - 1
                events[k] = SynthEvent(
                    ev.kind, ev.text_position, ev.length, ev.time_ms, text[start : start + ev.length]
                )
        return Synthesis(text=text, wav=wav, sample_rate=self.sample_rate, events=events, voice=name)

    def count_phones(
        self,
        word,
        voice="en-us",
        variant=None,
        rate=DEFAULT_RATE,
        pitch=DEFAULT_PITCH,
        pitch_range=DEFAULT_RANGE,
    ):
        """Number of (non-pause) phonemes of ``word`` spoken alone by a voice (cached per instance).

        Example
        -------
        >>> get_espeak().count_phones("the", voice="en-us", variant="m3")
        2
        """
        key = (word, voice, variant, rate, pitch, pitch_range)
        if key not in self._phone_counts:
            syn = self.synthesize(
                word, voice=voice, variant=variant, rate=rate, pitch=pitch, pitch_range=pitch_range
            )
            self._phone_counts[key] = sum(1 for e in syn.phonemes() if not e.name.startswith("_"))
        return self._phone_counts[key]


@contextlib.contextmanager
def private_espeak():
    """A fresh eSpeak NG instance (a private copy of the library), unloaded on exit.

    A given sequence of calls on a fresh instance always gives the same audio and events.

    Example
    -------
    >>> with private_espeak() as a, private_espeak() as b:
    ...     x = a.synthesize("Good morning.", voice="en", variant="f2")
    ...     y = b.synthesize("Good morning.", voice="en", variant="f2")
    >>> bool((x.wav == y.wav).all()) and x.events == y.events
    True
    """
    es = ESpeak(private=True)
    try:
        yield es
    finally:
        es.close()


_INSTANCE = {"pid": None, "espeak": None}
_INSTANCE_LOCK = threading.Lock()


def get_espeak():
    """The process's :class:`ESpeak` (created on first use, again after a fork).

    Example
    -------
    >>> get_espeak() is get_espeak()
    True
    """
    with _INSTANCE_LOCK:
        if _INSTANCE["espeak"] is None or _INSTANCE["pid"] != os.getpid():
            _INSTANCE["espeak"] = ESpeak()
            _INSTANCE["pid"] = os.getpid()
        return _INSTANCE["espeak"]


def synthesize(text, **kwargs):
    """Shortcut for ``get_espeak().synthesize(text, **kwargs)``.

    Example
    -------
    >>> syn = synthesize("Good morning.", voice="en", variant="f2")
    >>> 0.3 < len(syn.wav) / syn.sample_rate < 3.0
    True
    """
    return get_espeak().synthesize(text, **kwargs)
