"""The lobes: SSL encoder over s3prl's real loaders, layer combination, spectrum, fusions, vocoder."""

import pytest
import torch

from speechbrain_sslse.lobes import (
    FUSIONS,
    CheckpointError,
    LayerCombination,
    NoisySpectrum,
    SSLEncoder,
    UpstreamUnavailableError,
    list_upstreams,
    resolve_upstream,
    spectrum_aware_vocoder,
)
from speechbrain_sslse.testing import write_tiny_wav2vec2, write_tiny_wavlm

TINY_GENERATOR = {
    "upsample_initial_channel": 16,
    "resblock_kernel_sizes": [3],
    "resblock_dilation_sizes": [[1, 3, 5]],
}


@pytest.fixture(scope="module")
def tera(tiny_tera_ckpt):
    return SSLEncoder("tera_local", ckpt=tiny_tera_ckpt)


def make_vocoder(encoder, fusion, **kwargs):
    torch.manual_seed(0)
    options = {"num_heads": 2, "ffn_dim": 64} if fusion.startswith("cross_attention") else {}
    return spectrum_aware_vocoder(
        encoder, fusion=fusion, d_model=32, fusion_options=options, generator=TINY_GENERATOR, **kwargs
    )


# --- SSL encoder --------------------------------------------------------------------------


def test_every_listed_upstream_resolves():
    names = list_upstreams()
    assert len(names) > 150
    failures = {}
    for name in names:
        try:
            assert callable(resolve_upstream(name))
        except Exception as err:  # collect them all for one readable failure
            failures[name] = repr(err)
    assert not failures, failures


def test_paper_upstreams_are_listed_with_local_loaders():
    local = set(list_upstreams("local"))
    assert {"tera_local", "hubert_local", "wavlm_local", "wav2vec2_local"} <= local
    assert {"tera", "hubert", "wavlm", "wav2vec2"} <= set(list_upstreams("hub"))


def test_unknown_upstream_lists_what_is_accepted():
    with pytest.raises(ValueError) as info:
        SSLEncoder("terra")
    message = str(info.value)
    assert "Did you mean" in message and "tera" in message and "tera_local" in message


def test_hub_name_without_checkpoint_is_refused_with_the_fix():
    with pytest.raises(UpstreamUnavailableError, match="ckpt=PATH"):
        SSLEncoder("tera")


def test_bad_checkpoints_give_clear_errors(tmp_path, tiny_hubert_ckpt):
    with pytest.raises(FileNotFoundError, match="SSL checkpoint not found"):
        SSLEncoder("tera", ckpt=tmp_path / "missing.ckpt")
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="corrupt.ckpt"):
        SSLEncoder("tera", ckpt=corrupt)
    with pytest.raises(CheckpointError, match="pick the upstream that matches"):
        SSLEncoder("tera", ckpt=tiny_hubert_ckpt)  # a HuBERT file given as TERA


def test_tera_encoder_shapes_and_frozen(tera):
    assert (tera.num_layers, tera.hidden_size, tera.hop_length) == (3, 32, 160)
    wavs = torch.randn(2, 16000)
    hidden, frame_lens = tera(wavs, torch.tensor([1.0, 0.5]))
    assert hidden.shape == (3, 2, 101, 32)
    assert frame_lens.tolist() == [101, 51]
    assert torch.all(hidden[:, 1, 51:] == 0)
    assert not any(p.requires_grad for p in tera.parameters())
    tera.train()
    assert not tera.upstream.training


@pytest.mark.parametrize("writer", [write_tiny_wavlm, write_tiny_wav2vec2], ids=["wavlm", "wav2vec2"])
def test_other_upstreams_load_through_s3prl(tmp_path, writer, tiny_hubert_ckpt):
    name = {"write_tiny_wavlm": "wavlm", "write_tiny_wav2vec2": "wav2vec2"}[writer.__name__]
    for upstream, ckpt in [(name, writer(tmp_path / f"{name}.pt")), ("hubert", tiny_hubert_ckpt)]:
        encoder = SSLEncoder(upstream, ckpt=ckpt)
        hidden, frame_lens = encoder(torch.randn(1, 16000))
        assert encoder.hop_length == 320
        assert hidden.shape == (3, 1, 49, 32) and frame_lens.tolist() == [49]


