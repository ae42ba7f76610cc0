"""Runs and model folders written in a former form still load, unchanged, and are upgraded.

The former forms: the vocoder's parts named in its settings (before they were built in the
yaml), and the SSL encoder built from ``ckpt: <model_dir>/ssl.ckpt`` (before it was built from
its architecture, the pretrainer loading ``ssl.ckpt``).
"""

import io
import shutil
from pathlib import Path

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_sslse.inference import FormerModelFolderError, SpectrumAwareEnhancer, default_model_dir
from speechbrain_sslse.lobes import CheckpointError, SSLEncoder
from speechbrain_sslse.packaging import upgrade_model_folder
from speechbrain_sslse.trust import load_model_hparams, load_pretrained_weights
from speechbrain_sslse.upgrade import upgrade_vocoder_yaml

DATA = Path(__file__).parent / "data"
FORMER = DATA / "former_model_hyperparams.yaml"  # a model folder in the former settings form
# The shipped folder's yaml before its SSL encoder was built from its architecture.
CKPT_FORM = DATA / "ckpt_form_model_hyperparams.yaml"


def folder_with(tmp_path, hyperparams, name="former"):
    """The shipped model's files with another ``hyperparams.yaml``."""
    folder = tmp_path / name
    folder.mkdir()
    for item in default_model_dir().iterdir():
        if item.name != "hyperparams.yaml":
            shutil.copyfile(item, folder / item.name)  # (links out of the folder are refused)
    (folder / "hyperparams.yaml").write_text(Path(hyperparams).read_text())
    return folder


@pytest.fixture
def former_folder(tmp_path):
    return folder_with(tmp_path, FORMER)


def enhanced(folder, mask_exponent=None):
    """Two noisy signals enhanced by ``folder`` (its mask exponent replaced when one is given)."""
    noisy = 0.1 * torch.randn(2, 24000, generator=torch.Generator().manual_seed(7))
    enhancer = SpectrumAwareEnhancer.from_hparams(source=folder, fast=False, precision="fp32")
    if mask_exponent is not None:
        enhancer.mods.vocoder.generator.mask_exponent = mask_exponent
    return enhancer.enhance_batch(noisy, torch.tensor([1.0, 0.7]))


def test_a_former_model_folder_is_refused_with_the_fix_then_upgraded_to_the_same_model(former_folder):
    with pytest.raises(FormerModelFolderError, match="upgrade_model_folder"):
        SpectrumAwareEnhancer.from_hparams(source=former_folder)
    assert upgrade_model_folder(former_folder) is True

    text = (former_folder / "hyperparams.yaml").read_text()
    assert "layer_combination: !new:speechbrain_sslse.lobes.LayerCombination" in text
    assert "    mask_exponent: 1.5" in text  # the former folder's generator setting kept
    assert "    architecture:\n        transformer:\n" in text and "\n    ckpt:" not in text
    assert upgrade_model_folder(former_folder) is False  # already in the current form
    # the same weights, built from the upgraded and the packaged yaml (at the former folder's
    # mask exponent, an inference setting of the yaml)
    assert torch.equal(enhanced(former_folder), enhanced(default_model_dir(), mask_exponent=1.5))


def test_a_folder_whose_encoder_opens_ssl_ckpt_still_loads_and_is_upgraded_to_the_same_model(tmp_path):
    folder = folder_with(tmp_path, CKPT_FORM)
    before = enhanced(folder)  # the former form loads as it is
    assert upgrade_model_folder(folder) is True
    text = (folder / "hyperparams.yaml").read_text()
    assert "\n    ckpt:" not in text and "        ssl_encoder: !ref <model_dir>/ssl.ckpt" in text
    assert "# Packaged by speechbrain-sslse 0.1.0 from /root/.cache/speechbrain-sslse/runs/ft_over1." in text
    assert upgrade_model_folder(folder) is False
    after = enhanced(folder)
    assert torch.equal(before, after) and torch.equal(after, enhanced(default_model_dir(), mask_exponent=1.5))


def test_loading_the_shipped_yaml_opens_no_checkpoint_the_pretrainer_loads_them(tmp_path):
    shipped = default_model_dir()
    assert "\n    ckpt:" not in (shipped / "hyperparams.yaml").read_text()
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copyfile(shipped / "hyperparams.yaml", folder / "hyperparams.yaml")  # and nothing else
    hparams = load_model_hparams(folder / "hyperparams.yaml", {"model_dir": str(folder)})
    encoder, vocoder = hparams["ssl_encoder"], hparams["vocoder"]
    assert encoder.name == "tera_local" and (encoder.num_layers, encoder.hidden_size) == (4, 192)
    assert list(hparams["pretrainer"].loadables) == ["ssl_encoder", "vocoder"]  # the encoder's first
    with pytest.raises(FileNotFoundError, match=r"ssl\.ckpt: listed by the pretrainer for 'ssl_encoder'"):
        load_pretrained_weights(hparams["pretrainer"], folder)
    state = torch.load(shipped / "vocoder.ckpt", weights_only=True)
    with pytest.raises(CheckpointError, match="weights of this SSL encoder .* are not loaded yet"):
        vocoder.load_state_dict(state)  # the random encoder is never taken for the trained one
    shutil.copyfile(shipped / "ssl.ckpt", folder / "ssl.ckpt")
    shutil.copyfile(shipped / "vocoder.ckpt", folder / "vocoder.ckpt")
    load_pretrained_weights(hparams["pretrainer"], folder)
    loaded = vocoder.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in state.items())  # the fingerprint too
    reference = SSLEncoder("tera_local", ckpt=shipped / "ssl.ckpt").upstream.state_dict()
    upstream = encoder.upstream.state_dict()
    assert upstream.keys() == reference.keys()
    random_buffer = "transformer.extracter._pseudo_wavs"  # s3prl's random probe input, built anew each time
    assert all(torch.equal(upstream[key], reference[key]) for key in reference if key != random_buffer)


def test_a_former_run_yaml_builds_the_same_modules(tmp_path):
    folder = default_model_dir()
    # the training run's hyperparams.yaml of the model shipped before the parts were built in the yaml
    text = upgrade_vocoder_yaml((DATA / "former_run_hyperparams.yaml").read_text())
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
