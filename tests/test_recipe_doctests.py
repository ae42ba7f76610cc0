"""The doctests of every recipe script (pytest's ``testpaths`` collects the package's only).

Each recipe folder's modules import their siblings by name (``train.py`` puts its folder on
``sys.path``, as SpeechBrain recipes do), and two recipes have a ``train.py``: every file is
imported under a name of its own, its folder first on ``sys.path``, and its examples are run
with the flags of the package's doctests.
"""

import doctest
import re
import sys
from pathlib import Path

import pytest
from recipe_helpers import load_recipe_module

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "recipes").glob("*/*/*.py"))
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def _examples(path):
    """The doctests of ``path`` imported as a module of its own."""
    name = "recipe_doctest_" + re.sub(r"\W", "_", str(path.relative_to(ROOT).with_suffix("")))
    sys.path.insert(0, str(path.parent))
    try:
        module = load_recipe_module(name, path)
    finally:
        sys.path.remove(str(path.parent))
    return [t for t in doctest.DocTestFinder().find(module, name) if t.examples]


def test_the_recipes_have_doctests():
    assert len(SCRIPTS) > 20
    assert sum(len(_examples(p)) for p in SCRIPTS if p.parent.name == "enhancement") >= 10


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT / "recipes")))
def test_recipe_doctests(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in _examples(path):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {path.name} failed"
