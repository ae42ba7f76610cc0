"""Recipe tests as data: the rows of ``tests/recipes/<Dataset>.csv``, in SpeechBrain's format.

Each row names a recipe script, one of its hparams files, its data preparation and README,
the flags of a debug run (tiny sizes, the embedded mini corpus, SpeechBrain's ``--debug``
flags) and the files that run must write (``file_exists=[...]`` in ``test_debug_checks``),
as in SpeechBrain's own ``tests/recipes/*.csv``. SpeechBrain's runner
(``speechbrain.utils.recipe_tests.run_recipe_tests``, in SpeechBrain's repository) runs them
from the repository root as ``python SCRIPT HPARAMS FLAGS --device=cpu
--output_folder=tests/tmp/<Dataset>_row_<n>``. The DNS, TIMIT and Valentini-DEMAND rows generate
the tiny mini corpus in ``tests/tmp/mini_corpus`` when it is missing; the LibriSpeech rows read its
speech, so they run after a DNS row (as in the runner's sorted order).

Here every row runs in-process (its script's ``main(argv)``, as the other recipe tests do),
with ``tests/tmp/mini_corpus`` replaced by the session's tiny mini corpus and the other
``tests/tmp/`` paths by a session temporary folder.

Every row runs: the DNS rows are the debug runs of every hparams file of the DNS recipe
(the proposed row with SpeechBrain's plain ``--debug``: checkpoints in a temporary folder,
the model packaged from there); the other recipes' rows take about half a minute together.
"""

import csv
import re
import shlex
from pathlib import Path

import pytest
from recipe_helpers import DNS_RECIPE, load_recipe_module

ROOT = Path(__file__).resolve().parents[1]
RECIPE_ROWS = ROOT / "tests" / "recipes"
COLUMNS = [
    "Task",
    "Dataset",
    "Script_file",
    "Hparam_file",
    "Data_prep_file",
    "Readme_file",
    "Result_url",
    "HF_repo",
    "test_debug_flags",
    "test_debug_checks",
    "performance",
]
DEBUG_FLAGS = ["--debug", "--debug_batches=2", "--debug_epochs=2"]
NO_ROW = set()  # hparams files that are not a training run of their script (templates), if any


def read_rows(folder=RECIPE_ROWS):
    """The rows of every ``<Dataset>.csv`` in ``folder``, keyed by SpeechBrain's recipe id.

    Arguments
    ---------
    folder : Path
        The folder of the recipe CSV files.

    Returns
    -------
    dict
        ``"<Dataset>_row_<nn>"`` (``nn``: the CSV line number, as SpeechBrain numbers them)
        -> the row as a dict of :data:`COLUMNS`.
    """
    rows = {}
    for path in sorted(folder.glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, skipinitialspace=True)
            assert reader.fieldnames == COLUMNS, f"{path.name}: columns {reader.fieldnames}"
            for index, row in enumerate(reader):
                rows[f"{path.stem}_row_{index + 2:02d}"] = {k: (v or "").strip() for k, v in row.items()}
    return rows


def row_argv(row, output_folder, mini_corpus, tmp_root):
    """The command line (after the script) of a row, with its ``tests/tmp/`` paths made local.

    Arguments
    ---------
    row : dict
        A row of :func:`read_rows`.
    output_folder : Path
        The run's ``--output_folder`` (appended unless the row gives one, as SpeechBrain does).
    mini_corpus : Path
        Replaces ``tests/tmp/mini_corpus`` (the session's tiny mini corpus).
    tmp_root : Path
        Replaces the other ``tests/tmp/`` paths.

    Returns
    -------
    list of str
        ``[HPARAMS_FILE, *flags, "--device=cpu"(, "--output_folder=...")]``.
    """

    def local(token):
        """``token`` with its ``tests/tmp/`` paths replaced."""
        token = token.replace("tests/tmp/mini_corpus", str(mini_corpus))
        return token.replace("tests/tmp/", f"{tmp_root}/")

    flags = [local(token) for token in shlex.split(row["test_debug_flags"])]
    argv = [str(ROOT / row["Hparam_file"]), *flags, "--device=cpu"]
    if not any(flag.startswith("--output_folder") for flag in flags):
        argv.append(f"--output_folder={output_folder}")
    return argv


def missing_files(check_str, output_folder):
    """The files of ``file_exists=[...]`` in ``check_str`` that ``output_folder`` lacks.

    Arguments
    ---------
    check_str : str
        A row's ``test_debug_checks``.
    output_folder : Path
        The run's output folder.

    Returns
    -------
    list of str

    Example
    -------
    >>> import tempfile
    >>> missing_files("file_exists=[log.txt,env.log]", Path(tempfile.mkdtemp()))
    ['log.txt', 'env.log']
    """
    match = re.search(r"file_exists=\[(.*?)\]", check_str)
    if match is None:
        return []
    names = [name.strip() for name in match.group(1).split(",") if name.strip()]
    return [name for name in names if not (Path(output_folder) / name).exists()]


