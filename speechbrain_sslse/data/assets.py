"""The real recordings beside the project (``../shared/assets``), split into training and held-out.

The asset collection's README names what is held out for the developers' real test set:
speakers, noises, rooms and every real noisy recording. This module is the one place that
encodes that list; the training-data builder of the shipped model and the test-set builder
both read it, and a test checks that no held-out file reaches a training list.

Held out (never trained, validated or tuned on):

- speech: the 32 LibriSpeech speakers of :func:`~speechbrain_sslse.data.splits.librispeech_excerpt_split`,
  the speechocean762 speakers of ``speech/speechocean762/test_speakers.txt``, all of
  ``speech/vctk-excerpt/``;
- noise: ``noise/noise4.wav``, ``noise/noise5.wav``, ESC-10 fold 5 (``noise/esc10/*/5-*.ogg``),
  ``noise/misc/speech-commands-background/``;
- rooms: ``rir/measured/web-audio-samples/house-impulses/living-*.flac``,
  ``rir/measured/pymixconsole/medium_room.flac``, ``rir/measured/auralizr-openair/st.flac``,
  ``rir/measured/audiomentations-demo/rir48000.flac``;
- real noisy recordings: all of ``paired/``.

Authors
 * speechbrain-sslse contributors
"""

from dataclasses import dataclass
from pathlib import Path

from .splits import librispeech_excerpt_split

__all__ = ["AssetSplit", "AssetsMissingError", "default_assets_folder", "split_assets", "AUDIO_EXTENSIONS"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")

LIBRISPEECH = "speech/librispeech-train-clean-100-excerpt"
SPEECHOCEAN = "speech/speechocean762"
VCTK = "speech/vctk-excerpt"
CMU_ARCTIC = "speech/cmu-arctic-excerpt"
HELD_OUT_NOISES = ("noise/noise4.wav", "noise/noise5.wav")
HELD_OUT_NOISE_FOLDERS = ("noise/misc/speech-commands-background",)
HELD_OUT_ROOMS = (
    "rir/measured/pymixconsole/medium_room.flac",
    "rir/measured/auralizr-openair/st.flac",
    "rir/measured/audiomentations-demo/rir48000.flac",
)
HELD_OUT_ROOM_GLOBS = ("rir/measured/web-audio-samples/house-impulses/living-*.flac",)


class AssetsMissingError(FileNotFoundError):
    """The asset folder (or a part of it) is missing; the message says what to pass."""


def default_assets_folder():
    """``../shared/assets`` beside the project checkout (it may not exist on a user's machine)."""
    return Path(__file__).resolve().parents[3] / "shared" / "assets"


def _audio(folder):
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".")
    )


@dataclass
class AssetSplit:
    """Training and held-out files of the asset collection (absolute paths, sorted).

    ``*_speech`` are lists of ``(speaker, path)``; the speaker ids carry their corpus prefix
    (``libri-103``, ``so762-0024``, ``vctk-p225``, ``arctic-aew``) so that ids never collide.
    """

    train_speech: list
    heldout_speech: list
    train_noises: list
    heldout_noises: list
    train_rirs: list
    heldout_rirs: list
    paired: list

    def summary(self):
        """Counts of every list, for logs and model cards."""
        return {
            "train_speech_files": len(self.train_speech),
            "train_speakers": len({s for s, _ in self.train_speech}),
            "heldout_speech_files": len(self.heldout_speech),
            "heldout_speakers": len({s for s, _ in self.heldout_speech}),
            "train_noises": len(self.train_noises),
            "heldout_noises": len(self.heldout_noises),
            "train_rirs": len(self.train_rirs),
            "heldout_rirs": len(self.heldout_rirs),
            "paired_recordings": len(self.paired),
        }


def _arctic_speaker(path):
    parts = Path(path).stem.split("_")
    return parts[2] if len(parts) > 3 and parts[0] == "cmu" else "arctic"


def split_assets(root=None):
    """Splits the asset collection into training and held-out files.

    Arguments
    ---------
    root : str or Path, optional
        The asset folder (default :func:`default_assets_folder`).

    Returns
    -------
    AssetSplit

    Raises
    ------
    AssetsMissingError
        If ``root`` or its ``speech/`` folder does not exist.

    Example
    -------
    >>> import tempfile
    >>> split_assets(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    speechbrain_sslse.data.assets.AssetsMissingError: ...
    """
    root = Path(root or default_assets_folder()).expanduser().resolve()
    if not (root / "speech").is_dir():
        raise AssetsMissingError(
            f"'{root}' is not the project's asset folder (no speech/ inside). Pass the folder "
            f"'../shared/assets' beside the checkout."
        )
    train_speech, heldout_speech = [], []
    libri = root / LIBRISPEECH
    if libri.is_dir():
        train, test = librispeech_excerpt_split(libri)
        train_speech += [(f"libri-{p.name.split('-')[0]}", p) for p in train]
        heldout_speech += [(f"libri-{p.name.split('-')[0]}", p) for p in test]
    so_dir = root / SPEECHOCEAN
    if so_dir.is_dir():
        test_list = so_dir / "test_speakers.txt"
        held = {line.strip() for line in test_list.read_text().splitlines() if line.strip()}
        held = {h if h.startswith("SPEAKER") else f"SPEAKER{h}" for h in held}
        for p in _audio(so_dir):
            speaker = p.parent.name
            item = (f"so762-{speaker.removeprefix('SPEAKER')}", p)
            (heldout_speech if speaker in held else train_speech).append(item)
    heldout_speech += [(f"vctk-{p.parent.name}", p) for p in _audio(root / VCTK)]
    train_speech += [(f"arctic-{_arctic_speaker(p)}", p) for p in _audio(root / CMU_ARCTIC)]

    held_noises = {root / n for n in HELD_OUT_NOISES}
    held_noises |= {p for p in _audio(root / "noise/esc10") if p.name.startswith("5-")}
    for folder in HELD_OUT_NOISE_FOLDERS:
        held_noises |= set(_audio(root / folder))
    noises = _audio(root / "noise")
    held_rooms = {root / r for r in HELD_OUT_ROOMS}
    for pattern in HELD_OUT_ROOM_GLOBS:
        held_rooms |= set(root.glob(pattern))
    rirs = _audio(root / "rir")
    paired = _audio(root / "paired")
    return AssetSplit(
        train_speech=sorted(train_speech, key=lambda x: str(x[1])),
        heldout_speech=sorted(heldout_speech, key=lambda x: str(x[1])),
        train_noises=[p for p in noises if p not in held_noises],
        heldout_noises=[p for p in noises if p in held_noises],
        train_rirs=[p for p in rirs if p not in held_rooms],
        heldout_rirs=[p for p in rirs if p in held_rooms],
        paired=paired,
    )
