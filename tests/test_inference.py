"""Packaging a trained run, the pretrained interface, chunked inference and the CLI."""

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from speechbrain.inference.interfaces import foreign_class

from speechbrain_sslse.audio import read_audio, write_audio
from speechbrain_sslse.chunking import overlap_add, plan_chunks
from speechbrain_sslse.cli import enhance_main, package_cli
from speechbrain_sslse.inference import ModelFolderError, SpectrumAwareEnhancer
from speechbrain_sslse.packaging import PackagingError, package_model


@pytest.fixture(scope="module")
def trained_run(tiny_trained_run):
    return tiny_trained_run


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return tiny_model_dir


@pytest.fixture(scope="module")
def enhancer(model_dir):
    # fp32 so that samples compare with the Brain's forward; the bf16 default is tested in test_fast_inference
    return SpectrumAwareEnhancer.from_hparams(source=model_dir, precision="fp32")


def test_package_writes_a_model_folder_with_a_model_card(model_dir):
    names = {p.name for p in model_dir.iterdir()}
    assert {"hyperparams.yaml", "vocoder.ckpt", "ssl.ckpt", "custom_interface.py", "README.md"} <= names
    card = (model_dir / "README.md").read_text()
    assert "Training data" in card and "training utterances" in card
    assert "validation STOI" in card and "| epoch | STOI | PESQ |" in card
    state = torch.load(model_dir / "vocoder.ckpt", weights_only=True)
    assert not [k for k in state if k.startswith("encoder.upstream.")]
    assert not [p for p in model_dir.parent.iterdir() if p.name.startswith(".")]  # no staging left
    # the SSL encoder is built from its architecture (read from the run's checkpoint), its weights
    # loaded by the pretrainer, the encoder's before the vocoder's
    hparams = (model_dir / "hyperparams.yaml").read_text()
    assert "    architecture:\n        transformer:\n            input_dim: -1\n" in hparams
    assert "\n    ckpt:" not in hparams
    loadables = "    loadables:\n        ssl_encoder: !ref <ssl_encoder>\n        vocoder: !ref <vocoder>\n"
    assert loadables in hparams


def test_package_refuses_what_it_cannot_package(trained_run, tmp_path, model_dir):
    run, _ = trained_run
    with pytest.raises(PackagingError, match="exists"):
        package_model(run, model_dir)
    with pytest.raises(PackagingError, match="no hyperparams.yaml"):
        package_model(tmp_path, tmp_path / "m")
    assert package_cli([str(tmp_path), "-o", str(tmp_path / "m")]) == 2


def test_enhancer_gives_the_same_samples_as_the_trained_model(trained_run, model_dir, enhancer):
    _, brain = trained_run
    generator = copy.deepcopy(brain.modules.generator).eval()
    # Packaging may scale the output layer (calibrate_output_level): the packaged state is the
    # trained one with conv_post's magnitude and bias scaled by one factor (its weight-norm
    # direction unchanged), and nothing else changed.
    trained = generator.state_dict()
    packaged = torch.load(Path(model_dir) / "vocoder.ckpt", map_location="cpu", weights_only=True)
    assert packaged.keys() == trained.keys()
    ratios = set()
    for key, value in trained.items():
        if key.startswith("generator.conv_post.") and value.is_floating_point() and value.abs().max() > 0:
            ratios.add(round(float((packaged[key] / value)[value != 0].mean()), 5))
        else:
            assert torch.equal(packaged[key], value), key
    assert len(ratios - {1.0}) <= 1, ratios
    generator.load_state_dict(packaged)
    noisy = torch.randn(2, 12000, generator=torch.Generator().manual_seed(0)) * 0.1
    lengths = torch.tensor([1.0, 0.75])
    with torch.no_grad():
        expected = generator(noisy, lengths)
    got = enhancer.enhance_batch(noisy, lengths)
    assert got.shape == (2, 12000)
    assert torch.allclose(got, expected, atol=1e-5), float((got - expected).abs().max())
    assert torch.all(got[1, 9000:] == 0)
    try:  # the plain eager path gives the same samples too
        eager = enhancer.configure_inference(fast=False).enhance_batch(noisy, lengths)
    finally:
        enhancer.configure_inference(fast=True, precision="fp32")
    assert torch.allclose(eager, expected, atol=1e-5), float((eager - expected).abs().max())


