"""Writers of the real datasets' on-disk layouts (read back by :mod:`speechbrain_sslse.data.layouts`).

Every file is written atomically (:func:`speechbrain_sslse.audio.write_audio`, or
:func:`speechbrain_sslse.files.write_text`). Paths below are relative to each layout's root:

- DNS: ``clean/<spk>/<spk>_<NNN>.wav``, ``noise/<type>_<n>.wav``,
  ``impulse_responses/SLR26/simulated_rirs_16k/<size>room/Room<NNN>/Room<NNN>-00001.wav``,
  ``impulse_responses/SLR28/RIRS_NOISES/real_rirs_isotropic_noises/<name>.wav``,
  ``acoustic_params/RIR_table_simple.csv`` (16 kHz).
- VCTK: ``wav48_silence_trimmed/<spk>/<spk>_<NNN>_mic1.flac`` (48 kHz), ``txt/<spk>/<spk>_<NNN>.txt``.
- NOISEX: ``<name>.wav`` (19.98 kHz, as NOISEX-92).
- MIT_IR: ``h<NNN>_<Place>_<k>txts.wav`` (32 kHz, as the MIT IR Survey).
- Valentini: ``clean_testset_wav/<spk>_<NNN>.wav``, ``clean_trainset_28spk_wav/<spk>_<NNN>.wav`` (48 kHz).
- DEMAND: ``<ENV>/ch01.wav`` (16 kHz).
- TIMIT: ``TRAIN|TEST/DRn/<spk>/<UTT>.WAV`` (NIST SPHERE, 16 kHz), ``.PHN``, ``.WRD``, ``.TXT``
  (sample offsets).
"""

import csv
import io
from pathlib import Path

import numpy as np
import torch

from ..audio import resample, write_audio
from ..files import write_text

DNS_RATE = 16000
VCTK_RATE = 48000
VALENTINI_RATE = 48000
NOISEX_RATE = 19980
MIT_IR_RATE = 32000
DEMAND_RATE = 16000
TIMIT_RATE = 16000

RIR_TABLE_COLUMNS = ("wavfile", "channel", "T60_WB", "C50_WB", "isRealRIR")


def _upsample(wav16, rate):
    return resample(torch.as_tensor(np.asarray(wav16, dtype=np.float32)), 16000, rate).numpy()


def segments_text(segments):
    """TIMIT ``.PHN``/``.WRD`` text: one ``start end label`` line per segment.

    Example
    -------
    >>> segments_text([(0, 1600, "h#"), (1600, 2400, "S")])
    '0 1600 h#\\n1600 2400 S\\n'
    """
    return "".join(f"{int(s)} {int(e)} {label}\n" for s, e, label in segments)


def timit_dir(root, split, speaker):
    """Folder of one TIMIT speaker: ``<root>/<split>/<DRn>/<timit id>``.

    Example
    -------
    >>> from speechbrain_sslse.corpus.speakers import make_speakers
    >>> timit_dir("/T", "TRAIN", make_speakers(1, 0)[0]).parent.name
    'DR1'
    """
    return Path(root) / split / speaker.dialect / speaker.timit_id


