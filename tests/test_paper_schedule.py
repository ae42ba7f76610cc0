"""The paper's setting, complete and safe at scale: variant 7, feature matching, the exact upsampling,
the SSL-checkpoint guard, worker sizing, NaN-proof checkpoint ranking, the training run options."""

import copy
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hyperpyyaml import load_hyperpyyaml
from recipe_helpers import DNS_RECIPE, load_recipe_module, recipe_sibling, setting_overrides
from speechbrain.lobes.models.HifiGAN import HifiganGenerator, MelganFeatureLoss

from speechbrain_sslse.checkpointing import AtomicCheckpointer
from speechbrain_sslse.lobes import SSLEncoder, spectrum_aware_vocoder
from speechbrain_sslse.lobes.discriminator import FeatureMatchingLoss, HifiganDiscriminator
from speechbrain_sslse.lobes.fusion import FUSIONS, FiLMBySpectrumFusion
from speechbrain_sslse.lobes.hifigan import HIFIGAN_PRESETS, UPSAMPLE_KERNELS_BEFORE, hifigan_generator

PROPOSED = DNS_RECIPE / "hparams" / "proposed.yaml"


@pytest.fixture(scope="module")
def recipe():
    return load_recipe_module()


@pytest.fixture(scope="module")
def run_setup():
    return recipe_sibling("run_setup")


@pytest.fixture(scope="module")
def validation():
    return recipe_sibling("validation")


@pytest.fixture(scope="module")
def data_pipeline():
    return recipe_sibling("data_pipeline")


def _setting_hparams(setting, ssl_ckpt):
    overrides = setting_overrides(PROPOSED, setting, f"--ssl_ckpt={ssl_ckpt}")
    with open(PROPOSED) as f:
        return load_hyperpyyaml(f, overrides)


# --- variant 7 ----------------------------------------------------------------------------


def test_film_by_spectrum_modulates_the_ssl_stream_by_the_spectrum():
    fusion = FUSIONS["film_by_spectrum"](ssl_dim=8, spec_dim=20, d_model=16)
    assert isinstance(fusion, FiLMBySpectrumFusion)
    assert fusion.spec_proj.in_features == 20 and fusion.spec_proj.out_features == 2 * 16  # gamma, beta
    assert fusion.ssl_proj.in_features == 8
    ssl, spec = torch.randn(2, 5, 8), torch.randn(2, 5, 20)
    gamma, beta = fusion.spec_proj(spec)[..., :16], fusion.spec_proj(spec)[..., 16:]
    assert torch.allclose(fusion(ssl, spec), gamma * fusion.ssl_proj(ssl) + beta)
    # gamma starts around 1: with a zero spectrum the SSL stream passes with gain 1, plus beta's bias.
    out = fusion(ssl[:1], torch.zeros(1, 5, 20))
    assert torch.allclose(out, fusion.ssl_proj(ssl[:1]) + fusion.spec_proj.bias[16:], atol=1e-6)


# --- feature matching ---------------------------------------------------------------------


def test_feature_matching_mean_is_speechbrains_and_sum_is_hifigans():
    torch.manual_seed(0)
    disc = HifiganDiscriminator(width=0.0625)
    _, fake = disc(torch.randn(2, 1, 4000))
    _, real = disc(torch.randn(2, 1, 4000))
    maps = sum(len(f) for f in fake)
    assert maps == 54  # 5 periods x 6 maps + 3 scales x 8 maps
    mean = FeatureMatchingLoss("mean")(fake, real)
    assert torch.allclose(mean, MelganFeatureLoss()(fake, real))
    assert torch.allclose(FeatureMatchingLoss("sum")(fake, real), maps * mean)
    # SpeechBrain's recipe weights the mean x10; HiFi-GAN the sum x2: 10.8 times stronger.
    assert 2 * maps / 10 == pytest.approx(10.8)


