"""Synthesising and writing the test set: target, reverberant speech and mixture per item.

The target is the dry utterance scaled by the RIR's direct-path gain and aligned with
it; the SNR is measured between the reverberant speech and the noise; the target and
the mixture get their own levels (the reverberant speech shares the mixture's gain).
Items already written are kept (resuming); the manifest is written last, atomically.
"""

import csv
import json
import logging
import math
import sys
from pathlib import Path

from testset_plan import segment_offset
from tqdm import tqdm

from speechbrain_sslse.audio import SAMPLE_RATE, AudioError, atomic_path, audio_info, read_audio, write_audio
from speechbrain_sslse.data.mixing import loop_to_length, mix_at_snr, power, reverberate

logger = logging.getLogger("create_testset")

MANIFEST_FIELDS = [
    "id",
    "clean",
    "noisy",
    "snr",
    "noise",
    "rir",
    "t60",
    "speaker",
    "duration",
    "reverberant",
    "snr_reference",
    "noise_offset",
    "source",
    "kind",
    "corpus",
    "noise_source",
    "rir_source",
    "noisy_source",
]


def _level_gain(x, level_db, peak=0.99):
    """Gain bringing ``x`` to an RMS of ``level_db`` dBFS, lowered if its peak would pass ``peak``."""
    gain = 10.0 ** (level_db / 20.0) / math.sqrt(float(power(x)) + 1e-12)
    top = float(x.abs().max()) * gain
    return gain * (peak / top if top > peak else 1.0)


def synthesize(entry, noise_wav, seed, speech_level=-25.0, mixture_level=-25.0, crop=0.0, active_noise=False):
    """Makes one test item.

    Arguments
    ---------
    entry : dict
        A plan entry (``path``, ``snr``, ``rir`` with ``wav``, ``index``).
    noise_wav : torch.Tensor
        ``[N]`` the whole noise recording at 16 kHz.
    seed : int
        Test-set seed (the noise offset is drawn from ``(seed, index)``).
    speech_level : float
        RMS level of the target in dBFS.
    mixture_level : float
        RMS level of the noisy mixture in dBFS (the reverberant speech gets the same gain).
    crop : float
        Keep the first ``crop`` seconds of the utterance (0 = all).
    active_noise : bool
        Choose a noise segment that is not (nearly) silent (:func:`testset_plan.segment_offset`).

    Returns
    -------
    dict
        ``clean``, ``reverberant``, ``noisy`` (``[T]`` tensors) and ``noise_offset`` (s).
    """
    speech = read_audio(entry["path"], min_duration=0.1)
    if crop > 0:
        speech = speech[: int(round(crop * SAMPLE_RATE))]
    reverberant, target = reverberate(speech, entry["rir"]["wav"])
    length = speech.shape[-1]
    offset = segment_offset(seed, entry["index"], noise_wav, length, active_noise)
    noise = loop_to_length(noise_wav, length, offset)
    _, scaled = mix_at_snr(reverberant, noise, entry["snr"])
    noisy = reverberant + scaled
    # The mixture and its reverberant speech share one gain (keeps the SNR); the target has its own.
    g_mix = _level_gain(noisy, mixture_level)
    noisy, reverberant = noisy * g_mix, reverberant * g_mix
    target = target * _level_gain(target, speech_level)
    return {"clean": target, "reverberant": reverberant, "noisy": noisy, "noise_offset": offset / SAMPLE_RATE}


def prepare_output(out, cfg):
    """Creates ``out`` and records ``cfg`` in ``testset_config.json`` there.

    Exits with a one-line error when ``out`` already holds a test set made with other
    options (resuming needs the same ones).
    """
    cfg_path = out / "testset_config.json"
    if cfg_path.is_file() and json.loads(cfg_path.read_text()) != cfg:
        sys.exit(
            f"error: {out} holds a test set made with other options ({cfg_path}). "
            "Use another --output_folder or delete that one."
        )
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(cfg_path) as tmp:
        Path(tmp).write_text(json.dumps(cfg, indent=2))


def write_items(plan, out, seed, speech_level=-25.0, mixture_level=-25.0, crop=0.0, active_noise=False):
    """Synthesises every plan entry into ``out/{clean,reverberant,noisy}/<id>.wav``.

    Files already written are kept (resuming). An unusable speech file is skipped and
    named in the log; an unusable noise file ends the run (every item using it would fail).

    Arguments
    ---------
    plan : list of dict
        Entries of :func:`testset_plan.make_plan` (``id, path, speaker, duration, snr, noise, rir,
        index``; optional ``corpus``).
    out : Path
        Output folder.
    seed : int
        Test-set seed.
    speech_level, mixture_level, crop, active_noise
        As in :func:`synthesize`.

    Returns
    -------
    list of dict
        Manifest rows (:data:`MANIFEST_FIELDS`), ``kind`` = ``synthetic``.
    """
    noise_cache = {}
    rows = []
    for entry in tqdm(plan, desc="test set", unit="utt"):
        uid = entry["id"]
        rel = {k: f"{k}/{uid}.wav" for k in ("clean", "reverberant", "noisy")}
        name = entry["noise"]["name"]
        try:
            if name not in noise_cache:
                noise_cache[name] = read_audio(entry["noise"]["path"], min_duration=0.1)
            if all((out / r).is_file() for r in rel.values()):  # resumed: already written
                length = audio_info(out / rel["clean"])[1]
                offset = segment_offset(seed, entry["index"], noise_cache[name], length, active_noise)
                offset /= SAMPLE_RATE
            else:
                item = synthesize(
                    entry, noise_cache[name], seed, speech_level, mixture_level, crop, active_noise
                )  # fmt: skip
                for key in ("clean", "reverberant", "noisy"):
                    write_audio(out / rel[key], item[key], SAMPLE_RATE)
                offset = item["noise_offset"]
        except AudioError as err:
            if err.file != str(entry["path"]):  # a noise file: every item using it would fail
                sys.exit(f"error: {err}")
            logger.warning("skipping unusable speech file: %s", err)  # e.g. NaN/Inf samples
            continue
        duration = entry["duration"]
        if crop > 0:
            duration = min(duration, crop)
        rows.append(
            {
                "id": uid,
                "clean": rel["clean"],
                "noisy": rel["noisy"],
                "snr": f"{entry['snr']:g}",
                "noise": entry["noise"]["name"],
                "rir": entry["rir"]["name"],
                "t60": f"{entry['rir']['t60']:.3f}",
                "speaker": entry["speaker"],
                "duration": f"{duration:.3f}",
                "reverberant": rel["reverberant"],
                "snr_reference": "reverberant",
                "noise_offset": f"{offset:.4f}",
                "source": entry["path"],
                "kind": "synthetic",
                "corpus": entry.get("corpus", ""),
                "noise_source": entry["noise"]["path"],
                "rir_source": entry["rir"]["path"],
                "noisy_source": "",
            }
        )
    return rows


def write_manifest(out, rows):
    """Writes ``out/manifest.csv`` (atomically) and returns its path."""
    manifest = out / "manifest.csv"
    with atomic_path(manifest) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return manifest