def write_timit_utterance(root, split, utt):
    """Writes ``<UTT>.WAV`` (NIST SPHERE), ``.PHN``, ``.WRD`` and ``.TXT`` of one utterance.

    Arguments
    ---------
    root : Path
        TIMIT root.
    split : str
        ``TRAIN`` or ``TEST``.
    utt : Utterance
        16 kHz utterance with words and phones.

    Returns
    -------
    Path
        The ``.WAV`` file.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_sslse.corpus.speakers import make_speakers
    >>> from speechbrain_sslse.corpus.speech import Utterance
    >>> utt = Utterance(make_speakers(1, 0)[0], "SA1", 1, "Hi.", np.zeros(800, dtype=np.float32),
    ...                 words=[(100, 700, "hi")], phones=[(0, 100, "h#"), (100, 700, "aI"), (700, 800, "h#")])
    >>> wav = write_timit_utterance(tempfile.mkdtemp(), "TRAIN", utt)
    >>> wav.name, wav.with_suffix(".WRD").read_text()
    ('SA1.WAV', '100 700 hi\\n')
    """
    folder = timit_dir(root, split, utt.speaker)
    stem = folder / utt.name.upper()
    wav_path = stem.with_suffix(".WAV")
    write_audio(wav_path, utt.wav, TIMIT_RATE, file_format="NIST")
    write_text(stem.with_suffix(".PHN"), segments_text(utt.phones))
    write_text(stem.with_suffix(".WRD"), segments_text(utt.words))
    write_text(stem.with_suffix(".TXT"), f"0 {len(utt.wav)} {utt.text}\n")
    return wav_path


def utterance_id(speaker_id, index):
    """``pXXX_NNN`` id shared by DNS, VCTK and Valentini.

    Example
    -------
    >>> utterance_id("p225", 3)
    'p225_003'
    """
    return f"{speaker_id}_{index:03d}"


def write_dns_clean(root, speaker_id, index, wav16):
    """Writes ``clean/<spk>/<spk>_<NNN>.wav`` (16 kHz); returns its path.

    Example
    -------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> write_dns_clean(root, "p225", 1, np.zeros(160)).relative_to(root).as_posix()
    'clean/p225/p225_001.wav'
    """
    path = Path(root) / "clean" / speaker_id / f"{utterance_id(speaker_id, index)}.wav"
    write_audio(path, wav16, DNS_RATE)
    return path


def write_vctk(root, speaker_id, index, wav16, text=None):
    """Writes ``wav48_silence_trimmed/<spk>/<spk>_<NNN>_mic1.flac`` at 48 kHz (+ ``txt/``); returns it.

    Example
    -------
    >>> import tempfile, soundfile
    >>> path = write_vctk(tempfile.mkdtemp(), "p232", 5, np.zeros(1600), "Hello.")
    >>> path.name, soundfile.info(str(path)).samplerate
    ('p232_005_mic1.flac', 48000)
    """
    uid = utterance_id(speaker_id, index)
    path = Path(root) / "wav48_silence_trimmed" / speaker_id / f"{uid}_mic1.flac"
    write_audio(path, _upsample(wav16, VCTK_RATE), VCTK_RATE)
    if text:
        write_text(Path(root) / "txt" / speaker_id / f"{uid}.txt", text + "\n")
    return path


def write_valentini(root, subset, speaker_id, index, wav16):
    """Writes ``clean_{testset,trainset_28spk}_wav/<spk>_<NNN>.wav`` (48 kHz); returns its path.

    Example
    -------
    >>> import tempfile
    >>> write_valentini(tempfile.mkdtemp(), "test", "p232", 1, np.zeros(160)).parent.name
    'clean_testset_wav'
    """
    folder = {"test": "clean_testset_wav", "train": "clean_trainset_28spk_wav"}[subset]
    path = Path(root) / folder / f"{utterance_id(speaker_id, index)}.wav"
    write_audio(path, _upsample(wav16, VALENTINI_RATE), VALENTINI_RATE)
    return path


def dns_noise_path(root, kind, number):
    """``noise/<type>_<n>.wav``.

    Example
    -------
    >>> dns_noise_path("/D", "babble", 2).as_posix()
    '/D/noise/babble_2.wav'
    """
    return Path(root) / "noise" / f"{kind}_{number}.wav"


def room_size_class(dims):
    """``small``, ``medium`` or ``large`` by floor area (< 20, < 45, >= 45 m^2).

    Example
    -------
    >>> room_size_class([4, 3, 2.5]), room_size_class([9, 7, 3])
    ('small', 'large')
    """
    area = dims[0] * dims[1]
    return "small" if area < 20 else "medium" if area < 45 else "large"


