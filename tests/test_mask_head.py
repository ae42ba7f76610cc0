"""The spectrum-aware mask head, its losses, channel augmentation; the default model's recipe end to end."""

import math

import numpy as np
import pytest
import torch
from hyperpyyaml import load_hyperpyyaml
from recipe_helpers import DNS_RECIPE, load_recipe_module, recipe_sibling

from speechbrain_sslse.data.mixing import ChannelAugment, snr_db
from speechbrain_sslse.fast import native_cpu_bf16
from speechbrain_sslse.files import read_csv
from speechbrain_sslse.lobes import CrossAttentionFusion, SpectralMaskHead, SSLEncoder, spectrum_aware_vocoder
from speechbrain_sslse.lobes.losses import SpectralReconstructionLoss, compressed_spectrum_loss

MASK_YAML = DNS_RECIPE / "hparams" / "mask_head.yaml"


def _unit_mask_head(**kwargs):
    """A head whose mask is exactly 1 everywhere (output weights zero, bias atanh(1 / bound))."""
    head = SpectralMaskHead(in_channels=8, channels=8, num_blocks=1, **kwargs)
    with torch.no_grad():
        head.out.bias.zero_()
        head.out.bias[0::2] = math.atanh(1.0 / head.mask_bound)
    return head


@pytest.mark.parametrize("length", [1600, 16000, 16001, 23457])
def test_unit_mask_returns_the_input_exactly(length):
    head = _unit_mask_head()
    noisy = 0.1 * torch.randn(2, length, generator=torch.Generator().manual_seed(length))
    frames = length // 160 + 1
    out = head(torch.randn(2, frames, 8), noisy)
    assert out.shape == noisy.shape
    assert float((out - noisy).abs().max()) < 1e-5