def test_folder_loads_with_speechbrains_foreign_class(model_dir, enhancer):
    loaded = foreign_class(
        source=str(model_dir),
        pymodule_file="custom_interface.py",
        classname="SpectrumAwareEnhancer",
        overrides={"model_dir": str(model_dir)},
        precision="fp32",
    )
    x = torch.randn(1, 8000, generator=torch.Generator().manual_seed(1)) * 0.1
    assert torch.allclose(loaded.enhance_batch(x), enhancer.enhance_batch(x), atol=1e-6)


def test_overlap_add_is_exact_away_from_seams_for_a_local_model():
    torch.manual_seed(0)
    conv = torch.nn.Sequential(
        torch.nn.Conv1d(1, 4, 65, padding=32), torch.nn.Tanh(), torch.nn.Conv1d(4, 1, 65, padding=32)
    )

    def model(x, lens):
        return conv(x.unsqueeze(1))[:, 0]

    x = torch.randn(20000)
    with torch.no_grad():
        whole = model(x[None], None)[0]
        chunked = overlap_add(x, model, chunk=4000, overlap=800, context=200, batch_size=3)
    # receptive field 128 samples < the 200 samples discarded at each side of a seam
    assert torch.allclose(chunked[64:-64], whole[64:-64], atol=1e-5)
    assert plan_chunks(20000, 4000, 800)[-1] + 4000 >= 20000


def test_chunked_enhancement_matches_whole_file_away_from_seams(model_dir):
    """TERA normalises each chunk (CMVN) and attends over it: chunks equal the whole file only
    approximately. Stated tolerance: away from seams, the difference is at least 20 dB below
    the signal (measured here on 6 s of noisy speech in 2 s chunks)."""
    chunked = SpectrumAwareEnhancer.from_hparams(
        source=model_dir, overrides={"chunk_seconds": 2.0, "overlap_seconds": 0.5}
    )
    whole = SpectrumAwareEnhancer.from_hparams(source=model_dir, overrides={"chunk_seconds": 60.0})
    g = torch.Generator().manual_seed(2)
    t = torch.arange(96000) / 16000
    x = 0.1 * torch.sin(2 * np.pi * 220 * t) * (1 + torch.sin(2 * np.pi * 3 * t)) + 0.02 * torch.randn(
        96000, generator=g
    )
    a, b = chunked.enhance_waveform(x), whole.enhance_waveform(x)
    assert a.shape == b.shape == x.shape
    seams = [s for s in plan_chunks(96000, 32000, 8000)[1:]]
    keep = torch.ones(96000, dtype=torch.bool)
    for s in seams:
        keep[s : s + 8000] = False
    error_db = 10 * torch.log10(b[keep].pow(2).mean() / (a[keep] - b[keep]).pow(2).mean())
    assert error_db > 20, float(error_db)


def test_any_rate_and_channel_count_in_16k_mono_out(enhancer, tmp_path, real_speech):
    speech = read_audio(real_speech[0])[:32000]
    stereo = torch.stack([speech, 0.5 * speech])
    resampled = torch.from_numpy(
        np.interp(np.arange(88200) / 44100, np.arange(32000) / 16000, stereo[0].numpy())
    )
    write_audio(tmp_path / "in.wav", torch.stack([resampled, resampled]).float(), 44100)
    out = enhancer.enhance_file(tmp_path / "in.wav", output_filename=tmp_path / "out.wav")
    info = sf.info(tmp_path / "out.wav")
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, 32000)
    assert out.shape == (32000,) and torch.isfinite(out).all()