def test_settings_choose_the_feature_matching_reduction(tiny_tera_ckpt):
    quick = _setting_hparams("quick", tiny_tera_ckpt)["generator_loss"]
    assert quick.feat_match_loss.reduction == "mean" and quick.feat_match_loss_weight == 10
    paper = _setting_hparams("paper", tiny_tera_ckpt)["generator_loss"]
    assert paper.feat_match_loss.reduction == "sum" and paper.feat_match_loss_weight == 2


# --- upsampling ---------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(HIFIGAN_PRESETS))
def test_every_preset_upsamples_each_frame_to_exactly_one_hop(preset):
    config = {**HIFIGAN_PRESETS[preset], "upsample_initial_channel": 16}
    generator = HifiganGenerator(in_channels=8, out_channels=1, **config)
    factory = hifigan_generator(preset, in_channels=8, upsample_initial_channel=16)
    assert {k: v.shape for k, v in factory.state_dict().items()} == {
        k: v.shape for k, v in generator.state_dict().items()
    }
    for frames in (20, 51):
        assert generator(torch.randn(1, 8, frames)).shape[-1] == 160 * frames
    for factor, kernel in zip(config["upsample_factors"], config["upsample_kernel_sizes"]):
        assert (kernel - factor) % 2 == 0  # SpeechBrain's padding (k - u) // 2 is then exact


def test_vocoder_output_length_is_the_input_length(tiny_tera_ckpt):
    vocoder = spectrum_aware_vocoder(
        SSLEncoder("tera", ckpt=tiny_tera_ckpt), d_model=16, fusion_options={"num_heads": 2, "ffn_dim": 32},
        generator={"preset": "v3", "upsample_initial_channel": 16},
    )  # fmt: skip
    for samples in (8000, 8001, 8159, 12345):
        assert vocoder(torch.randn(1, samples)).shape == (1, samples)
        features = vocoder.features(torch.randn(1, samples))
        raw = vocoder.generator(features.transpose(1, 2))
        assert raw.shape[-1] == 160 * features.shape[1]  # nothing generated beyond the frame grid


def test_checkpoint_with_the_former_kernels_names_the_setting_that_loads_it(tiny_tera_ckpt):
    def build(kernels=None):
        generator = {"preset": "v3", "upsample_initial_channel": 16}
        if kernels:
            generator["upsample_kernel_sizes"] = kernels
        return spectrum_aware_vocoder(SSLEncoder("tera", ckpt=tiny_tera_ckpt), fusion="additive", d_model=16,
                                    generator=generator)  # fmt: skip

    old = build(UPSAMPLE_KERNELS_BEFORE).state_dict()
    with pytest.raises(ValueError, match=r"upsample_kernel_sizes.*\[10, 8, 8, 4\]"):
        build().load_state_dict(old)
    build(UPSAMPLE_KERNELS_BEFORE).load_state_dict(old)  # the named setting loads it


# --- the SSL checkpoint of the paper setting ----------------------------------------------


def test_paper_setting_refuses_to_run_without_an_ssl_checkpoint(recipe, run_setup, tmp_path):
    paper = run_setup.override_args(run_setup.OVERRIDES_FOLDER / "paper.args")
    argv = [str(PROPOSED), *paper, f"--output_folder={tmp_path / 'run'}"]
    with pytest.raises(ValueError, match=r"--ssl_ckpt=.*--require_ssl_ckpt=False"):
        recipe.main(argv)
    assert not (tmp_path / "run").exists()  # refused before anything was built or written
    # Explicit opt-in (typed after the override file, it wins), a checkpoint, or another setting: no refusal.
    cases = [("paper", ["--require_ssl_ckpt=False"]), ("paper", ["--ssl_ckpt=/models/tera.ckpt"])]
    for setting, args in [*cases, ("quick", []), ("shipped", [])]:
        run_setup.check_ssl_checkpoint(PROPOSED, setting_overrides(PROPOSED, setting, *args))
    run_setup.check_ssl_checkpoint(DNS_RECIPE / "hparams" / "mask_head.yaml", {})