def test_padded_batch_encodes_like_each_item_alone(tera):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(12000, generator=g), torch.randn(7000, generator=g)
    batch = torch.zeros(2, 12000)
    batch[0], batch[1, :7000] = a, b
    hidden, frame_lens = tera(batch, torch.tensor([1.0, 7000 / 12000]))
    alone, _ = tera(b[None])
    assert torch.allclose(hidden[:, 1, : frame_lens[1]], alone[:, 0], atol=1e-5)


# --- layer combination and spectrum -------------------------------------------------------


def test_layer_combination_modes():
    hidden = torch.randn(4, 2, 5, 3)
    linear = LayerCombination(4)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([0.5, -1.0, 0.0, 2.0]))
    expected = 0.5 * hidden[0] - hidden[1] + 2.0 * hidden[3]
    assert torch.allclose(linear(hidden), expected, atol=1e-6)
    assert linear.weights.tolist() == [0.5, -1.0, 0.0, 2.0]  # negative weights are kept
    softmax = LayerCombination(4, mode="softmax")
    assert torch.allclose(softmax(hidden), hidden.mean(0), atol=1e-6)
    assert torch.allclose(softmax.weights.sum(), torch.tensor(1.0))
    last = LayerCombination(4, last_only=True)
    assert torch.equal(last(hidden), hidden[-1]) and not list(last.parameters())
    normed = LayerCombination(4, layer_norm=True, last_only=True)(hidden * 10 + 3)
    assert torch.allclose(normed.mean(-1), torch.zeros(2, 5), atol=1e-5)
    with pytest.raises(ValueError, match="expected one of"):
        LayerCombination(4, mode="max")


@pytest.mark.parametrize("kind", NoisySpectrum.KINDS)
def test_spectrum_kinds_and_padding(kind):
    spectrum = NoisySpectrum(kind)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(9000, generator=g)
    batch = torch.zeros(2, 16000)
    batch[0] = torch.randn(16000, generator=g)
    batch[1, :9000] = x
    spec = spectrum(batch, torch.tensor([1.0, 9000 / 16000]))
    assert spec.shape == (2, 101, spectrum.n_freq)
    alone = spectrum(x[None])
    assert torch.allclose(spec[1, : alone.shape[1]], alone[0], atol=1e-4)
    if kind == "magnitude":
        assert bool((spec >= 0).all())
    else:
        assert float(spec.min()) >= torch.log(torch.tensor(1e-5)) - 1e-4


def test_log_spectrum_of_a_tone_peaks_at_its_bin():
    t = torch.arange(16000) / 16000
    spec = NoisySpectrum("log")(torch.sin(2 * torch.pi * 1000 * t)[None])
    assert int(spec[0, 50].argmax()) == round(1000 / (16000 / 512))


# --- fusions and vocoder ------------------------------------------------------------------


@pytest.mark.parametrize("fusion", list(FUSIONS))
def test_vocoder_shapes_and_gradients(tera, fusion):
    vocoder = make_vocoder(tera, fusion)
    vocoder.train()
    noisy = torch.randn(2, 8000)
    out = vocoder(noisy)
    assert out.shape == (2, 8000)
    out.pow(2).mean().backward()
    if vocoder.fusion.uses_ssl:  # the spectrum-only control never runs the SSL encoder
        assert vocoder.combination.weight.grad is not None and vocoder.combination.weight.grad.abs().sum() > 0
    for name, param in vocoder.fusion.named_parameters():
        assert param.grad is not None, f"no gradient reaches fusion parameter {name}"
    if fusion != "ssl_only":
        assert vocoder.fusion.spec_proj.weight.grad.abs().sum() > 0
        assert vocoder.spectrum is not None
    else:
        assert vocoder.spectrum is None
    assert all(p.grad is not None for p in vocoder.generator.parameters())
    assert all(p.grad is None for p in vocoder.encoder.parameters())


