"""The fast inference path: the eager path's output in fp32, close to it in bf16; enhancer and CLI."""

import sys
import warnings
from pathlib import Path

import pytest
import torch
from speechbrain.lobes.models.HifiGAN import HifiganGenerator

from speechbrain_sslse.audio import read_audio, write_audio
from speechbrain_sslse.cli import enhance_main
from speechbrain_sslse.fast import (
    FastHifiganGenerator,
    FastVocoder,
    default_precision,
    native_cpu_bf16,
    resolve_precision,
    sdpa_attention,
)
from speechbrain_sslse.inference import SpectrumAwareEnhancer
from speechbrain_sslse.lobes import SSLEncoder, spectrum_aware_vocoder
from speechbrain_sslse.lobes.hifigan import HIFIGAN_PRESETS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def snr_db(reference, estimate):
    return float(10 * torch.log10(reference.pow(2).sum() / (estimate - reference).pow(2).sum()))


@pytest.fixture(scope="module")
def paper_vocoder():
    """The paper-size vocoder (TERA-base-sized encoder, cross attention d=256, V1 at hop 160)."""
    from common import paper_vocoder

    return paper_vocoder().eval()


def test_fp32_fast_path_equals_the_eager_reference_at_paper_size(paper_vocoder):
    noisy = 0.1 * torch.randn(1, 8000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # the reference: weight norm in place, plain eager fp32
        reference = paper_vocoder(noisy)
    fast = FastVocoder(paper_vocoder, precision="fp32")
    got = fast(noisy)
    assert got.shape == reference.shape == (1, 8000) and got.dtype == torch.float32
    assert float((got - reference).abs().max()) <= 1e-3
    assert snr_db(reference, got) > 80  # the same computation, up to float rounding
    if native_cpu_bf16():
        assert snr_db(reference, FastVocoder(paper_vocoder, precision="bf16")(noisy)) > 30


@pytest.mark.parametrize("preset", ["v1", "v3"])
def test_fast_vocoder_matches_the_eager_vocoder_on_padded_batches(tiny_tera_ckpt, preset):
    torch.manual_seed(0)
    vocoder = spectrum_aware_vocoder(
        SSLEncoder("tera", ckpt=tiny_tera_ckpt),
        d_model=32,
        fusion_options={"num_heads": 2, "ffn_dim": 64},
        generator={"preset": preset, "upsample_initial_channel": 32},
    ).eval()
    noisy = 0.1 * torch.randn(3, 12000, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([1.0, 0.5, 0.8])
    with torch.no_grad():
        expected = vocoder(noisy, lengths)
    got = FastVocoder(vocoder, precision="fp32")(noisy, lengths)
    assert float((got - expected).abs().max()) <= 1e-5 * max(1.0, float(expected.abs().max()))
    assert torch.all(got[1, 6000:] == 0) and torch.all(got[2, 9600:] == 0)
    bf16 = FastVocoder(vocoder, precision="bf16")(noisy, lengths)
    assert bf16.dtype == torch.float32 and snr_db(expected, bf16) > 25


def test_fast_generator_folds_weight_norm_and_the_mrf_average():
    torch.manual_seed(0)
    generator = HifiganGenerator(in_channels=64, out_channels=1, **{**HIFIGAN_PRESETS["v1"],
                                 "upsample_initial_channel": 64}).eval()  # fmt: skip
    features = torch.randn(2, 21, 64)
    with torch.no_grad():
        expected = generator(features.transpose(1, 2))[:, 0]
    fast = FastHifiganGenerator(generator)  # built with weight norm still in place
    generator.remove_weight_norm()
    folded = FastHifiganGenerator(generator)
    for got in (fast(features), folded(features)):
        assert got.shape == expected.shape == (2, 21 * 160)  # exactly one hop per frame
        assert float((got - expected).abs().max()) <= 1e-6
    with pytest.raises(ValueError, match="bfloat16"):
        FastHifiganGenerator(generator, dtype=torch.float16)


def test_fallback_without_onednn_runs_the_folded_eager_generator(tiny_tera_ckpt, monkeypatch):
    """The path CUDA devices and builds without oneDNN take: the vocoder's own generator under autocast."""
    torch.manual_seed(0)
    vocoder = spectrum_aware_vocoder(
        SSLEncoder("tera", ckpt=tiny_tera_ckpt), d_model=32, fusion_options={"num_heads": 2, "ffn_dim": 64},
        generator={"preset": "v2", "upsample_initial_channel": 32},
    ).eval()  # fmt: skip
    noisy = 0.1 * torch.randn(2, 8000, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = vocoder(noisy)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    fast = FastVocoder(vocoder, precision="fp32")
    assert fast.generator is None
    assert float((fast(noisy) - expected).abs().max()) <= 1e-5
    assert snr_db(expected, FastVocoder(vocoder, precision="bf16")(noisy)) > 25
    with torch.no_grad():  # the vocoder is unchanged
        assert torch.equal(vocoder(noisy), expected)


@pytest.mark.parametrize("found", ["2.10.0", "3.0.1+cpu", "2.8.0", "nightly"])
def test_an_untested_torch_falls_back_to_the_eager_generator(tiny_tera_ckpt, monkeypatch, found):
    """The packed generator calls private oneDNN operators: on another torch, the folded eager one runs,
    after one warning naming the torch found and the tested one."""
    import speechbrain_sslse.fast.version as version

    torch.manual_seed(0)
    vocoder = spectrum_aware_vocoder(
        SSLEncoder("tera", ckpt=tiny_tera_ckpt), d_model=32, fusion_options={"num_heads": 2, "ffn_dim": 64},
        generator={"preset": "v2", "upsample_initial_channel": 32},
    ).eval()  # fmt: skip
    vocoder.remove_weight_norm()  # as the enhancer does: the folded eager generator
    noisy = 0.1 * torch.randn(2, 8000, generator=torch.Generator().manual_seed(5))
    lengths = torch.tensor([1.0, 0.7])
    assert version.tested_torch()  # this venv's torch is the tested one (constraints.txt)
    packed = FastVocoder(vocoder, precision="fp32")
    if torch.backends.mkldnn.is_available():
        assert isinstance(packed.generator, FastHifiganGenerator)
    monkeypatch.setattr(version, "TORCH_VERSION", found)
    with pytest.warns(version.UntestedTorchWarning) as record:
        fast = FastVocoder(vocoder, precision="fp32")
    assert len(record) == 1
    message = str(record[0].message)
    assert f"torch {found} found" in message and "tested for torch 2.9.x" in message
    assert "eager (folded weight-norm) generator" in message
    assert fast.generator is None
    got = fast(noisy, lengths)
    with torch.no_grad():
        eager = vocoder(noisy, lengths)
    assert float((got - eager).abs().max()) <= 1e-5  # the eager vocoder (up to SDPA's rounding)
    monkeypatch.setattr(version, "TORCH_VERSION", torch.__version__)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", version.UntestedTorchWarning)  # a tested torch: no warning
        without_onednn = FastVocoder(vocoder, precision="fp32")  # the eager-generator fallback
    assert without_onednn.generator is None
    assert torch.equal(got, without_onednn(noisy, lengths))  # exactly that path

    encoder = SSLEncoder("tera", ckpt=tiny_tera_ckpt)
    x = torch.randn(2, 16000, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        plain, _ = encoder(x)
        with sdpa_attention(encoder):
            patched = [m for m in encoder.modules() if "forward" in vars(m)]
            fast, _ = encoder(x)
    assert patched, "no TERA self-attention layer was switched to SDPA"
    assert not [m for m in encoder.modules() if "forward" in vars(m)]
    assert float((fast - plain).abs().max()) < 1e-4


def test_precision_names_are_checked():
    assert resolve_precision("auto", "cpu") == default_precision("cpu")
    assert default_precision("cpu") == ("bf16" if native_cpu_bf16() else "fp32")
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        resolve_precision("int4")
    with pytest.raises(ValueError, match="fp16 is for CUDA"):
        resolve_precision("fp16", "cpu")


def test_enhancer_takes_the_fast_path_by_default_and_can_go_back_to_eager(tiny_model_dir):
    default = SpectrumAwareEnhancer.from_hparams(source=tiny_model_dir)
    assert default.fast and default.precision == default_precision("cpu")
    assert isinstance(default._inference_model, FastVocoder)
    eager = SpectrumAwareEnhancer.from_hparams(source=tiny_model_dir, fast=False)
    assert not eager.fast and eager._inference_model is eager.mods.vocoder
    assert set(default.state_dict()) == set(eager.state_dict())  # nothing duplicated
    fp32 = SpectrumAwareEnhancer.from_hparams(source=tiny_model_dir, precision="fp32")
    wav = 0.1 * torch.randn(40000, generator=torch.Generator().manual_seed(3))
    reference = eager.enhance_waveform(wav)
    assert float((fp32.enhance_waveform(wav) - reference).abs().max()) <= 1e-5
    assert snr_db(reference, default.enhance_waveform(wav)) > 20
    with pytest.raises(ValueError, match="needs the fast path"):
        eager.configure_inference(fast=False, precision="bf16")
    assert eager.configure_inference(fast=True, precision="fp32") is eager
    assert isinstance(eager._inference_model, FastVocoder)


def test_cli_flags_choose_the_inference_path(tiny_model_dir, tmp_path, real_speech, capsys):
    write_audio(tmp_path / "a.wav", read_audio(real_speech[0])[:24000])
    threads = torch.get_num_threads()
    outputs = {}
    try:
        for name, flags in {
            "eager": ["--eager"],
            "fp32": ["--precision", "fp32", "--threads", "1"],
            "default": [],
        }.items():
            out = tmp_path / name
            argv = [str(tmp_path / "a.wav"), "-o", str(out), "--model", str(tiny_model_dir), *flags]
            assert enhance_main(argv) == 0
            outputs[name] = read_audio(out / "a.wav")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert float((outputs["fp32"] - outputs["eager"]).abs().max()) <= 1e-4  # 16-bit files
    assert snr_db(outputs["eager"], outputs["default"]) > 20
    for bad in (
        ["--eager", "--precision", "bf16"],
        ["--threads", "0"],
        ["--precision", "fp16", "--device", "cpu"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            enhance_main([str(tmp_path / "a.wav"), "-o", str(tmp_path / "x"), *bad])
        assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "needs the fast path" in err and "fp16 is for CUDA" in err
