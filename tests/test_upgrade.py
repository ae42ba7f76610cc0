"""Runs and model folders written before the vocoder's parts were built in the yaml still load, unchanged."""

import io
import shutil
from pathlib import Path

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_sslse.inference import FormerModelFolderError, SpectrumAwareEnhancer, default_model_dir
from speechbrain_sslse.packaging import upgrade_model_folder
from speechbrain_sslse.upgrade import upgrade_vocoder_yaml

FORMER = Path(__file__).parent / "data" / "former_model_hyperparams.yaml"  # a model folder in the former form


@pytest.fixture
def former_folder(tmp_path):
    folder = tmp_path / "former"
    folder.mkdir()
    for item in default_model_dir().iterdir():
        if item.name != "hyperparams.yaml":
            shutil.copyfile(item, folder / item.name)  # (links out of the folder are refused)
    (folder / "hyperparams.yaml").write_text(FORMER.read_text())
    return folder


def test_a_former_model_folder_is_refused_with_the_fix_then_upgraded_to_the_same_model(former_folder):
    with pytest.raises(FormerModelFolderError, match="upgrade_model_folder"):
        SpectrumAwareEnhancer.from_hparams(source=former_folder)
    assert upgrade_model_folder(former_folder) is True

    text = (former_folder / "hyperparams.yaml").read_text()
    assert "layer_combination: !new:speechbrain_sslse.lobes.LayerCombination" in text
    assert "    mask_exponent: 1.5" in text  # the former folder's generator setting kept
    assert upgrade_model_folder(former_folder) is False  # already in the current form
    noisy = 0.1 * torch.randn(2, 24000, generator=torch.Generator().manual_seed(7))
    lengths = torch.tensor([1.0, 0.7])
    outputs = [
        SpectrumAwareEnhancer.from_hparams(source=folder, fast=False, precision="fp32").enhance_batch(
            noisy, lengths
        )
        for folder in (former_folder, default_model_dir())
    ]
    assert torch.equal(*outputs)  # the same weights, built from the upgraded and the packaged yaml


def test_a_former_run_yaml_builds_the_same_modules(tmp_path):
    folder = default_model_dir()
    text = upgrade_vocoder_yaml((folder / "train_hyperparams.yaml").read_text())
    hparams = load_hyperpyyaml(
        io.StringIO(text), {"ssl_ckpt": str(folder / "ssl.ckpt"), "output_folder": str(tmp_path)}
    )
    vocoder = hparams["generator"]
    assert (
        hparams["modules"]["generator"] is vocoder
        and hparams["checkpointer"].recoverables["generator"] is vocoder
    )
    state = torch.load(folder / "vocoder.ckpt", weights_only=True)
    assert vocoder.state_dict().keys() == state.keys()  # same module names: its checkpoints load
    vocoder.load_state_dict(state)
    assert upgrade_vocoder_yaml(text) is None