ROWS = read_rows()


def _script_module(script):
    """The recipe script imported as a module (the DNS one under the name the other tests use).

    Arguments
    ---------
    script : str
        A row's ``Script_file`` (relative to the repository root).

    Returns
    -------
    module
        With the script's ``main(argv)``.
    """
    path = ROOT / script
    if path == DNS_RECIPE / "train.py":
        return load_recipe_module()
    name = "recipe_row_" + re.sub(r"\W", "_", str(Path(script).with_suffix("")))
    return load_recipe_module(name, path)


@pytest.fixture(scope="module")
def rows_tmp(tmp_path_factory):
    """What the rows share under ``tests/tmp/`` (the DNS manifests, prepared once)."""
    return tmp_path_factory.mktemp("tests_tmp")


def test_every_recipe_script_and_hparams_file_has_a_row():
    """Every hparams file has a row whose files exist and whose flags are SpeechBrain's debug ones."""
    listed = {row["Hparam_file"] for row in ROWS.values()}
    hparams = {str(p.relative_to(ROOT)) for p in (ROOT / "recipes").glob("*/*/hparams/*.yaml")}
    assert hparams  # the recipes are where the rows say
    assert hparams - NO_ROW == listed, (
        "add a row to tests/recipes/<Dataset>.csv (or list a template in NO_ROW)"
    )
    for recipe_id, row in ROWS.items():
        for column in ("Script_file", "Hparam_file", "Data_prep_file", "Readme_file"):
            assert not row[column] or (ROOT / row[column]).is_file(), (recipe_id, column, row[column])
        assert Path(row["Hparam_file"]).parent.parent == Path(row["Script_file"]).parent, recipe_id
        flags = shlex.split(row["test_debug_flags"])
        assert set(DEBUG_FLAGS) <= set(flags), f"{recipe_id}: not a run with SpeechBrain's debug flags"
        assert missing_files(row["test_debug_checks"], ROOT / "no such folder"), recipe_id  # it checks files


@pytest.mark.parametrize("recipe_id", sorted(ROWS))
def test_recipe_row(recipe_id, mini_corpus, rows_tmp, tmp_path):
    """Runs one row and checks its ``file_exists=[...]`` (and, for DNS, what the run did)."""
    row = ROWS[recipe_id]
    out = tmp_path / recipe_id
    result = _script_module(row["Script_file"]).main(row_argv(row, out, mini_corpus, rows_tmp))
    assert missing_files(row["test_debug_checks"], out) == []
    if row["Dataset"] == "DNS":
        _check_dns_run(result, out, row)


def _check_dns_run(brain, out, row):
    """What a DNS debug run must have done beyond its files: two steps, one full checkpoint, a sample.

    Arguments
    ---------
    brain : EnhancementBrain
        What the recipe's ``main`` returned.
    out : Path
        The run's output folder.
    row : dict
        The row it ran.
    """
    assert brain.debug and brain.optimizer_step == 2
    persistent = "--debug_persistently" in shlex.split(row["test_debug_flags"])
    checkpoints_dir = Path(brain.checkpointer.checkpoints_dir)
    assert (checkpoints_dir == out / "save") == persistent
    checkpoints = sorted(checkpoints_dir.glob("CKPT+*"))
    assert len(checkpoints) == 1
    assert {"generator.ckpt", "discriminator.ckpt", "optimizer_g.ckpt", "scheduler_d.ckpt"} <= {
        p.name for p in checkpoints[0].iterdir()
    }
    if (
        not persistent
    ):  # SpeechBrain's plain --debug: nothing in save/, the model packaged from the temporary folder
        assert not list((out / "save").glob("CKPT+*"))
        assert "Debug mode (--debug without --debug_persistently)" in (out / "log.txt").read_text()
        assert f"Packaged checkpoint: `{checkpoints[0].name}`" in (out / "model" / "README.md").read_text()
    assert len(list((out / "samples" / "epoch_1").glob("*_enhanced.wav"))) == 1
    log = (out / "train_log.txt").read_text()
    assert "valid stoi" in log and "valid pesq" in log
    with open(out / "layer_weights.csv", newline="") as f:
        weights = list(csv.DictReader(f))
    assert len(weights) == 1 and len(weights[0]) == 1 + brain.hparams.generator.encoder.num_layers
