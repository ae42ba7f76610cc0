"""The speech stage: eSpeak NG speakers (every layout, or TIMIT only) and real recordings.

Speakers are split once into train and held-out test speakers: the train speakers
feed DNS/clean, Valentini's trainset and TIMIT/TRAIN, the test speakers VCTK,
Valentini's testset and TIMIT/TEST. With a folder of real recordings, DNS, VCTK and
Valentini hold those instead (cut into utterances of a few seconds) and TIMIT, which
needs alignments, keeps the eSpeak NG speakers.
"""

from ..audio import audio_info, read_audio
from ..data.splits import speaker_of
from . import writers
from .config import CORPUS_LAYOUTS
from .espeak import private_espeak
from .realspeech import SpeechDirError, cut_points, find_speech_files
from .seeding import rng_for
from .speech import synthesize_utterance
from .summary import progress_bar
from .text import SA1, SA2, SENTENCES, speaker_sentences


def check_speech_dir(speech_dir, config):
    """Lists and checks the real recordings before anything is written.

    Arguments
    ---------
    speech_dir : str or Path
        Folder of real recordings (speaker = file name up to the first ``-``).
    config : dict
        The corpus settings (:func:`.config.corpus_config`); ``real_speakers`` caps the speakers.

    Returns
    -------
    list of Path
        The audio files, each readable.

    Example
    -------
    >>> from speechbrain_sslse.corpus.config import corpus_config
    >>> check_speech_dir("/nonexistent/folder", corpus_config("tiny"))
    Traceback (most recent call last):
    ...
    speechbrain_sslse.corpus.realspeech.SpeechDirError: --speech-dir /nonexistent/folder: folder does not...
    """
    files = find_speech_files(speech_dir)
    for path in files:
        try:
            audio_info(path)
        except Exception as err:
            raise SpeechDirError(
                f"--speech-dir {speech_dir}: {path.name} is not readable audio ({err}); "
                "remove it or convert it to WAV/FLAC"
            ) from err
    names = sorted({speaker_of(p) for p in files})[: config["real_speakers"]]
    if len(names) < 2:
        raise SpeechDirError(
            f"--speech-dir {speech_dir}: found {len(names)} speaker(s), at least 2 are needed (train and "
            "test speakers); a speaker is a file-name prefix before the first '-'"
        )
    return files


def utterance_plan(speaker_index, num_speakers, per_speaker, seed):
    """What one synthetic speaker reads: ``(name, index, text)`` for SA1, SA2 and SX sentences.

    Example
    -------
    >>> [p[0] for p in utterance_plan(0, 6, 4, seed=0)][:2]
    ['SA1', 'SA2']
    """
    plan = [("SA1", 1, SA1)]
    if per_speaker >= 2:
        plan.append(("SA2", 2, SA2))
    order = rng_for(seed, "sentence-order").permutation(len(SENTENCES))
    n_sx = max(0, per_speaker - 2)
    for k, idx in enumerate(speaker_sentences(speaker_index, num_speakers, n_sx, order)):
        plan.append((f"SX{idx + 1}", 3 + k, SENTENCES[idx]))
    return plan


def write_synthetic(out_dir, speakers, test_ids, config, seed, stats, progress, timit_only):
    """Synthesises every speaker's sentences with eSpeak NG and writes them into the layouts.

    Arguments
    ---------
    out_dir : Path
        The corpus folder.
    speakers : list of Speaker
        All eSpeak NG speakers (:func:`.speakers.make_speakers`).
    test_ids : set of str
        The ids of the held-out test speakers.
    config : dict
        The corpus settings; ``sentences_per_speaker`` sentences each.
    seed : int
        The corpus seed (each utterance has its own generator).
    stats : LayoutStats
        Counts what each layout receives (updated).
    progress : bool
        Show a progress bar.
    timit_only : bool
        Write TIMIT only (the other layouts hold real recordings).

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from speechbrain_sslse.corpus.config import corpus_config
    >>> from speechbrain_sslse.corpus.speakers import make_speakers
    >>> from speechbrain_sslse.corpus.summary import LayoutStats
    >>> out, stats = Path(tempfile.mkdtemp()), LayoutStats()
    >>> speakers = make_speakers(2, seed=0)
    >>> write_synthetic(out, speakers, {speakers[1].id}, corpus_config("tiny", sentences_per_speaker=1),
    ...                 0, stats, False, timit_only=True)
    >>> stats.speech_summary("TIMIT/TRAIN")["utterances"], stats.speech_summary("VCTK")["utterances"]
    (1, 0)
    """
    roots = {name: out_dir / sub for name, sub in CORPUS_LAYOUTS.items()}
    per = config["sentences_per_speaker"]
    bar = progress_bar(len(speakers) * per, "speech (eSpeak NG)", progress)
    for k, spk in enumerate(speakers):
        test = spk.id in test_ids
        split = "TEST" if test else "TRAIN"
        with private_espeak() as es:  # fresh library state per speaker: reproducible audio
            utts = [
                synthesize_utterance(
                    spk, text, name, index, rng_for(seed, "utterance", spk.id, name), espeak=es
                )
                for name, index, text in utterance_plan(k, len(speakers), per, seed)
            ]
        for utt in utts:
            index, text = utt.index, utt.text
            stats.add_unique("synthesised", utt.duration)
            writers.write_timit_utterance(roots["TIMIT"], split, utt)
            stats.add_speech(f"TIMIT/{split}", spk.timit_id, utt.duration)
            if not timit_only:
                if test:
                    writers.write_vctk(roots["VCTK"], spk.id, index, utt.wav, text)
                    writers.write_valentini(roots["Valentini"], "test", spk.id, index, utt.wav)
                    stats.add_speech("VCTK", spk.id, utt.duration)
                    stats.add_speech("Valentini/test", spk.id, utt.duration)
                else:
                    writers.write_dns_clean(roots["DNS"], spk.id, index, utt.wav)
                    writers.write_valentini(roots["Valentini"], "train", spk.id, index, utt.wav)
                    stats.add_speech("DNS/clean", spk.id, utt.duration)
                    stats.add_speech("Valentini/train", spk.id, utt.duration)
            bar.update(1)
    bar.close()