def test_relative_paths_on_the_command_line_are_recorded_absolute(run_setup):
    out = run_setup.absolute_paths(
        {"ssl_ckpt": "tera.ckpt", "data_folder": "/d", "lr": 0.1, "ssl_ckpt_x": "a"}
    )
    assert out["ssl_ckpt"] == str(Path("tera.ckpt").resolve()) and out["data_folder"] == "/d"
    assert out["lr"] == 0.1 and out["ssl_ckpt_x"] == "a"


# --- the paper setting on a CPU machine ---------------------------------------------------


def test_workers_are_sized_to_the_machine(run_setup):
    gib = 2**30
    assert run_setup.size_workers(8, rss_bytes=2 * gib, available_bytes=100 * gib, cpus=16) == 8
    assert run_setup.size_workers(8, rss_bytes=2 * gib, available_bytes=100 * gib, cpus=2) == 2
    assert run_setup.size_workers(8, rss_bytes=3 * gib, available_bytes=15 * gib, cpus=16) == 3
    assert run_setup.size_workers(8, rss_bytes=3 * gib, available_bytes=2 * gib, cpus=16) == 0
    # On this machine the paper's 8 workers become what it holds (this CPU: 2 cores).
    sampler = torch.utils.data.SequentialSampler(range(4))
    options = run_setup.train_loader_options({"num_workers": 8, "batch_size": 16}, sampler)
    cpus = len(os.sched_getaffinity(0))
    assert options["num_workers"] <= min(8, cpus) and options["sampler"] is sampler


def test_mini_corpus_message_names_the_folder(run_setup, tmp_path):
    hparams = {"mini_corpus_folder": None, "mini_corpus_size": "default"}
    assert run_setup.mini_corpus_path(hparams).name == "mini_corpus-default-seed0"
    hparams["mini_corpus_folder"] = str(tmp_path)
    assert run_setup.mini_corpus_path(hparams) == tmp_path.resolve()


# --- checkpoint ranking -------------------------------------------------------------------


def test_pesq_failures_count_and_nan_never_wins_the_ranking(validation, tmp_path):
    scores = [{"stoi": 0.5, "pesq": 2.5}, {"stoi": 0.5, "pesq": float("nan")}]
    stats = validation.validation_metrics(scores)
    assert stats["pesq"] == pytest.approx((2.5 + validation.PESQ_FLOOR) / 2) and stats["pesq_failed"] == 1
    assert math.isnan(validation.validation_metrics([{"stoi": float("nan"), "pesq": 1.0}])["stoi"])
    with_dnsmos = validation.validation_metrics([{"stoi": 0.8, "pesq": 2.0, "dnsmos_ovrl": 2.0}])
    assert with_dnsmos["quality"] == pytest.approx(2.0 + 5 * 0.8)

    # SpeechBrain's Checkpointer keeps the two latest and the top two by meta[key]: with a
    # NaN among them (NaN ranks arbitrarily) it deleted the best one (epoch 1) of this run.
    checkpointer = AtomicCheckpointer(tmp_path / "save", recoverables={"m": torch.nn.Linear(1, 1)})
    for epoch, pesq in enumerate((1.5, float("nan"), 1.2, 1.0, 0.9), 1):
        meta = validation.ranking_meta({"epoch": epoch, "pesq": pesq}, "pesq")
        checkpointer.save_and_keep_only(meta=meta, max_keys=["pesq"], num_to_keep=2)
    kept = sorted(c.meta["epoch"] for c in checkpointer.list_checkpoints())
    assert kept == [1, 3, 4, 5]
    assert checkpointer.find_checkpoint(max_key="pesq").meta["epoch"] == 1


# --- run options --------------------------------------------------------------------------


def _nan_gradients(module):
    for p in module.parameters():
        if p.requires_grad:
            p.grad = torch.full_like(p, float("nan"))