def test_filter_over_past_frames_applies_each_tap_to_its_frame():
    """Tap 1 alone at exactly 1 delays the noisy STFT by one frame: the output is the input one
    hop later (away from the edges); tap 0 alone at 1 gives the input back (deep filtering)."""
    head = SpectralMaskHead(in_channels=8, channels=8, num_blocks=1, gru_layers=0, filter_order=3)
    n = head.n_freq
    noisy = 0.1 * torch.randn(1, 8000, generator=torch.Generator().manual_seed(3))
    features = torch.randn(1, 8000 // 160 + 1, 8)
    for tap, delay in ((0, 0), (1, 160)):
        with torch.no_grad():
            head.out.bias.zero_()
            head.out.bias[2 * n * tap : 2 * n * (tap + 1) : 2] = math.atanh(1.0 / head.mask_bound)
        out = head(features, noisy)
        assert out.shape == noisy.shape
        inner = slice(1000, 7000)
        shifted = noisy[:, inner.start - delay : inner.stop - delay]
        assert float((out[:, inner] - shifted).abs().max()) < 1e-5, tap
    with pytest.raises(ValueError, match="filter_order"):
        SpectralMaskHead(in_channels=8, filter_order=0)


def test_mask_is_bounded_and_features_change_the_output():
    torch.manual_seed(0)
    head = SpectralMaskHead(in_channels=8, channels=16, num_blocks=2, gru_layers=1, mask_bound=1.2)
    torch.nn.init.normal_(head.out.weight, std=5.0)  # large raw masks
    features = torch.randn(1, 101, 8)
    mask = head.mask(features)
    assert mask.shape == (1, 257, 101) and mask.dtype == torch.complex64
    assert float(mask.abs().max()) <= 1.2 + 1e-6
    noisy = torch.randn(1, 16000)
    assert not torch.allclose(head(features, noisy), head(features + 1.0, noisy))


def test_mask_exponent_raises_the_magnitude_and_keeps_the_phase():
    torch.manual_seed(0)
    head = SpectralMaskHead(in_channels=8, channels=16, num_blocks=1)
    torch.nn.init.normal_(head.out.weight, std=1.0)
    features = torch.randn(1, 51, 8)
    trained = head.mask(features)
    head.mask_exponent = 2.0
    sharpened = head.mask(features)
    assert torch.allclose(sharpened.abs(), trained.abs() ** 2, atol=1e-6)
    keep = trained.abs() > 1e-3
    assert torch.allclose(torch.angle(sharpened[keep]), torch.angle(trained[keep]), atol=1e-4)
    assert SpectralMaskHead(in_channels=8, mask_exponent=1.5).mask_exponent == 1.5


def test_vocoder_with_mask_head_keeps_each_item_independent_of_padding(tiny_tera_ckpt):
    torch.manual_seed(0)
    vocoder = spectrum_aware_vocoder(
        SSLEncoder("tera", ckpt=tiny_tera_ckpt),
        d_model=16,
        fusion_options={"num_heads": 2, "ffn_dim": 32},
        generator=SpectralMaskHead(in_channels=16, channels=16, num_blocks=2),
    ).eval()
    assert vocoder.family == "speechbrain_sslse.lobes.SpectralMaskHead"
    assert vocoder.generator.in_proj.out_channels == 16
    noisy = 0.1 * torch.randn(2, 8000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        batch = vocoder(noisy, torch.tensor([1.0, 0.5]))
        alone = vocoder(noisy[1:, :4000])
    assert torch.allclose(batch[1, :4000], alone[0], atol=1e-5)
    assert torch.all(batch[1, 4000:] == 0)
    with pytest.raises(ValueError, match="input channels"):
        spectrum_aware_vocoder(
            SSLEncoder("tera", ckpt=tiny_tera_ckpt), d_model=32, generator=SpectralMaskHead(in_channels=16)
        )


def test_spectrum_only_control_never_runs_the_ssl_encoder(tiny_tera_ckpt):
    encoder = SSLEncoder("tera", ckpt=tiny_tera_ckpt)
    calls = []
    encoder.register_forward_hook(lambda *args: calls.append(1))
    vocoder = spectrum_aware_vocoder(
        encoder,
        fusion="spectrum_only",
        d_model=16,
        fusion_options={"num_heads": 2, "ffn_dim": 32},
        generator=SpectralMaskHead(in_channels=16, channels=16, num_blocks=1),
    )
    assert vocoder(torch.randn(1, 4000)).shape == (1, 4000)
    assert calls == []


def test_reconstruction_loss_is_zero_on_the_target_and_orders_estimates():
    target = 0.1 * torch.randn(2, 1, 8000, generator=torch.Generator().manual_seed(0))
    noise = 0.05 * torch.randn(2, 1, 8000, generator=torch.Generator().manual_seed(1))
    loss = SpectralReconstructionLoss()
    assert float(loss(None, target, target)["G_loss"]) < 1e-6
    near, far = loss(None, target + 0.1 * noise, target), loss(None, target + noise, target)
    assert float(near["G_loss"]) < float(far["G_loss"])
    # the complex term sees the phase: a sign flip costs, its magnitude term does not
    flipped = compressed_spectrum_loss(-target[:, 0], target[:, 0], complex_weight=0.0)
    assert float(flipped) < 1e-8
    assert float(compressed_spectrum_loss(-target[:, 0], target[:, 0], complex_weight=1.0)) > 0.1


def test_channel_augment_colours_mixture_and_target_alike_and_clips_only_the_mixture():
    g = torch.Generator().manual_seed(0)
    target = 0.1 * torch.randn(16000, generator=g)
    noise = 0.1 * torch.randn(16000, generator=g)
    colour = ChannelAugment(eq_probability=1.0, bandlimit_probability=1.0, clip_probability=0.0)
    noisy_a, target_a = colour(target + noise, target, np.random.default_rng(3))
    noise_a, _ = colour(noise, noise, np.random.default_rng(3))
    assert not torch.allclose(target_a, target, atol=1e-3)  # coloured
    assert torch.allclose(noisy_a - target_a, noise_a, atol=1e-4)  # the same linear filter on both
    again = colour(target + noise, target, np.random.default_rng(3))
    assert torch.equal(again[0], noisy_a)  # deterministic from the generator
    clip = ChannelAugment(eq_probability=0.0, bandlimit_probability=0.0, clip_probability=1.0)
    noisy_c, target_c = clip(target + noise, target, np.random.default_rng(0))
    assert torch.equal(target_c, target)
    assert float(noisy_c.abs().max()) < float((target + noise).abs().max())


def test_mask_head_yaml_wires_the_head_into_the_vocoder(tmp_path):
    with open(MASK_YAML) as f:
        hparams = load_hyperpyyaml(f, {"output_folder": str(tmp_path)})
    vocoder = hparams["generator"]
    assert isinstance(vocoder.generator, SpectralMaskHead)
    assert vocoder.generator is hparams["mask_head"]
    assert isinstance(vocoder.fusion, CrossAttentionFusion) and vocoder.fusion is hparams["fusion"]
    assert isinstance(hparams["generator_loss"], SpectralReconstructionLoss)
    assert isinstance(hparams["augment"], ChannelAugment)


def test_mask_head_yaml_adversarial_weights_reach_the_generator_loss(tmp_path):
    """--mseg_loss_weight / --feat_match_loss_weight scale the GAN terms of G_loss."""
    target = 0.1 * torch.randn(1, 1, 4000, generator=torch.Generator().manual_seed(0))
    estimate = target + 0.02 * torch.randn(1, 1, 4000, generator=torch.Generator().manual_seed(1))
    scores = [torch.full((1, 5), 0.3)]
    feats_fake, feats_real = [[torch.ones(1, 4)]], [[torch.zeros(1, 4)]]
    totals = {}
    for weights in ((1.0, 2.0), (3.0, 5.0)):
        overrides = {"output_folder": str(tmp_path), "mseg_loss_weight": weights[0]}
        overrides["feat_match_loss_weight"] = weights[1]
        with open(MASK_YAML) as f:
            loss = load_hyperpyyaml(f, overrides)["generator_loss"]
        out = loss(None, estimate, target, scores, feats_fake, feats_real)
        totals[weights] = out
    base, scaled = totals[(1.0, 2.0)], totals[(3.0, 5.0)]
    gan, fm = float(base["G_mse_gan_loss"]), float(base["G_feat_match_loss"])
    assert gan > 0 and fm > 0
    expected = float(base["G_loss"]) + 2.0 * gan + 3.0 * fm
    assert float(scaled["G_loss"]) == pytest.approx(expected, rel=1e-5)


def _tiny_mask_args(root, mini_corpus, tiny_tera_ckpt):
    """Overrides of mask_head.yaml for a run of seconds (a tiny model, two steps)."""
    return {
        "output_folder": root / "run",
        "manifest_folder": root / "manifests",
        "data_folder": mini_corpus / "DNS",
        "ssl_ckpt": tiny_tera_ckpt,
        "number_of_epochs": 1,
        "steps_per_epoch": 2,
        "batch_size": 2,
        "num_workers": 0,
        "segment_seconds": 0.5,
        "babble_probability": 0.5,  # train.py gives the mixer its talkers (it refuses to mix without)
        "num_valid_mixtures": 1,
        "valid_segment_seconds": 4.6,
        "valid_batch_size": 1,
        "num_samples_to_write": 1,
        "d_model": 16,
        "num_heads": 2,
        "ffn_dim": 32,
        "head_channels": 16,
        "head_blocks": 2,
        "head_dilations": "[1,2]",
        "ckpt_interval_minutes": 0,
    }


@pytest.fixture(scope="module")
def tiny_mask_run(tmp_path_factory, mini_corpus, tiny_tera_ckpt):
    root = tmp_path_factory.mktemp("mask_run")
    args = _tiny_mask_args(root, mini_corpus, tiny_tera_ckpt)
    argv = [str(MASK_YAML)] + [f"--{k}={v}" for k, v in args.items()] + ["--noprogressbar"]
    load_recipe_module().main(argv)
    return root / "run"


def test_mask_head_recipe_trains_validates_on_quality_and_packages(tiny_mask_run):
    from speechbrain_sslse.inference import SpectrumAwareEnhancer

    log = (tiny_mask_run / "train_log.txt").read_text()
    assert "valid dnsmos_ovrl" in log and "valid quality" in log and "cpu_hours: " in log
    model = tiny_mask_run / "model"
    text = (model / "hyperparams.yaml").read_text()
    assert "generator: !new:speechbrain_sslse.lobes.SpectralMaskHead" in text
    assert "chunk_seconds: 2.0" in text and "overlap_seconds: 0.25" in text
    enhancer = SpectrumAwareEnhancer.from_hparams(source=str(model), savedir=str(model))
    assert enhancer.hparams.chunk_seconds == 2.0
    noisy = 0.05 * torch.randn(1, 40000, generator=torch.Generator().manual_seed(0))
    # The default precision is bf16 on a CPU with native bf16, fp32 elsewhere: the fast path
    # is compared in fp32 (the eager output) and, where the CPU has it, in bf16 (close to it).
    fast = enhancer.configure_inference(fast=True, precision="fp32").enhance_batch(noisy)
    eager = enhancer.configure_inference(fast=False).enhance_batch(noisy)
    assert fast.shape == noisy.shape and torch.isfinite(fast).all()
    assert float((fast - eager).abs().max()) < 1e-4
    if native_cpu_bf16():
        bf16 = enhancer.configure_inference(fast=True, precision="bf16").enhance_batch(noisy)
        assert snr_db(eager, bf16 - eager) > 25  # dB of the eager output over the difference
    long = enhancer.enhance_waveform(noisy[0])  # chunks of 2 s with overlap-add
    assert long.shape == noisy[0].shape and torch.isfinite(long).all()


def test_packaging_writes_a_generator_setting_and_refuses_an_unknown_one(tiny_mask_run, tmp_path):
    from speechbrain_sslse.inference import SpectrumAwareEnhancer
    from speechbrain_sslse.packaging import PackagingError, package_model

    plain = SpectrumAwareEnhancer.from_hparams(source=str(tiny_mask_run / "model"), precision="fp32")
    folder = package_model(tiny_mask_run, tmp_path / "sharp", generator_settings={"mask_exponent": 2.0})
    assert "    mask_exponent: 2.0" in (folder / "hyperparams.yaml").read_text()
    assert "`mask_exponent: 2.0`" in (folder / "README.md").read_text()
    sharp = SpectrumAwareEnhancer.from_hparams(source=str(folder), precision="fp32")
    assert sharp.mods.vocoder.generator.mask_exponent == 2.0
    assert plain.mods.vocoder.generator.mask_exponent == 1.0
    noisy = 0.05 * torch.randn(1, 16000, generator=torch.Generator().manual_seed(3))
    assert not torch.allclose(plain.enhance_batch(noisy), sharp.enhance_batch(noisy), atol=1e-4)
    with pytest.raises(PackagingError, match="no_such_setting"):
        package_model(tiny_mask_run, tmp_path / "bad", generator_settings={"no_such_setting": 1})
    assert not (tmp_path / "bad").exists()


def test_average_checkpoints_writes_the_mean_of_the_chosen_epochs_outside_save(tmp_path):
    from speechbrain.utils.checkpoints import Checkpointer

    average = load_recipe_module("dns_average_checkpoints", DNS_RECIPE / "average_checkpoints.py")
    run = tmp_path / "run"
    module = torch.nn.Linear(3, 2)
    saver = Checkpointer(run / "save", recoverables={"generator": module})
    weights = {}
    for epoch in (1, 2, 3):
        with torch.no_grad():
            module.weight.fill_(float(epoch))
            module.bias.fill_(10.0 * epoch)
        weights[epoch] = {k: v.clone() for k, v in module.state_dict().items()}
        saver.save_checkpoint(meta={"epoch": epoch, "cpu_seconds": 100.0 * epoch}, end_of_epoch=True)
    folder = average.average_run(run, [2, 3])
    assert folder.parent == run / "averaged"
    state = torch.load(folder / "generator.ckpt", weights_only=True)
    assert torch.allclose(state["weight"], torch.full((2, 3), 2.5))
    assert torch.allclose(state["bias"], torch.full((2,), 25.0))
    meta = Checkpointer(run / "averaged").list_checkpoints()[0].meta
    assert meta["averaged_epochs"] == [2, 3] and meta["epoch"] == 3 and meta["cpu_seconds"] == 300.0
    assert len(Checkpointer(run / "save").list_checkpoints()) == 3  # the run's own folder untouched
    with pytest.raises(SystemExit, match=r"epoch\(s\) \[7\].*\[1, 2, 3\]"):
        average.average_run(run, [2, 7])


def test_tune_mask_exponent_scores_the_runs_validation_set_per_exponent(tiny_mask_run, tmp_path, capsys):
    tune = load_recipe_module("dns_tune_mask_exponent", DNS_RECIPE / "tune_mask_exponent.py")
    out = tmp_path / "tune"
    argv = ["--run", str(tiny_mask_run), "--model", str(tiny_mask_run / "model"), "--exponents", "1", "3"]
    assert tune.main([*argv, "--output_folder", str(out), "--nisqa"]) == 0
    rows = read_csv(out / "mask_exponent.csv")
    assert [float(r["mask_exponent"]) for r in rows] == [1.0, 3.0]
    for r in rows:
        assert 0.0 < float(r["stoi"]) <= 1.0 and math.isfinite(float(r["dnsmos_ovrl"]))
        assert math.isfinite(float(r["nisqa"]))
    assert rows[0]["nisqa"] != rows[1]["nisqa"]
    assert "NISQA MOS |" in (out / "mask_exponent.md").read_text()
    assert rows[0]["stoi"] != rows[1]["stoi"]  # the exponent changes the output
    best = max(rows, key=lambda r: float(r["quality"]))
    assert f"best mask_exponent by quality: {float(best['mask_exponent']):g}" in capsys.readouterr().out
    assert "(chosen)" in (out / "mask_exponent.md").read_text()
    # quality_nisqa = quality + NISQA MOS, the key that counts all three goal metrics.
    for r in rows:
        assert float(r["quality_nisqa"]) == pytest.approx(float(r["quality"]) + float(r["nisqa"]))
    assert "quality_nisqa |" in (out / "mask_exponent.md").read_text()
    out2 = tmp_path / "tune_nisqa_key"
    assert tune.main([*argv, "--output_folder", str(out2), "--nisqa", "--key", "quality_nisqa"]) == 0
    best = max(rows, key=lambda r: float(r["quality_nisqa"]))
    assert f"best mask_exponent by quality_nisqa: {float(best['mask_exponent']):g}" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # the key needs the NISQA scores
        tune.main([*argv, "--output_folder", str(tmp_path / "no_nisqa"), "--key", "quality_nisqa"])
    assert "--key quality_nisqa needs NISQA scores: add --nisqa" in capsys.readouterr().err


def test_compare_on_validation_scores_models_and_the_input_per_validation_part(
    tiny_mask_run, tmp_path, capsys
):
    compare = load_recipe_module("dns_compare_on_validation", DNS_RECIPE / "compare_on_validation.py")
    validation = recipe_sibling("validation")
    out = tmp_path / "compare"
    model = tiny_mask_run / "model"
    argv = ["--run", str(tiny_mask_run), "--model", f"tiny={model}", "--model", f"sharp={model}@3"]
    argv += ["--part", "standard", "--part", "dry", "--num_mixtures", "2", "--no_nisqa"]
    assert compare.main([*argv, "--output_folder", str(out)]) == 0
    rows = read_csv(out / "per_file.csv")
    assert len(rows) == 2 * 3 * 2  # parts x systems (two models, the input) x mixtures
    by = {
        (r["part"], r["system"]): [
            float(x["stoi"]) for x in rows if (x["part"], x["system"]) == (r["part"], r["system"])
        ]
        for r in rows
    }
    # The standard part is the run's own validation set, scored as train.py scores it.
    items = validation.validation_items(tiny_mask_run, {"num_valid_mixtures": 2})
    expected = validation.score_validation(items)["stoi"]
    assert np.mean(by[("standard", "unprocessed")]) == pytest.approx(expected)
    # The dry part draws other mixtures of the same utterances: no room, another seed.
    assert by[("dry", "unprocessed")] != by[("standard", "unprocessed")]
    assert by[("standard", "sharp")] != by[("standard", "tiny")]  # the exponent reached the model
    text = (out / "table.md").read_text()
    assert "### Validation part `standard` (2 mixtures)" in text and "### Validation part `dry`" in text
    assert "Paired, `tiny` minus each system" in text and "| sharp |" in text
    with pytest.raises(SystemExit, match="not a packaged model folder"):
        compare.main(["--run", str(tiny_mask_run), "--model", f"x={tmp_path}", "--output_folder", str(out)])


def test_init_from_starts_a_new_run_from_another_runs_generator_and_never_overrides_a_resume(
    tiny_mask_run, tmp_path, mini_corpus, tiny_tera_ckpt
):
    from speechbrain.utils.checkpoints import Checkpointer

    run_setup = recipe_sibling("run_setup")
    source = Checkpointer(tiny_mask_run / "save").find_checkpoint().path
    trained = torch.load(source / "generator.ckpt", weights_only=True)
    args = {**_tiny_mask_args(tmp_path, mini_corpus, tiny_tera_ckpt), "output_folder": tmp_path / "finetune"}
    overrides = "\n".join(f"{k}: {v}" for k, v in {**args, "init_from": source}.items())  # yaml, as the CLI
    hparams = load_hyperpyyaml(MASK_YAML.read_text(), overrides)
    generator, checkpointer = hparams["generator"], hparams["checkpointer"]
    key = next(k for k in trained if k.startswith("generator.") and trained[k].is_floating_point())
    assert not torch.equal(generator.state_dict()[key], trained[key])  # a fresh initialisation
    assert run_setup.initialise_from(hparams, checkpointer) == source / "generator.ckpt"
    state = generator.state_dict()
    assert all(torch.equal(state[k], trained[k]) for k in trained)
    # Once the new run has a checkpoint of its own, it resumes from that, never from init_from.
    checkpointer.save_checkpoint(meta={"epoch": 1})
    assert run_setup.initialise_from(hparams, checkpointer) is None
    hparams["checkpointer"] = Checkpointer(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no generator.ckpt .* nor vocoder.ckpt"):
        run_setup.initialise_from({**hparams, "init_from": str(tmp_path)}, hparams["checkpointer"])


def test_init_from_a_packaged_model_folder_and_refuses_another_architecture(
    tiny_mask_run, tmp_path, mini_corpus, tiny_tera_ckpt
):
    from speechbrain.utils.checkpoints import Checkpointer

    run_setup = recipe_sibling("run_setup")
    model = tiny_mask_run / "model"  # what sslse-package writes, as the shipped default model
    packaged = torch.load(model / "vocoder.ckpt", weights_only=True)
    args = {**_tiny_mask_args(tmp_path, mini_corpus, tiny_tera_ckpt), "output_folder": tmp_path / "ft"}

    def as_yaml(overrides):  # as the command line gives them
        return "\n".join(f"{k}: {v}" for k, v in overrides.items())

    hparams = load_hyperpyyaml(MASK_YAML.read_text(), as_yaml({**args, "init_from": model}))
    assert run_setup.initialise_from(hparams, hparams["checkpointer"]) == model / "vocoder.ckpt"
    state = hparams["generator"].state_dict()
    assert set(state) == set(packaged) and all(torch.equal(state[k], packaged[k]) for k in packaged)
    # A run whose head is wider than the folder's is refused before anything is loaded.
    wider = {**args, "output_folder": tmp_path / "wide", "head_channels": 24, "init_from": model}
    hparams = load_hyperpyyaml(MASK_YAML.read_text(), as_yaml(wider))
    before = {k: v.clone() for k, v in hparams["generator"].state_dict().items()}
    with pytest.raises(ValueError, match="another architecture .*shape of generator"):
        run_setup.initialise_from(hparams, Checkpointer(tmp_path / "empty2"))
    assert all(torch.equal(v, hparams["generator"].state_dict()[k]) for k, v in before.items())
    # A run with a deeper filter starts from the folder's mask: the past taps at zero, so it
    # enhances exactly as the packaged model does.
    deeper = {**args, "output_folder": tmp_path / "deep", "head_filter_order": 3, "init_from": model}
    hparams = load_hyperpyyaml(MASK_YAML.read_text(), as_yaml(deeper))
    assert (
        run_setup.initialise_from(hparams, Checkpointer(tmp_path / "empty3")).name
        == "init_from_expanded.ckpt"
    )
    mask_only = load_hyperpyyaml(MASK_YAML.read_text(), as_yaml({**args, "init_from": model}))
    run_setup.initialise_from(mask_only, Checkpointer(tmp_path / "empty4"))
    noisy = 0.1 * torch.randn(1, 8000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        deep_out = hparams["generator"].eval()(noisy)
        mask_out = mask_only["generator"].eval()(noisy)
    assert not torch.equal(deep_out, torch.zeros_like(deep_out))
    assert torch.allclose(deep_out, mask_out, atol=1e-5)


def test_a_gan_fine_tune_goes_on_from_the_discriminator_of_an_average_or_a_packaged_folder(
    tiny_mask_run, tmp_path, mini_corpus, tiny_tera_ckpt, caplog
):
    import shutil

    from speechbrain.utils.checkpoints import Checkpointer

    from speechbrain_sslse.packaging import PackagingError, package_model

    run_setup = recipe_sibling("run_setup")
    average = load_recipe_module("dns_average_checkpoints", DNS_RECIPE / "average_checkpoints.py")
    epoch_end = average.epoch_checkpoints(tiny_mask_run / "save", [1])[0]
    own = torch.load(epoch_end.path / "discriminator.ckpt", weights_only=True)
    avg = average.average_run(tiny_mask_run, [1], tmp_path / "averaged")
    kept = torch.load(avg / "discriminator.ckpt", weights_only=True)
    assert set(kept) == set(own) and all(torch.equal(kept[k], own[k]) for k in own)
    assert Checkpointer(tmp_path / "averaged").list_checkpoints()[0].meta["discriminator_epoch"] == 1
    # The tiny run never reached its GAN steps: stand in a trained discriminator's weights.
    trained = {k: v + 0.5 if v.is_floating_point() else v for k, v in kept.items()}
    torch.save(trained, avg / "discriminator.ckpt")

    plain = package_model(tiny_mask_run, tmp_path / "plain", checkpoint=avg)
    assert not (plain / "discriminator.ckpt").exists()
    folder = package_model(tiny_mask_run, tmp_path / "with_d", checkpoint=avg, with_discriminator=True)
    assert (folder / "discriminator.ckpt").is_file()
    assert "`discriminator.ckpt` is the GAN discriminator" in (folder / "README.md").read_text()

    args = _tiny_mask_args(tmp_path, mini_corpus, tiny_tera_ckpt)

    def fine_tune(name, source, **extra):
        overrides = {**args, "output_folder": tmp_path / name, "init_from": source, **extra}
        yaml_overrides = "\n".join(f"{k}: {v}" for k, v in overrides.items())  # as the command line
        hparams = load_hyperpyyaml(MASK_YAML.read_text(), yaml_overrides)
        run_setup.initialise_from(hparams, Checkpointer(tmp_path / name / "save"))
        return hparams["modules"]["discriminator"].state_dict()

    loaded = fine_tune("ft", folder)
    assert all(torch.equal(loaded[k], trained[k]) for k in trained)
    fresh = fine_tune("ft_plain", plain)  # no discriminator in the folder: an untrained one
    assert not any(torch.equal(fresh[k], trained[k]) for k in trained if trained[k].is_floating_point())
    with caplog.at_level("WARNING"):
        other = fine_tune("ft_wide", folder, discriminator_channels=8)
    assert "another architecture" in caplog.text and "discriminator starts untrained" in caplog.text
    assert all(v.abs().sum() > 0 for v in other.values() if v.is_floating_point())
    # Asked for a discriminator the checkpoint lacks: refused, nothing written.
    bare = tmp_path / "bare" / avg.name
    shutil.copytree(avg, bare)
    (bare / "discriminator.ckpt").unlink()
    with pytest.raises(PackagingError, match="no discriminator.ckpt to include"):
        package_model(tiny_mask_run, tmp_path / "none", checkpoint=bare, with_discriminator=True)
    assert not (tmp_path / "none").exists()


def test_validation_items_of_a_run_from_before_the_mixer_was_built_in_the_yaml(tiny_mask_run, tmp_path):
    """A former run (its mixer built from nine settings, no ``mixer:`` entry) draws the same mixtures."""
    import re

    validation = recipe_sibling("validation")
    text = (tiny_mask_run / "hyperparams.yaml").read_text()
    former = re.sub(r"^mixer: !new:.*\n(?:[ \t]+.*\n)*", "", text, flags=re.M)
    assert "OnTheFlyMixer" in text and "OnTheFlyMixer" not in former
    (tmp_path / "hyperparams.yaml").write_text(former)
    now, then = validation.validation_items(tiny_mask_run), validation.validation_items(tmp_path)
    assert [i for i, _, _ in now] == [i for i, _, _ in then] and len(now) >= 1
    for (_, noisy, clean), (_, noisy_then, clean_then) in zip(now, then):
        assert torch.equal(noisy, noisy_then) and torch.equal(clean, clean_then)