def dns_slr26_path(root, number, dims):
    """``impulse_responses/SLR26/simulated_rirs_16k/<size>room/Room<NNN>/Room<NNN>-00001.wav``.

    Example
    -------
    >>> dns_slr26_path("/D", 7, [4, 3, 2.5]).relative_to("/D").as_posix()
    'impulse_responses/SLR26/simulated_rirs_16k/smallroom/Room007/Room007-00001.wav'
    """
    room = f"Room{number:03d}"
    return (
        Path(root)
        / "impulse_responses"
        / "SLR26"
        / "simulated_rirs_16k"
        / f"{room_size_class(dims)}room"
        / room
        / f"{room}-00001.wav"
    )


def dns_slr28_path(root, number):
    """``impulse_responses/SLR28/RIRS_NOISES/real_rirs_isotropic_noises/sslse_sim_rir_<NNN>.wav``.

    Example
    -------
    >>> dns_slr28_path("/D", 3).name
    'sslse_sim_rir_003.wav'
    """
    return (
        Path(root)
        / "impulse_responses"
        / "SLR28"
        / "RIRS_NOISES"
        / "real_rirs_isotropic_noises"
        / f"sslse_sim_rir_{number:03d}.wav"
    )


def rir_table_text(rows):
    """``RIR_table_simple.csv`` content.

    Arguments
    ---------
    rows : list of dict
        Keys ``wavfile`` (path relative to the DNS root, starting ``impulse_responses/``),
        ``channel``, ``T60_WB``, ``C50_WB``, ``isRealRIR``.

    Example
    -------
    >>> print(rir_table_text([{"wavfile": "impulse_responses/a.wav", "channel": 1, "T60_WB": 0.5,
    ...                        "C50_WB": 3.2, "isRealRIR": 0}]).strip())
    wavfile,channel,T60_WB,C50_WB,isRealRIR
    impulse_responses/a.wav,1,0.5,3.2,0
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=RIR_TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row[k] for k in RIR_TABLE_COLUMNS})
    return buf.getvalue()


def write_rir_table(root, rows):
    """Writes ``acoustic_params/RIR_table_simple.csv``; returns its path.

    Example
    -------
    >>> import tempfile
    >>> row = {"wavfile": "impulse_responses/a.wav", "channel": 1, "T60_WB": 0.5, "C50_WB": 3, "isRealRIR": 0}
    >>> write_rir_table(tempfile.mkdtemp(), [row]).name
    'RIR_table_simple.csv'
    """
    path = Path(root) / "acoustic_params" / "RIR_table_simple.csv"
    write_text(path, rir_table_text(rows))
    return path


MIT_PLACES = {
    "small": ("Bedroom", "Bathroom", "Office", "Closet"),
    "medium": ("Kitchen", "LivingRoom", "Classroom", "Cafe"),
    "large": ("Hallway", "Lobby", "LectureHall", "Church"),
}


def mit_ir_path(root, number, dims, rng):
    """``h<NNN>_<Place>_<k>txts.wav``, the MIT IR Survey's naming (place drawn by room size).

    Example
    -------
    >>> mit_ir_path("/M", 1, [4, 3, 2.5], np.random.default_rng(0)).name.startswith("h001_")
    True
    """
    place = str(rng.choice(MIT_PLACES[room_size_class(dims)]))
    return Path(root) / f"h{number:03d}_{place}_{int(rng.integers(1, 100))}txts.wav"


def noisex_path(root, name):
    """``<name>.wav`` in the NOISEX-92 folder.

    Example
    -------
    >>> noisex_path("/N", "babble").name
    'babble.wav'
    """
    return Path(root) / f"{name}.wav"


def demand_path(root, env, channel="ch01"):
    """``<ENV>/ch01.wav`` in the DEMAND folder.

    Example
    -------
    >>> demand_path("/E", "TBUS").as_posix()
    '/E/TBUS/ch01.wav'
    """
    return Path(root) / env / f"{channel}.wav"
