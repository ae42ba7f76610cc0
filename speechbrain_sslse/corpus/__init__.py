"""The embedded mini corpus: speech, noise and RIRs generated in the real datasets' layouts.

Real corpora (DNS 2021, VCTK, NOISEX-92, MIT IR Survey, Valentini, DEMAND, TIMIT)
are large and licensed; this package generates a small stand-in, pip-only and
deterministic from a seed, written in their on-disk layouts so that the readers of
:mod:`speechbrain_sslse.data.layouts` (and the recipes) run on both:

- speech: eSpeak NG (``espeakng-loader`` wheel) voice variants x pitch x rate as
  speakers, with TIMIT-style word and phone alignments from its synthesis events
  (:mod:`.espeak`, :mod:`.align`, :mod:`.speech`), or a folder of real recordings;
- noise: white, pink, brown, babble, modulated machinery, impulsive (:mod:`.noise`);
- RIRs: pyroomacoustics shoebox rooms at measured T60 0.3-1.3 s (:mod:`.rooms`).

Use :func:`ensure_corpus` from code (generates once, safe across processes) or the
``sslse-corpus`` command. :mod:`.generate` runs the stages in order: settings
(:mod:`.config`), the output folder (:mod:`.folder`), speech (:mod:`.speech_stage`),
noise (:mod:`.noise_stage`), RIRs (:mod:`.rir_stage`), corpus.json (:mod:`.summary`).
"""

import importlib

_EXPORTS = {
    "CORPUS_LAYOUTS": "config",
    "FORMAT_VERSION": "config",
    "SIZES": "config",
    "CorpusError": "config",
    "corpus_config": "config",
    "ensure_corpus": "generate",
    "format_summary": "summary",
    "generate_corpus": "generate",
    "read_meta": "folder",
    "SpeechDirError": "realspeech",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    # Lazy: the command line reports bad arguments before torch and pyroomacoustics load.
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
