"""Helpers shared by the tests that run the DNS enhancement recipe in-process."""

import importlib
import importlib.util
import sys
from pathlib import Path

from yaml_keys import yaml_keys

DNS_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "DNS" / "enhancement"


def load_recipe_module(name="dns_enhancement_train", path=DNS_RECIPE / "train.py"):
    """Imports a recipe script as a module (once per test session)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def recipe_sibling(name):
    """A module beside the DNS recipe's ``train.py`` (``run_setup``, ``validation``, ``data_pipeline``).

    Imported as ``train.py`` imports it (by its name, from the recipe folder it puts on
    ``sys.path``): the module object ``train.py`` looks its names up in, the one to monkeypatch.
    """
    load_recipe_module()
    return importlib.import_module(name)


def setting_overrides(hparams_file, setting, *args, run_opts=None):
    """What ``train.py`` makes of ``HPARAMS $(grep -v '^#' hparams/overrides/SETTING.args) ARGS``.

    ``setting`` "quick": no override file (the yaml's own values). The keys SpeechBrain takes as
    run options (``ckpt_interval_minutes``) go to ``run_opts`` (a dict, updated) when given.
    """
    import speechbrain as sb

    run_setup = recipe_sibling("run_setup")
    override_file = run_setup.OVERRIDES_FOLDER / f"{setting}.args"
    files = [] if setting == "quick" else run_setup.override_args(override_file)
    _, options, overrides = sb.parse_arguments([str(hparams_file), *files, *args])
    if run_opts is not None:
        run_opts.update(options)
    return run_setup.parse_overrides(overrides)


def tiny_overrides(hparams_file, output_folder, manifest_folder, data_folder, ssl_ckpt, **extra):
    """Command line of a debug run (tiny sizes, two steps) of ``hparams_file``."""
    keys = set(yaml_keys(hparams_file))
    args = {
        "output_folder": output_folder,
        "manifest_folder": manifest_folder,
        "data_folder": data_folder,
        "ssl_ckpt": ssl_ckpt,
        "number_of_epochs": 1,
        "steps_per_epoch": 2,
        "batch_size": 2,
        "segment_seconds": 0.5,
        "num_valid_mixtures": 2,
        "valid_segment_seconds": 1.0,
        "valid_batch_size": 2,
        "num_samples_to_write": 1,
        "d_model": 16,
        "discriminator_width": 0.0625,
        "discriminator_channels": 4,
        "generator_preset": "v3",
        "generator_channels": 16,
        "ckpt_interval_minutes": 0,
        "adversarial_start_step": 1,  # step 1: mel loss alone; step 2: adversarial
    }
    if "num_heads" in keys:
        args.update(num_heads=2, ffn_dim=32)
    if "head_channels" in keys:  # the mask-head family (DNSMOS validation is tested on its own)
        args.update(head_channels=16, head_blocks=2, head_dilations="[1,2]", valid_dnsmos=False)
    args = {k: v for k, v in args.items() if k in keys or k in ("output_folder", "data_folder")}
    args.update(extra)
    return [str(hparams_file)] + [f"--{k}={v}" for k, v in args.items()] + ["--noprogressbar"]
