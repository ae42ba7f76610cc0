"""The RIR stage: simulated rooms at target T60s for DNS (SLR26/SLR28 paths) and MIT_IR.

Targets spread over 0.3-1.3 s (:func:`.rooms.t60_targets`), in a random order per
layout; each RIR is written under a temporary name and moved to its final path, which
for SLR26 and MIT_IR files carries the room's dimensions.
"""

import os

from . import writers
from .config import CORPUS_LAYOUTS
from .rooms import make_rir, t60_targets
from .seeding import int_seed_for, rng_for
from .summary import progress_bar


def write_rirs(out_dir, config, seed, progress):
    """Simulates and writes the DNS RIRs (with ``RIR_table_simple.csv``) and the MIT_IR RIRs.

    About a fifth of the DNS RIRs (at least one when there are two or more) go on SLR28
    paths, the others on SLR26 paths.

    Arguments
    ---------
    out_dir : Path
        The corpus folder.
    config : dict
        The corpus settings (``dns_rirs``, ``mit_rirs``, ``rir_goal_pct``).
    seed : int
        The corpus seed.
    progress : bool
        Show a progress bar.

    Returns
    -------
    records : list of dict
        One per RIR: layout, path and the room (:class:`.rooms.RIRInfo` fields).
    n_slr28 : int
        How many DNS RIRs are on SLR28 paths.

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from speechbrain_sslse.corpus.config import corpus_config
    >>> config = corpus_config("tiny", dns_rirs=0, mit_rirs=1)
    >>> records, n_slr28 = write_rirs(Path(tempfile.mkdtemp()), config, 0, False)
    >>> [r["layout"] for r in records], n_slr28
    (['MIT_IR'], 0)
    """
    dns = out_dir / CORPUS_LAYOUTS["DNS"]
    mit = out_dir / CORPUS_LAYOUTS["MIT_IR"]
    n_dns, n_mit = config["dns_rirs"], config["mit_rirs"]
    n_slr28 = max(1, int(round(0.2 * n_dns))) if n_dns >= 2 else 0
    records, table = [], []
    bar = progress_bar(n_dns + n_mit, "RIRs (pyroomacoustics)", progress)
    for layout, count, rate in (("DNS", n_dns, writers.DNS_RATE), ("MIT_IR", n_mit, writers.MIT_IR_RATE)):
        rng = rng_for(seed, layout, "t60")
        targets = list(rng.permutation(t60_targets(count, rng))) if count else []
        for i, target in enumerate(targets):
            root = dns if layout == "DNS" else mit
            tmp = root / f".rir_{i:03d}.tmp.wav"
            info = make_rir(
                tmp,
                float(target),
                rate,
                rng_for(seed, layout, "room", i),
                int_seed_for(seed, layout, i),
                goal=config["rir_goal_pct"] / 100.0,
            )
            if layout == "MIT_IR":
                final = writers.mit_ir_path(mit, i + 1, info.dims, rng_for(seed, layout, "name", i))
            elif i < count - n_slr28:
                final = writers.dns_slr26_path(dns, i + 1, info.dims)
            else:
                final = writers.dns_slr28_path(dns, i + 1 - (count - n_slr28))
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            if layout == "DNS":
                table.append(
                    {
                        "wavfile": final.relative_to(dns).as_posix(),
                        "channel": 1,
                        "T60_WB": round(info.measured_t60, 4),
                        "C50_WB": round(info.c50, 3),
                        "isRealRIR": 0,
                    }
                )
            records.append(
                {"layout": layout, "path": final.relative_to(out_dir).as_posix(), **info.to_dict()}
            )
            bar.update(1)
    bar.close()
    if table:
        writers.write_rir_table(dns, table)
    return records, n_slr28
