"""Prepare scripts on dataset folders reached through symbolic links or given as relative paths.

The usual way to point a recipe at a shared dataset is a link (the whole root, one of its
folders, a folder deeper inside, or every file, as dataset stores with content-addressed
blobs do). Each prepare script must find the same files, with the same ids and speakers,
as on a plain copy.
"""

import csv
import os
import shutil
import sys
from pathlib import Path

import pytest
from recipe_helpers import load_recipe_module

ROOT = Path(__file__).resolve().parents[1]


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _load(name, folder):
    sys.path.insert(0, str(folder))
    return __import__(name)


@pytest.fixture(scope="module")
def dns_prepare():
    load_recipe_module()
    return sys.modules["dns_prepare"]


def _manifest(folder):
    splits = ("train", "valid")
    return {split: sorted((r["ID"], r["spk_id"]) for r in _rows(folder / f"{split}.csv")) for split in splits}


def test_dns_prepare_follows_links_and_relative_paths(dns_prepare, mini_corpus, tmp_path, monkeypatch):
    store = tmp_path / "store" / "DNS"
    shutil.copytree(mini_corpus / "DNS", store)
    dns_prepare.prepare_dns(store, tmp_path / "m_plain", valid_fraction=0.2)
    plain = _manifest(tmp_path / "m_plain")

    # A folder deep inside the tree is a link (rglob does not enter it).
    nested = tmp_path / "nested"
    shutil.copytree(store, nested)
    speaker_dir = sorted(p for p in (nested / "clean").iterdir() if p.is_dir())[0]
    shutil.rmtree(speaker_dir)
    os.symlink(store / "clean" / speaker_dir.name, speaker_dir)
    # The root is a link, its clean folder is spelt "Clean", and it is given relative to the current folder.
    shared = tmp_path / "shared"
    shared.mkdir()
    for part in store.iterdir():
        os.symlink(part, shared / ("Clean" if part.name == "clean" else part.name))
    os.symlink(shared, tmp_path / "dns_link")
    monkeypatch.chdir(tmp_path)
    for name, folder in (("nested", nested), ("relative_link", Path("dns_link"))):
        report = dns_prepare.prepare_dns(folder, tmp_path / f"m_{name}", valid_fraction=0.2)
        assert _manifest(tmp_path / f"m_{name}") == plain, name
        assert report["counts"]["noises"] == len(_rows(tmp_path / "m_plain" / "noise.csv"))
        for row in _rows(tmp_path / f"m_{name}" / "train.csv"):
            assert Path(row["wav"]).is_absolute() and Path(row["wav"]).is_file()


def test_timit_prepare_follows_links_and_relative_paths(mini_corpus, tmp_path, monkeypatch):
    timit_prepare = _load("timit_prepare", ROOT / "recipes" / "TIMIT" / "probing")
    plain = timit_prepare.prepare_timit(mini_corpus / "TIMIT", tmp_path / "m_plain")
    tree = tmp_path / "timit"
    shutil.copytree(mini_corpus / "TIMIT", tree)
    dialect = sorted(p for p in (tree / "TRAIN").iterdir() if p.is_dir())[0]
    shutil.rmtree(dialect)
    os.symlink(mini_corpus / "TIMIT" / "TRAIN" / dialect.name, dialect)  # a linked dialect folder
    os.symlink(tree, tmp_path / "timit_link")
    monkeypatch.chdir(tmp_path)
    linked = timit_prepare.prepare_timit("timit_link", tmp_path / "m_linked")
    for task, path in plain.items():
        ids = lambda p: sorted((r["ID"], r["speaker"], r["label"]) for r in _rows(p))  # noqa: E731
        assert ids(linked[task]) == ids(path), task


def test_tera_prepare_keeps_the_names_of_linked_files(real_speech, tmp_path, monkeypatch):
    prepare = _load("prepare", ROOT / "recipes" / "LibriSpeech" / "tera_pretraining")
    files = real_speech[:40]
    # Content-addressed store: the files are links to blobs named by number, in two folders.
    blobs, tree = tmp_path / "blobs", tmp_path / "speech"
    blobs.mkdir()
    for k, f in enumerate(files):
        shutil.copy(f, blobs / f"{k:04d}")
        (tree / ("a" if k % 2 else "b")).mkdir(parents=True, exist_ok=True)
        os.symlink(blobs / f"{k:04d}", tree / ("a" if k % 2 else "b") / f.name)
    # The same name twice, in two folders.
    os.symlink(blobs / "0000", tree / "a" / files[0].name)
    monkeypatch.chdir(tmp_path)
    out = prepare.prepare_tera_pretraining("speech", tmp_path / "m", num_test_speakers=2, min_duration=0.5)
    rows = _rows(out["train"]) + _rows(out["heldout"])
    assert len(rows) == len(files) + 1
    assert len({r["ID"] for r in rows}) == len(rows)  # every id once
    speakers = {f.name.split("-")[0] for f in files}
    assert {r["spk_id"] for r in rows} == speakers  # from the names in the tree, not the blobs'
    assert all(Path(r["wav"]).is_absolute() and Path(r["wav"]).is_file() for r in rows)