def real_speaker_ids(names):
    """VCTK-style ids for the speakers of real recordings: ``p`` + the alphanumerics, made unique.

    Example
    -------
    >>> real_speaker_ids(["19", "a-b", "ab"])
    {'19': 'p19', 'a-b': 'pab', 'ab': 'pabx2'}
    """
    ids, taken = {}, set()
    for name in names:
        base = "p" + "".join(ch for ch in name if ch.isalnum())
        uid, n = base, 1
        while uid in taken:
            n += 1
            uid = f"{base}x{n}"
        taken.add(uid)
        ids[name] = uid
    return ids


def write_real(out_dir, speech_dir, files, config, stats, progress):
    """Cuts the real recordings into utterances and writes them into DNS, VCTK and Valentini.

    The last speakers (by name, ``test_fraction`` of them, at least 2) are the test speakers.

    Arguments
    ---------
    out_dir : Path
        The corpus folder.
    speech_dir : str or Path
        The folder of recordings (named in errors).
    files : list of Path
        Its audio files (:func:`check_speech_dir`).
    config : dict
        The corpus settings (``real_speakers``, ``test_fraction``).
    stats : LayoutStats
        Counts what each layout receives (updated).
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of dict
        One record per speaker: id, name, gender (``U``), source, split, utterances.

    Example
    -------
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from speechbrain_sslse.audio import write_audio
    >>> from speechbrain_sslse.corpus.config import corpus_config
    >>> from speechbrain_sslse.corpus.summary import LayoutStats
    >>> src, out = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> for name in ("a-1.wav", "b-1.wav", "c-1.wav"):
    ...     write_audio(src / name, 0.1 * rng.standard_normal(3 * 16000), 16000)
    >>> config = corpus_config("tiny")
    >>> files = check_speech_dir(src, config)
    >>> [(s["id"], s["split"]) for s in write_real(out, src, files, config, LayoutStats(), False)]
    [('pa', 'train'), ('pb', 'test'), ('pc', 'test')]
    """
    by_speaker = {}
    for path in files:
        by_speaker.setdefault(speaker_of(path), []).append(path)
    names = sorted(by_speaker)
    if config["real_speakers"] is not None:
        names = names[: config["real_speakers"]]
    ids = real_speaker_ids(names)
    n_test = min(max(2, int(round(len(names) * config["test_fraction"]))), len(names) - 1)
    test_names = set(names[-n_test:])
    roots = {name: out_dir / sub for name, sub in CORPUS_LAYOUTS.items()}
    speakers = []
    bar = progress_bar(sum(len(by_speaker[n]) for n in names), "speech (real recordings)", progress)
    for name in names:
        uid, test, index = ids[name], name in test_names, 0
        for path in by_speaker[name]:
            wav = read_audio(path).numpy()
            for start, end in cut_points(wav, 16000):
                index += 1
                piece = wav[start:end]
                seconds = len(piece) / 16000.0
                stats.add_unique("real", seconds)
                if test:
                    writers.write_vctk(roots["VCTK"], uid, index, piece)
                    writers.write_valentini(roots["Valentini"], "test", uid, index, piece)
                    stats.add_speech("VCTK", uid, seconds)
                    stats.add_speech("Valentini/test", uid, seconds)
                else:
                    writers.write_dns_clean(roots["DNS"], uid, index, piece)
                    writers.write_valentini(roots["Valentini"], "train", uid, index, piece)
                    stats.add_speech("DNS/clean", uid, seconds)
                    stats.add_speech("Valentini/train", uid, seconds)
            bar.update(1)
        speakers.append(
            {
                "id": uid,
                "name": name,
                "gender": "U",
                "source": "real",
                "split": "test" if test else "train",
                "utterances": index,
            }
        )
    bar.close()
    if not any(s["utterances"] for s in speakers if s["split"] == "test") or not any(
        s["utterances"] for s in speakers if s["split"] == "train"
    ):
        raise SpeechDirError(
            f"--speech-dir {speech_dir}: the recordings are too short (each needs at least 1 s of speech)"
        )
    return speakers
