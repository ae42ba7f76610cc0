"""Frozen self-supervised speech encoders: any s3prl upstream, returning all hidden states.

:class:`SSLEncoder` wraps an s3prl upstream chosen by name (TERA by default; HuBERT,
WavLM, wav2vec 2.0 and every other s3prl upstream), resolved by the registry of
:mod:`.upstreams`. The other concepts that lived in this module have their own now and
are re-exported here under their former names: the upstream registry (:mod:`.upstreams`),
the length utilities (:mod:`.lengths`) and :class:`LayerCombination`
(:mod:`.layer_combination`); TERA built from its architecture: :mod:`.upstream_architecture`.

Authors
 * speechbrain-sslse contributors
"""

import contextlib
import functools
import logging
import warnings
from pathlib import Path

import torch
from speechbrain.utils.checkpoints import (
    hook_on_loading_state_dict_checkpoint,
    mark_as_transfer,
    register_checkpoint_hooks,
)
from torch import nn

from .layer_combination import LayerCombination
from .lengths import absolute_lengths, length_groups
from .upstream_architecture import build_from_architecture, load_states, load_weights, plain
from .upstreams import (
    UpstreamUnavailableError,
    _local_loader_name,
    _quiet,
    list_upstreams,
    resolve_upstream,
    upstream_kind,
)

__all__ = [
    "SSLEncoder",
    "LayerCombination",
    "list_upstreams",
    "resolve_upstream",
    "upstream_kind",
    "absolute_lengths",
    "length_groups",
    "UpstreamUnavailableError",
    "CheckpointError",
]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000


class CheckpointError(RuntimeError):
    """A checkpoint that s3prl cannot read (missing, corrupt, or of another model)."""