def test_enhance_file_old_keyword_names_warn_and_write_the_same_file(enhancer, tmp_path, real_speech):
    write_audio(tmp_path / "in.wav", read_audio(real_speech[0])[:16000])
    new = enhancer.enhance_file(filename=tmp_path / "in.wav", output_filename=tmp_path / "new.wav")
    with pytest.warns(
        DeprecationWarning, match="output_path=.* is deprecated.*use output_filename"
    ) as record:
        old = enhancer.enhance_file(tmp_path / "in.wav", output_path=tmp_path / "old.wav")
    assert record[0].filename == __file__  # the warning points at the caller
    with pytest.warns(DeprecationWarning, match="use filename"):
        enhancer.enhance_file(path=tmp_path / "in.wav")
    assert torch.equal(old, new)
    assert (tmp_path / "old.wav").read_bytes() == (tmp_path / "new.wav").read_bytes()
    with pytest.raises(TypeError, match="both 'output_filename' and its deprecated name 'output_path'"):
        enhancer.enhance_file(tmp_path / "in.wav", tmp_path / "a.wav", output_path=tmp_path / "b.wav")
    with pytest.raises(TypeError, match="unexpected keyword argument 'out'"):
        enhancer.enhance_file(tmp_path / "in.wav", out=tmp_path / "c.wav")
    assert not (tmp_path / "a.wav").exists() and not (tmp_path / "b.wav").exists()


def test_cli_enhances_folders_reports_bad_files_and_skips_done_ones(model_dir, tmp_path, real_speech, capsys):
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    write_audio(inputs / "a.wav", read_audio(real_speech[0])[:16000])
    write_audio(inputs / "sub" / "b.flac", read_audio(real_speech[1])[:24000])
    (inputs / "corrupt.wav").write_bytes(b"RIFF not really a wave file")
    (inputs / "empty.wav").write_bytes(b"")
    out = tmp_path / "out"
    status = enhance_main([str(inputs), "-o", str(out), "--model", str(model_dir), "--device", "cpu"])
    captured = capsys.readouterr()
    assert status == 1
    assert (out / "in" / "a.wav").is_file() and (out / "in" / "sub" / "b.wav").is_file()
    assert not (out / "in" / "corrupt.wav").exists() and not (out / "in" / "empty.wav").exists()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "corrupt.wav" in captured.err and "empty.wav: file is empty" in captured.err
    assert "2 enhanced, 0 skipped" in captured.out and "2 failed" in captured.out
    before = (out / "in" / "a.wav").stat().st_mtime_ns
    enhance_main(
        [str(inputs / "a.wav"), str(inputs / "sub"), "-o", str(out / "in"), "--model", str(model_dir)]
    )
    assert "0 enhanced, 2 skipped" in capsys.readouterr().out
    assert (out / "in" / "a.wav").stat().st_mtime_ns == before
    assert (
        enhance_main([str(inputs / "a.wav"), "-o", str(out / "in"), "--model", str(model_dir), "--overwrite"])
        == 0
    )
    assert (out / "in" / "a.wav").stat().st_mtime_ns != before


def test_cli_without_a_model_folder_says_how_to_make_one(tmp_path, real_speech, capsys):
    write_audio(tmp_path / "a.wav", read_audio(real_speech[0])[:16000])
    assert enhance_main([str(tmp_path / "a.wav"), "-o", str(tmp_path / "o"), "--model", str(tmp_path)]) == 2
    assert "sslse-package" in capsys.readouterr().err
    with pytest.raises(ModelFolderError, match="missing hyperparams.yaml"):
        SpectrumAwareEnhancer.from_hparams(source=tmp_path)


def test_cli_module_runs_as_a_console_script(model_dir, tmp_path, real_speech):
    import subprocess

    write_audio(tmp_path / "a.wav", read_audio(real_speech[2])[:16000])
    script = "import sys; from speechbrain_sslse.cli import main; main()"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(tmp_path / "a.wav"),
            "-o",
            str(tmp_path / "o"),
            "--model",
            str(model_dir),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "o" / "a.wav").is_file()
