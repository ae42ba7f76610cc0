"""The noise stage: DNS noise files, NOISEX-92 recordings and DEMAND environments.

Each layout gets other instances of the generators of :mod:`.noise` (each file has its
own random generator, :mod:`.seeding`), so no noise file is shared between layouts.
"""

from ..audio import write_audio
from . import noise as noises
from . import writers
from .config import CORPUS_LAYOUTS
from .seeding import rng_for
from .summary import progress_bar


def write_noises(out_dir, config, seed, stats, progress):
    """Writes the DNS noise files, one NOISEX-92 file per noise type and the DEMAND environments.

    Arguments
    ---------
    out_dir : Path
        The corpus folder.
    config : dict
        The corpus settings (``noise_seconds``, ``noise_files_per_type``, ``noisex_seconds``,
        ``demand_seconds``, ``demand_environments``).
    seed : int
        The corpus seed.
    stats : LayoutStats
        Counts what each layout receives (updated).
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of str
        The DEMAND environments written.

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from speechbrain_sslse.corpus.config import corpus_config
    >>> from speechbrain_sslse.corpus.summary import LayoutStats
    >>> config = corpus_config("tiny", noise_seconds=0.2, noisex_seconds=0.2, demand_seconds=0.2,
    ...                        demand_environments=1)
    >>> stats = LayoutStats()
    >>> envs = write_noises(Path(tempfile.mkdtemp()), config, 0, stats, False)
    >>> len(envs), stats.noise_summary("NOISEX")["files"]
    (1, 6)
    """
    dns = out_dir / CORPUS_LAYOUTS["DNS"]
    noisex = out_dir / CORPUS_LAYOUTS["NOISEX"]
    demand = out_dir / CORPUS_LAYOUTS["DEMAND"]
    envs = sorted(noises.DEMAND_ENVIRONMENTS)[: config["demand_environments"]]
    n_files = config["noise_files_per_type"]
    bar = progress_bar(len(noises.NOISE_TYPES) * (n_files + 1) + len(envs), "noise", progress)
    for kind in noises.NOISE_TYPES:
        for n in range(1, n_files + 1):
            wav = noises.make_noise(
                kind, config["noise_seconds"], writers.DNS_RATE, rng_for(seed, "DNS", kind, n)
            )
            write_audio(writers.dns_noise_path(dns, kind, n), wav, writers.DNS_RATE)
            stats.add_noise("DNS/noise", config["noise_seconds"])
            bar.update(1)
        wav = noises.make_noise(
            kind, config["noisex_seconds"], writers.NOISEX_RATE, rng_for(seed, "NOISEX", kind)
        )
        write_audio(writers.noisex_path(noisex, noises.NOISEX_NAMES[kind]), wav, writers.NOISEX_RATE)
        stats.add_noise("NOISEX", config["noisex_seconds"])
        bar.update(1)
    for env in envs:
        wav = noises.make_environment(
            env,
            config["demand_seconds"],
            writers.DEMAND_RATE,
            lambda kind, env=env: rng_for(seed, "DEMAND", env, kind),
        )
        write_audio(writers.demand_path(demand, env), wav, writers.DEMAND_RATE)
        stats.add_noise("DEMAND", config["demand_seconds"])
        bar.update(1)
    bar.close()
    return envs