@register_checkpoint_hooks
class SSLEncoder(nn.Module):
    """An s3prl upstream returning all of its hidden states, frozen by default.

    The upstream is chosen by its s3prl name. Checkpoints on disk load through
    s3prl's own loaders: ``upstream="tera_local"`` (or ``"hubert_local"``,
    ``"wavlm_local"``, ``"wav2vec2_local"``, ...) with ``ckpt=PATH``, or a model
    name with ``ckpt=PATH`` (``upstream="tera", ckpt=PATH`` means ``tera_local``).
    A model name without ``ckpt`` would download from the s3prl model hub, which is
    refused unless ``allow_download=True``. With ``architecture`` instead of ``ckpt``
    (TERA), the upstream is built from its architecture with random weights, opening no
    file, and :meth:`load_checkpoint` loads the weights later: what a model folder's
    ``hyperparams.yaml`` does, its ``pretrainer`` loading ``ssl.ckpt``.

    Each waveform is encoded exactly as it would be alone: waveforms of equal
    length are encoded together, those of different lengths separately (s3prl's
    batched feature extraction and normalisations would otherwise let the padding
    of one item change the features of another). Frames beyond an item's own
    frame count are zero.

    When frozen (the default), the upstream stays in eval mode even when the parent
    module calls ``.train()``, its parameters have ``requires_grad=False`` and its
    forward runs under ``torch.no_grad()``, so frozen weights never appear as unused
    parameters under DistributedDataParallel.

    Arguments
    ---------
    upstream : str
        An s3prl upstream name (see :func:`list_upstreams`); TERA by default.
    ckpt : str or Path, optional
        A local checkpoint in the format of the upstream's ``*_local`` loader.
    freeze : bool
        Keep the upstream frozen (see above).
    allow_download : bool
        Let hub names download their checkpoint (needs access to the s3prl model hub).
        Refused while an untrusted model folder loads.
    trust_checkpoint : bool, optional
        Whether ``ckpt`` may be unpickled when it holds more than tensors and plain
        values (it is always read with ``weights_only=True`` first). Default: yes, with
        a warning, for a checkpoint you name; while a model folder loads, the folder's
        trust decides (``trust_model_code``, see :mod:`speechbrain_sslse.trust`).
    architecture : dict, optional
        The upstream's architecture, as
        :func:`~speechbrain_sslse.lobes.upstream_architecture.checkpoint_architecture` reads
        it from a checkpoint (TERA only; not with ``ckpt``).
    **upstream_kwargs
        Passed to the s3prl entry function.

    Attributes
    ----------
    num_layers : int
        Number of hidden states L (TERA base: 4 = input projection + 3 layers;
        HuBERT / WavLM / wav2vec 2.0 base: 13).
    hidden_size : int
        Size D of each hidden state.
    hop_length : int
        Samples per frame at 16 kHz (TERA: 160; HuBERT and the like: 320).
    name : str
        The s3prl entry that built the upstream.

    Example
    -------
    >>> import tempfile, os
    >>> from speechbrain_sslse.testing import write_tiny_tera
    >>> ckpt = write_tiny_tera(os.path.join(tempfile.mkdtemp(), "tera.ckpt"), seed=0)
    >>> encoder = SSLEncoder("tera", ckpt=ckpt)
    >>> encoder.name, encoder.num_layers, encoder.hidden_size, encoder.hop_length
    ('tera_local', 3, 32, 160)
    >>> hidden, frame_lens = encoder(torch.randn(2, 8000), torch.tensor([1.0, 0.5]))
    >>> tuple(hidden.shape), frame_lens.tolist()
    ((3, 2, 51, 32), [51, 26])
    """

    def __init__(
        self,
        upstream="tera",
        ckpt=None,
        freeze=True,
        allow_download=False,
        trust_checkpoint=None,
        architecture=None,
        **upstream_kwargs,
    ):
        from ..trust import TRUST_FIX, in_model_folder, weights_only_loads

        super().__init__()
        self.freeze = freeze
        self.trust_checkpoint = trust_checkpoint
        self._ckpt_path = None if ckpt is None else str(ckpt)
        self.architecture = None if architecture is None else plain(architecture)
        self._weights_loaded = architecture is None  # else: by load_checkpoint
        if allow_download and in_model_folder() is False:
            raise CheckpointError(
                f"a model folder may not download its SSL encoder ({upstream}); {TRUST_FIX}"
            )
        if architecture is not None:
            if ckpt is not None or upstream_kwargs:
                raise ValueError(
                    "SSLEncoder(architecture=...) builds the upstream with random weights, loaded later "
                    "by load_checkpoint: it takes no ckpt and no upstream options"
                )
            self.name = _local_loader_name(upstream)
            resolve_upstream(self.name)  # s3prl's module, after the project's patches (_compat)
            make = functools.partial(build_from_architecture, self.name, self.architecture)
        else:
            self.name, args = self._select(upstream, ckpt, allow_download)
            make = functools.partial(resolve_upstream(self.name), *args, **upstream_kwargs)

        def build(weights_only):
            quiet = _quiet("building " + self.name)
            safe = weights_only_loads() if weights_only else contextlib.nullcontext()
            with torch.random.fork_rng(devices=[]), quiet, warnings.catch_warnings(), safe:
                # s3prl's feature extractors build mel filterbanks with empty bands; harmless
                warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero values")
                return make()

        self.upstream = self._weights_only_first(ckpt, build)  # s3prl unpickles checkpoints
        if freeze:
            for param in self.upstream.parameters():
                param.requires_grad_(False)
            self.upstream.eval()
        self.num_layers, self.hidden_size, self.hop_length = self._probe()
        # Identifies the upstream weights in checkpoints of the modules built on it.
        self.register_buffer("fingerprint", self._fingerprint())
        self._register_state_dict_hook(SSLEncoder._drop_frozen_upstream)
        self._register_load_state_dict_pre_hook(self._restore_frozen_upstream, with_module=False)

    @torch.no_grad()
    def _fingerprint(self):
        """``[3]`` float64: number, sum and sum of squares of the upstream's parameters.

        Buffers are left out: some upstreams fill buffers with random values when built.
        """
        stats = torch.zeros(3, dtype=torch.float64)
        for param in self.upstream.parameters():
            value = param.detach().double().cpu()
            stats += torch.stack([value.new_tensor(value.numel()), value.sum(), value.pow(2).sum()])
        return stats

    @staticmethod
    def _drop_frozen_upstream(module, state_dict, prefix, local_metadata):
        """A frozen upstream's weights stay out of checkpoints (they come from its own file)."""
        if module.freeze:
            for key in [k for k in state_dict if k.startswith(prefix + "upstream.")]:
                del state_dict[key]
        return state_dict

    def _restore_frozen_upstream(self, state_dict, prefix, *args):
        """Checks the fingerprint of a checkpoint and fills in the frozen upstream's weights."""
        saved = state_dict.get(prefix + "fingerprint")
        if saved is not None and self.freeze and not self._weights_loaded:
            raise CheckpointError(
                f"the weights of this SSL encoder ({self.name}, built from its architecture) are not loaded "
                "yet: load its checkpoint first (load_checkpoint; a model folder's pretrainer lists "
                "ssl_encoder before vocoder)"
            )
        if saved is not None and not torch.allclose(
            saved.double().cpu(), self.fingerprint.double().cpu(), rtol=1e-6, atol=1e-6
        ):
            raise CheckpointError(
                f"this checkpoint was trained on another SSL encoder than {self.name} "
                f"(weights fingerprint {saved.tolist()} != {self.fingerprint.tolist()}). Load it with the "
                f"SSL checkpoint it was trained with (the ssl_ckpt of its training run)."
            )
        if self.freeze:
            for key, value in self.upstream.state_dict().items():
                state_dict.setdefault(prefix + "upstream." + key, value)

    @mark_as_transfer
    def load_checkpoint(self, path):
        """Loads the encoder's weights from ``path`` (SpeechBrain's ``Pretrainer`` calls this).

        Built from ``architecture``, ``path`` is a checkpoint in s3prl's format of that
        architecture (a model folder's ``ssl.ckpt``): the upstream's weights are loaded
        from it and the fingerprint follows them. Otherwise ``path`` is a state dict of
        this module, loaded as SpeechBrain transfers parameters (non-strict). Either way
        the file is read as ``ckpt`` is: weights only first, with pickle only where
        trusted (``trust_checkpoint``; a model folder's trust while it loads).

        Arguments
        ---------
        path : str or Path
            The checkpoint.

        Example
        -------
        >>> import tempfile, os
        >>> from speechbrain_sslse.testing import write_tiny_tera
        >>> from speechbrain_sslse.lobes.upstream_architecture import checkpoint_architecture
        >>> ckpt = write_tiny_tera(os.path.join(tempfile.mkdtemp(), "tera.ckpt"), seed=0)
        >>> architecture = checkpoint_architecture(torch.load(ckpt, weights_only=True))
        >>> encoder = SSLEncoder("tera_local", architecture=architecture)  # random weights
        >>> encoder.load_checkpoint(ckpt)
        >>> torch.equal(encoder.fingerprint, SSLEncoder("tera", ckpt=ckpt).fingerprint)
        True
        """
        states = self._weights_only_first(path, functools.partial(load_states, path))
        if self.architecture is None:
            state = hook_on_loading_state_dict_checkpoint(states)
            missing, unused = self.load_state_dict(state, strict=False)  # as SpeechBrain transfers
            for key in missing + unused:
                logger.warning("%s: %s parameters %s", path, "no" if key in missing else "unused", key)
            return
        try:
            with _quiet("loading " + str(path)):
                load_weights(self.upstream, self.architecture, states)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise CheckpointError(
                f"{path} is not a {self.name} checkpoint of this SSL encoder's architecture ({err}); "
                "load the checkpoint the model was trained with (its ssl.ckpt)"
            ) from None
        self.fingerprint.copy_(self._fingerprint())
        self._ckpt_path, self._weights_loaded = str(path), True

    def _weights_only_first(self, ckpt, attempt):
        """``attempt(True)`` (weights only); ``attempt(False)`` if ``ckpt`` holds pickles and is trusted."""
        from ..trust import TRUST_FIX, checkpoint_trust, is_pickle_refusal

        try:
            try:
                return attempt(True)
            except Exception as err:
                if ckpt is None or not is_pickle_refusal(err):
                    raise
            if not checkpoint_trust(self.trust_checkpoint):
                raise CheckpointError(
                    f"{ckpt} holds pickled Python objects besides tensors and plain values, and "
                    f"unpickling them can run code: it was not loaded; {TRUST_FIX}"
                )
            logger.warning(
                "%s holds pickled Python objects besides tensors and plain values: loading it with "
                "pickle (which can run code), as s3prl does; only use checkpoints you trust",
                ckpt,
            )
            return attempt(False)
        except CheckpointError:
            raise
        except Exception as err:
            if ckpt is None:
                raise
            raise CheckpointError(
                f"s3prl's {self.name} cannot load the checkpoint {ckpt} "
                f"({type(err).__name__}: {err}). Pass a {self.name} checkpoint in s3prl's format "
                f"(speechbrain_sslse.testing writes TERA, HuBERT, WavLM and wav2vec 2.0 ones), "
                f"or pick the upstream that matches the file."
            ) from err

    @staticmethod
    def _select(upstream, ckpt, allow_download):
        """The entry name to call and its positional arguments."""
        if ckpt is not None:
            path = Path(ckpt)
            if not path.is_file():
                raise FileNotFoundError(
                    f"SSL checkpoint not found: {path}. Pass the path of a local s3prl checkpoint "
                    f"(for TERA, e.g. states-1000000.ckpt)."
                )
            return _local_loader_name(upstream), (str(path),)
        kind = upstream_kind(upstream)
        if kind == "local":
            raise ValueError(f"upstream {upstream!r} loads a local checkpoint: pass ckpt=PATH")
        if kind == "hub" and not allow_download:
            raise UpstreamUnavailableError(
                f"s3prl upstream {upstream!r} would download its checkpoint from the s3prl model hub, "
                f"and there is no hub access here. Pass a local checkpoint instead: "
                f"SSLEncoder({upstream!r}, ckpt=PATH) loads it with s3prl's "
                f"{_local_loader_name(upstream)} (speechbrain_sslse.testing writes such files). "
                f"Where the hub is reachable, allow_download=True downloads it."
            )
        return upstream, ()

    @torch.no_grad()
    def _probe(self):
        """Number and size of the hidden states and the frame hop, from a 1 s dry run."""
        was_training = self.upstream.training
        self.upstream.eval()
        noise = torch.randn(1, SAMPLE_RATE, generator=torch.Generator().manual_seed(0))
        device = next(self.upstream.parameters(), torch.empty(0)).device
        hidden = self._encode(noise.to(device))
        try:
            hop = int(self.upstream.get_downsample_rates("hidden_states"))
        except (AttributeError, NotImplementedError, TypeError):
            longer = self._encode(torch.randn(1, 2 * SAMPLE_RATE, generator=torch.Generator()).to(device))
            hop = round(SAMPLE_RATE / (longer.shape[2] - hidden.shape[2]))
        self.upstream.train(was_training)
        return hidden.shape[0], hidden.shape[-1], hop

    def _encode(self, wavs):
        """All hidden states ``[L, b, F, D]`` of equal-length waveforms ``[b, T]``."""
        try:
            output = self.upstream(list(wavs))
        except Exception as err:
            raise RuntimeError(
                f"SSL upstream {self.name} failed on {wavs.shape[0]} waveform(s) of "
                f"{wavs.shape[1]} samples ({wavs.shape[1] / SAMPLE_RATE:.3f} s): {err}"
            ) from err
        return torch.stack(list(output["hidden_states"]), dim=0)

    def train(self, mode=True):
        """Sets training mode; a frozen upstream stays in eval mode."""
        super().train(mode)
        if self.freeze:
            self.upstream.eval()
        return self

    def forward(self, wavs, wav_lens=None):
        """Encodes a padded batch.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, T]`` waveforms at 16 kHz.
        wav_lens : torch.Tensor, optional
            ``[B]`` SpeechBrain relative lengths in (0, 1].

        Returns
        -------
        hidden : torch.Tensor
            ``[L, B, F, D]`` hidden states, zero beyond each item's frame count.
        frame_lens : torch.Tensor
            ``[B]`` long, the absolute frame count of each item.
        """
        if wavs.dim() != 2:
            raise ValueError(f"wavs must have shape [B, T], got {tuple(wavs.shape)}")
        batch, max_len = wavs.shape
        lengths = absolute_lengths(wav_lens, max_len, batch, wavs.device)
        grad = torch.is_grad_enabled() and not self.freeze
        encoded = []
        with torch.set_grad_enabled(grad):
            for length, indices in length_groups(lengths):
                encoded.append((indices, self._encode(wavs[indices, :length])))
        num_frames = max(hidden.shape[2] for _, hidden in encoded)
        layers, _, _, dim = encoded[0][1].shape
        hidden = wavs.new_zeros(layers, batch, num_frames, dim, dtype=encoded[0][1].dtype)
        frame_lens = torch.zeros(batch, dtype=torch.long, device=wavs.device)
        for indices, group in encoded:
            index = torch.tensor(indices, device=wavs.device)
            hidden[:, index, : group.shape[2]] = group
            frame_lens[index] = group.shape[2]
        return hidden, frame_lens