def test_skip_nonfinite_grads_skips_the_step_and_patience_stops_the_run(tiny_trained_run):
    _, brain = tiny_trained_run
    generator = brain.modules.generator
    saved = {k: v.clone() for k, v in generator.state_dict().items()}
    optimizer_state = copy.deepcopy(brain.optimizer_g.state_dict())
    try:
        brain.skip_nonfinite_grads = True
        _nan_gradients(generator)
        assert math.isnan(brain._optimizer_step(brain.optimizer_g, "generator"))
        assert all(torch.equal(v, saved[k]) for k, v in generator.state_dict().items())
        assert all(p.grad is None for p in generator.parameters())

        brain.skip_nonfinite_grads = False
        _nan_gradients(generator)
        brain._optimizer_step(brain.optimizer_g, "generator")
        trained = [v for k, v in generator.state_dict().items() if not torch.equal(v, saved[k])]
        assert trained and all(torch.isnan(v).any() for v in trained)  # what skipping prevents

        brain.nonfinite_count, brain.nonfinite_patience = 0, 1
        brain.check_loss_isfinite(torch.tensor(float("inf")))
        with pytest.raises(ValueError, match="nonfinite_patience=1.*--skip_nonfinite_grads=True"):
            brain.check_loss_isfinite(torch.tensor(float("nan")))
    finally:
        generator.load_state_dict(saved)
        brain.optimizer_g.load_state_dict(optimizer_state)
        brain.skip_nonfinite_grads, brain.nonfinite_count, brain.nonfinite_patience = False, 0, 3


def test_mixing_sampler_seeds_each_position_of_each_epoch(data_pipeline):
    import speechbrain as sb

    def draws(epoch):
        base = sb.dataio.sampler.ReproducibleRandomSampler(range(10), seed=3, replacement=True, num_samples=6)
        sampler = data_pipeline.MixingSampler(base, seed=3)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert draws(1) == draws(1)
    assert [i for i, _ in draws(1)] != [i for i, _ in draws(2)]  # set_epoch reaches the index sampler
    assert {e for _, e in draws(1)}.isdisjoint({e for _, e in draws(2)})
    rngs = [np.random.default_rng(list(e)).random() for _, e in draws(1) + draws(2)]
    assert len(set(rngs)) == 12


def test_generator_and_discriminator_have_their_own_gradient_clip(tiny_trained_run):
    _, brain = tiny_trained_run
    assert brain.grad_norm_limit("generator") == 1000.0
    assert brain.grad_norm_limit("discriminator") == 20.0
    log = (tiny_trained_run[0] / "train_log.txt").read_text()
    assert "train D_grad_norm_clipped:" in log and "train G_grad_norm_clipped:" in log


def test_packaged_model_keeps_the_speech_level(data_pipeline, validation, tiny_trained_run, tmp_path):
    from speechbrain_sslse.inference import SpectrumAwareEnhancer
    from speechbrain_sslse.packaging import package_model

    run, brain = tiny_trained_run
    best = AtomicCheckpointer(run / "save").find_checkpoint(max_key="quality")
    level = best.meta["level_db"]  # the trained generator's output level minus the clean speech's
    model = package_model(run, tmp_path / "model")
    raw = torch.load(best.path / "generator.ckpt", weights_only=True)
    packed = torch.load(model / "vocoder.ckpt", weights_only=True)
    bias = "generator.conv_post.conv.bias"
    assert torch.allclose(packed[bias], raw[bias] * 10 ** (-level / 20))
    assert "Output level calibrated at packaging" in (model / "README.md").read_text()

    hparams = dict(vars(brain.hparams))
    hparams["bad_files_log"] = tmp_path / "bad.tsv"
    _, valid, _ = data_pipeline.dataio_prepare(hparams, Path(hparams["manifest_folder"]))
    enhancer = SpectrumAwareEnhancer.from_hparams(source=str(model), fast=False, precision="fp32")
    levels = []
    for i in range(len(valid)):
        item = valid[i]
        out = enhancer.enhance_batch(item["noisy_sig"][None])[0].cpu()
        levels.append(validation.level_difference_db(out, item["clean_sig"]))
    assert abs(float(np.median(levels))) < 3.0 < abs(level)  # was `level` dB off, now within 3 dB
