"""The enhancement model and the small TERA shipped inside the package load and run."""

import soundfile as sf
import torch

from speechbrain_sslse.audio import read_audio
from speechbrain_sslse.cli import enhance_main
from speechbrain_sslse.inference import SpectrumAwareEnhancer, default_model_dir

MAX_SHIPPED_BYTES = 25 * 2**20


def test_shipped_model_loads_and_enhances_a_file(tmp_path, real_speech):
    folder = default_model_dir()
    enhancer = SpectrumAwareEnhancer.from_hparams(source=folder)
    noisy = read_audio(real_speech[5])[:40000] + 0.01 * torch.randn(
        40000, generator=torch.Generator().manual_seed(0)
    )
    sf.write(tmp_path / "noisy.wav", noisy.numpy(), 16000)
    out = enhancer.enhance_file(tmp_path / "noisy.wav", tmp_path / "enhanced.wav")
    assert out.shape == (40000,) and torch.isfinite(out).all() and float(out.abs().max()) > 0
    assert sf.info(tmp_path / "enhanced.wav").samplerate == 16000


def test_cli_uses_the_shipped_model_when_no_model_is_given(tmp_path, real_speech):
    sf.write(tmp_path / "a.wav", read_audio(real_speech[6])[:16000].numpy(), 16000)
    assert enhance_main([str(tmp_path / "a.wav"), "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "a.wav").is_file()


def test_shipped_files_fit_the_size_budget_and_have_model_cards():
    folder = default_model_dir()
    assets = folder.parent
    total = sum(p.stat().st_size for p in assets.rglob("*") if p.is_file())
    assert total <= MAX_SHIPPED_BYTES, f"{total / 2**20:.1f} MB shipped"
    card = (folder / "README.md").read_text()
    for section in ("Training data", "Validation", "Test results", "Known limits", "Training budget"):
        assert section in card, section
    assert "## Training data" in (assets / "tera_small" / "MODEL_CARD.md").read_text()


def test_ship_model_writes_a_card_with_results_budget_and_limits(tiny_trained_run, tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "recipes/DNS/enhancement/ship_model.py"
    spec = importlib.util.spec_from_file_location("ship_model", script)
    ship_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship_model)
    run, _ = tiny_trained_run
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "table.md").write_text(
        "# Results\n\n| system | STOI |\n|---|---|\n| distorted | 0.5 |\n\n## Per SNR\n\n| x |\n"
    )
    (tmp_path / "budget.json").write_text(json.dumps({"Wall-clock": "3 min"}))
    (tmp_path / "notes.md").write_text("### What the table says\n\n- fine")
    argv = ["--run", str(run), "--eval", str(tmp_path / "eval"), "--output", str(tmp_path / "model")]
    argv += ["--budget", str(tmp_path / "budget.json"), "--notes", str(tmp_path / "notes.md")]
    assert ship_model.main(argv) == 0
    card = (tmp_path / "model" / "README.md").read_text()
    assert "\n# Results" not in card and "### Per SNR" in card and "| distorted | 0.5 |" in card
    assert "- Wall-clock: 3 min" in card and "### What the table says" in card and "## Known limits" in card
    SpectrumAwareEnhancer.from_hparams(source=tmp_path / "model")  # the shipped folder loads
