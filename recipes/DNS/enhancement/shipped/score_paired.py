#!/usr/bin/env python3
"""Scores a model folder and the DNN peers on the held-out real noisy pairs of ../shared/assets/paired.

Usage: python score_paired.py <model folder> <output.json>
"""

import json
import sys

import numpy as np
import torch

from speechbrain_sslse.audio import read_audio
from speechbrain_sslse.data.assets import split_assets
from speechbrain_sslse.inference import SpectrumAwareEnhancer
from speechbrain_sslse.metrics import DNSMOS, pesq_wb, stoi
from speechbrain_sslse.peers import enhance_with_peer

PEERS = ("nsnet2", "gtcrn", "deepfilternet3")


def clean_of(path):
    """The clean reference of a noisy file of ``paired/``."""
    text = str(path)
    if "voicebank" in text:
        return text.replace("/noisy/", "/clean/")
    return text.replace("noisy_snr0", "clean_freesound_33711")


def main(model_dir, output):
    torch.set_num_threads(1)
    noisy_files = [p for p in split_assets().paired if "noisy" in str(p)]
    model = SpectrumAwareEnhancer.from_hparams(source=model_dir)
    systems = {"unprocessed": lambda w: w, "model": model.enhance_waveform}
    for peer in PEERS:
        systems[peer] = lambda w, peer=peer: enhance_with_peer(peer, w)
    dnsmos = DNSMOS(num_threads=1)
    rows = {name: [] for name in systems}
    for path in noisy_files:
        noisy, clean = read_audio(path), read_audio(clean_of(path))
        n = min(len(noisy), len(clean))
        noisy, clean = noisy[:n], clean[:n]
        for name, enhance in systems.items():
            out = torch.as_tensor(enhance(noisy)).float().cpu()[:n]
            level = 20 * np.log10(float(out.pow(2).mean().sqrt()) / float(noisy.pow(2).mean().sqrt()))
            rows[name].append(
                {"stoi": stoi(out, clean), "pesq": pesq_wb(out, clean), **dnsmos(out), "level_db": level}
            )
        print(path.name, {k: round(v[-1]["dnsmos_ovrl"], 2) for k, v in rows.items()}, flush=True)
    summary = {k: {m: round(float(np.mean([r[m] for r in v])), 3) for m in v[0]} for k, v in rows.items()}
    print(json.dumps(summary, indent=1))
    with open(output, "w") as f:
        json.dump({"files": [str(p) for p in noisy_files], "summary": summary}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