@pytest.mark.parametrize("window", [None, 3])
def test_attention_block_computes_what_its_multihead_attention_computes(window):
    # The block attends from its nn.MultiheadAttention's own weights (contiguous projections, SDPA);
    # the result must be the module's: same checkpoints, same outputs.
    from speechbrain_sslse.lobes.fusion import _AttentionBlock

    torch.manual_seed(0)
    block = _AttentionBlock(32, 4, 64, dropout=0.0, positional=True, window=window).eval()
    query, key, value = torch.randn(3, 2, 20, 32).unbind(0)
    mask = None
    if window is not None:
        index = torch.arange(20)
        mask = (index[:, None] - index[None, :]).abs() > window
    with torch.no_grad():
        ours = block._attend(query, key, value, mask)
        reference, _ = block.attention(query, key, value, attn_mask=mask, need_weights=False)
    assert torch.allclose(ours, reference, atol=1e-5)


@pytest.mark.parametrize("fusion", list(FUSIONS))
def test_padded_batch_matches_each_item_alone(tera, fusion):
    vocoder = make_vocoder(tera, fusion).eval()
    g = torch.Generator().manual_seed(2)
    long, short = torch.randn(9600, generator=g), torch.randn(5120, generator=g)
    batch = torch.zeros(2, 9600)
    batch[0], batch[1, :5120] = long, short
    with torch.no_grad():
        out = vocoder(batch, torch.tensor([1.0, 5120 / 9600]))
        alone = vocoder(short[None])[0]
    assert torch.allclose(out[1, :5120], alone, atol=1e-4)
    assert torch.all(out[1, 5120:] == 0)


@pytest.mark.parametrize("seconds", [0.3, 0.37, 1.0, 2.5, 5.0])
def test_output_length_equals_input_length(tera, seconds):
    vocoder = make_vocoder(tera, "cross_attention").eval()
    n = int(seconds * 16000) + 7
    with torch.no_grad():
        assert vocoder(torch.randn(1, n)).shape == (1, n)


def test_coarser_encoder_is_repeated_onto_the_spectrum_grid(tiny_hubert_ckpt):
    encoder = SSLEncoder("hubert", ckpt=tiny_hubert_ckpt)
    vocoder = make_vocoder(encoder, "cross_attention").eval()
    assert vocoder.ssl_repeat == 2
    with torch.no_grad():
        features = vocoder.features(torch.randn(1, 16000))
        assert vocoder(torch.randn(2, 12345)).shape == (2, 12345)
    assert features.shape == (1, 101, 32)


def test_clean_embedding_takes_the_ssl_stream_from_the_clean_waveform(tera):
    vocoder = make_vocoder(tera, "cross_attention", clean_embedding=True).eval()
    g = torch.Generator().manual_seed(3)
    noisy, clean_a, clean_b = (torch.randn(1, 8000, generator=g) for _ in range(3))
    with torch.no_grad():
        out_a = vocoder(noisy, clean=clean_a)
        out_b = vocoder(noisy, clean=clean_b)
        again = vocoder(noisy, clean=clean_a)
    assert torch.equal(out_a, again)
    assert not torch.allclose(out_a, out_b)
    with pytest.raises(ValueError, match="needs the clean waveform"):
        vocoder(noisy)


def test_ablation_options_change_the_model(tera):
    last = make_vocoder(tera, "cross_attention", layer_combination={"last_only": True})
    assert last.layer_weights.tolist() == [0.0, 0.0, 1.0]
    magnitude = make_vocoder(tera, "additive", spectrum="magnitude")
    assert magnitude.spectrum.kind == "magnitude"
    v1 = spectrum_aware_vocoder(tera, d_model=32, fusion_options={"num_heads": 2})
    assert v1.hop_length == 160
    assert v1.generator.conv_pre.conv.out_channels == 512
    with pytest.raises(ValueError, match="unknown HiFi-GAN preset"):
        spectrum_aware_vocoder(tera, generator="v9")


def test_remove_weight_norm_keeps_the_output(tera):
    vocoder = make_vocoder(tera, "film").eval()
    x = torch.randn(1, 4000)
    with torch.no_grad():
        before = vocoder(x)
        vocoder.remove_weight_norm()
        after = vocoder(x)
    assert torch.allclose(before, after, atol=1e-5)


def test_checkpoints_leave_out_the_frozen_encoder_and_refuse_another_one(tmp_path, tera):
    from speechbrain_sslse.testing import write_tiny_tera

    vocoder = make_vocoder(tera, "cross_attention")
    state = vocoder.state_dict()
    assert not [k for k in state if k.startswith("encoder.upstream.")]
    assert "encoder.fingerprint" in state
    same = make_vocoder(SSLEncoder("tera", ckpt=tera_ckpt_path(tera)), "cross_attention")
    same.load_state_dict(state, strict=True)
    for key, value in same.state_dict().items():
        assert torch.equal(value, state[key])
    other = SSLEncoder("tera", ckpt=write_tiny_tera(tmp_path / "other.ckpt", seed=5))
    with pytest.raises(CheckpointError, match="trained on another SSL encoder"):
        make_vocoder(other, "cross_attention").load_state_dict(state)


def tera_ckpt_path(encoder):
    return encoder._ckpt_path


def _speech_like(generator, n=2, seconds=0.5, sr=16000):
    """Harmonic complexes (120-220 Hz fundamentals, 1/k amplitudes) with a syllable-rate envelope."""
    t = torch.arange(int(seconds * sr)) / sr
    f0 = 120 + 100 * torch.rand(n, 1, generator=generator)
    wav = sum(torch.sin(2 * torch.pi * k * f0 * t) / k for k in range(1, 20))
    return (wav * (0.6 + 0.4 * torch.sin(2 * torch.pi * 4 * t))).unsqueeze(1)


def test_spectrogram_discriminator_speaks_speechbrains_losses_and_learns_to_tell_noise_from_speech():
    from speechbrain.lobes.models.HifiGAN import (
        DiscriminatorLoss,
        GeneratorLoss,
        MelganFeatureLoss,
        MSEDLoss,
        MSEGLoss,
    )

    from speechbrain_sslse.lobes import MultiResolutionSpectrogramDiscriminator

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    disc = MultiResolutionSpectrogramDiscriminator(channels=8)
    real = _speech_like(g)
    # Generated stand-in: the speech with white noise at 0 dB SNR, at another level (the
    # discriminator normalises it away, so loudness is not what it learns).
    fake = 3.0 * (real + real.std() * torch.randn(real.shape, generator=g))
    scores, feats = disc(torch.cat([fake, real]))
    assert len(scores) == len(feats) == 3 and all(s.shape[0] == 4 for s in scores)
    d_loss = DiscriminatorLoss(msed_loss=MSEDLoss())
    losses = d_loss([s[:2] for s in scores], [s[2:] for s in scores])
    assert torch.isfinite(losses["D_loss"])
    g_loss = GeneratorLoss(mseg_loss=MSEGLoss(), feat_match_loss=MelganFeatureLoss())(
        fake, real, scores_fake=[s[:2] for s in scores], feats_fake=[f for f in feats], feats_real=feats
    )
    assert torch.isfinite(g_loss["G_loss"])

    optimizer = torch.optim.AdamW(disc.parameters(), 2e-3, betas=(0.8, 0.99))
    for _ in range(40):
        scores, _ = disc(torch.cat([fake, real]))
        loss = d_loss([s[:2] for s in scores], [s[2:] for s in scores])["D_loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        fresh_real = _speech_like(g)
        fresh_fake = fresh_real + fresh_real.std() * torch.randn(fresh_real.shape, generator=g)
        mean = lambda x: float(torch.stack([s.mean() for s in disc(x)[0]]).mean())  # noqa: E731
        assert mean(fresh_real) - mean(fresh_fake) > 0.5  # LSGAN targets: 1 real, 0 generated


def test_discriminator_width_one_is_speechbrains_and_narrow_ones_are_cheaper():
    from speechbrain.lobes.models.HifiGAN import HifiganDiscriminator as SpeechBrainDiscriminator

    from speechbrain_sslse.lobes import HifiganDiscriminator

    def count(module):
        return sum(p.numel() for p in module.parameters())

    full, narrow = HifiganDiscriminator(1.0), HifiganDiscriminator(0.125)
    assert count(full) == count(SpeechBrainDiscriminator())
    assert count(narrow) < count(full) / 40
    x = torch.randn(2, 1, 4000)
    reference_scores, reference_feats = SpeechBrainDiscriminator()(x)
    scores, feats = narrow(x)
    assert [s.shape for s in scores] == [s.shape for s in reference_scores]
    assert [len(f) for f in feats] == [len(f) for f in reference_feats]
