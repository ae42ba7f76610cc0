"""Frozen self-supervised speech encoders (any s3prl upstream) and their layer combination.

:class:`SSLEncoder` wraps an s3prl upstream chosen by name (TERA by default;
HuBERT, WavLM, wav2vec 2.0 and every other s3prl upstream) and returns all of its
hidden states; :class:`LayerCombination` learns how to combine them.

s3prl's hub module (``s3prl.hub``) imports every upstream module at once, and
fails with torchaudio >= 2.9 (one unrelated upstream calls the removed
``torchaudio.set_audio_backend``). The names are resolved here from the individual
``s3prl.upstream.<module>.hubconf`` files instead: :func:`list_upstreams` reads them
without importing anything, and :func:`resolve_upstream` imports only the module
that defines the requested name, after :mod:`speechbrain_sslse._compat` has applied
its patches (the two torchaudio names that s3prl modules still import; for TERA's
family, the vectorised position table).

Authors
 * speechbrain-sslse contributors
"""

import ast
import contextlib
import difflib
import functools
import importlib
import io
import logging
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import _compat

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

# Modules whose upstreams are hand-crafted features: no weights, nothing to download.
FEATURE_MODULES = ("baseline", "log_stft")
LOCAL_SUFFIXES = ("_local", "_custom")


class UpstreamUnavailableError(RuntimeError):
    """An s3prl upstream that cannot be used here (no hub access, or its module fails to import)."""


class CheckpointError(RuntimeError):
    """A checkpoint that s3prl cannot read (missing, corrupt, or of another model)."""


# ---------------------------------------------------------------------------
# Registry of s3prl upstream names
# ---------------------------------------------------------------------------
def _s3prl_upstream_root():
    import s3prl

    return Path(s3prl.__file__).parent / "upstream"


@functools.cache
def _registry():
    """Maps every public s3prl upstream name to the ``s3prl.upstream`` module defining it.

    The ``hubconf.py`` files are parsed, not imported. A name defined in two modules
    (``wav2vec2_local`` is also re-defined by ``vq_wav2vec``) goes to the module whose
    name it starts with.
    """
    candidates = {}
    for hubconf in sorted(_s3prl_upstream_root().glob("*/hubconf.py")):
        module = hubconf.parent.name
        tree = ast.parse(hubconf.read_text(encoding="utf-8"))
        names = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
        for node in tree.body:  # re-exported entries, e.g. ``apc_url as vq_apc_url``
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("hubconf"):
                names.extend(alias.asname or alias.name for alias in node.names)
        for name in names:
            if not name.startswith("_") and module not in candidates.setdefault(name, []):
                candidates[name].append(module)

    def owner(name, modules):
        prefixed = [m for m in modules if name == m or name.startswith(m + "_")]
        return max(prefixed, key=len) if prefixed else modules[-1]

    return {name: owner(name, modules) for name, modules in sorted(candidates.items())}


def upstream_kind(name):
    """How an s3prl upstream name gets its weights.

    Arguments
    ---------
    name : str
        An s3prl upstream name.

    Returns
    -------
    str
        ``"local"`` (``*_local`` / ``*_custom``: loads the file given as ``ckpt``),
        ``"features"`` (hand-crafted features, no weights) or ``"hub"`` (downloads
        its checkpoint from the s3prl model hub).

    Example
    -------
    >>> upstream_kind("tera_local"), upstream_kind("fbank"), upstream_kind("hubert")
    ('local', 'features', 'hub')
    """
    module = _module_of(name)
    if name.endswith(LOCAL_SUFFIXES):
        return "local"
    if module in FEATURE_MODULES:
        return "features"
    return "hub"


def list_upstreams(kind=None):
    """Names of the s3prl upstreams, read from s3prl's hubconf files (nothing is imported).

    Arguments
    ---------
    kind : str, optional
        Keep only ``"local"``, ``"features"`` or ``"hub"`` names (see :func:`upstream_kind`).

    Returns
    -------
    list of str
        Sorted names.

    Example
    -------
    >>> names = list_upstreams()
    >>> "tera" in names and "hubert_local" in names and "wavlm_base_plus" in names
    True
    >>> {"tera_local", "hubert_local", "wavlm_local", "wav2vec2_local"} <= set(list_upstreams("local"))
    True
    """
    kinds = ("local", "features", "hub")
    if kind is not None and kind not in kinds:
        raise ValueError(f"unknown upstream kind {kind!r}: expected one of {kinds}")
    return [name for name in _registry() if kind is None or upstream_kind(name) == kind]


def resolve_upstream(name):
    """The s3prl entry function called ``name``, imported from its own hubconf module.

    Nothing is downloaded or built: this only imports the module.

    Arguments
    ---------
    name : str
        An s3prl upstream name (see :func:`list_upstreams`).

    Returns
    -------
    callable
        The hubconf function (calling it builds the upstream).

    Raises
    ------
    ValueError
        Unknown name (the message lists close matches and the local loaders).
    UpstreamUnavailableError
        The module defining ``name`` cannot be imported in this environment.

    Example
    -------
    >>> resolve_upstream("tera_local").__module__
    's3prl.upstream.tera.hubconf'
    """
    module = _module_of(name)
    module_name = f"s3prl.upstream.{module}.hubconf"
    _compat.install()
    if module in ("tera", "mockingjay", "audio_albert"):
        _compat.install_tera()
    try:
        with _quiet("importing " + module_name):
            hubconf = importlib.import_module(module_name)
    except Exception as err:
        raise UpstreamUnavailableError(
            f"s3prl upstream {name!r} is defined in {module_name}, which cannot be imported with the "
            f"installed packages ({type(err).__name__}: {err}); choose another upstream"
        ) from err
    function = getattr(hubconf, name, None)
    if not callable(function):
        raise UpstreamUnavailableError(f"{module_name} defines no callable {name!r}")
    return function


def _module_of(name):
    registry = _registry()
    if name not in registry:
        close = difflib.get_close_matches(str(name), list(registry), n=5, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        local = ", ".join(n for n in registry if n.endswith("_local"))
        raise ValueError(
            f"unknown s3prl upstream {name!r}.{hint} Accepted: any of the {len(registry)} s3prl "
            f"upstream names (speechbrain_sslse.lobes.list_upstreams()); checkpoints on disk load "
            f"through the local loaders ({local}) with ckpt=PATH, or through a model name with "
            f"ckpt=PATH (e.g. upstream='tera', ckpt='states-1000000.ckpt')."
        )
    return registry[name]


def _local_loader_name(name):
    """The ``*_local`` (or ``*_custom``) entry that loads a checkpoint for model ``name``."""
    if name.endswith(LOCAL_SUFFIXES):
        return name
    registry = _registry()
    module = _module_of(name)
    for candidate in (f"{name}_local", f"{module}_local", f"{module}_custom"):
        if registry.get(candidate) == module:
            return candidate
    raise ValueError(
        f"s3prl upstream {name!r} has no loader for local checkpoints; accepted local loaders: "
        f"{', '.join(list_upstreams('local'))}"
    )


@contextlib.contextmanager
def _quiet(what):
    """Captures what s3prl prints on stdout while building, and logs it at debug level."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    if buffer.getvalue().strip():
        logger.debug("%s: %s", what, buffer.getvalue().strip())


# ---------------------------------------------------------------------------
# Lengths
# ---------------------------------------------------------------------------
def absolute_lengths(wav_lens, max_len, batch_size=None, device=None):
    """SpeechBrain relative lengths in (0, 1] to sample counts (``round(rel * max_len)``).

    Arguments
    ---------
    wav_lens : torch.Tensor or None
        ``[B]`` relative lengths; ``None`` means every item fills ``max_len``.
    max_len : int
        Padded length ``T``.
    batch_size : int, optional
        ``B``, needed when ``wav_lens`` is None.
    device : torch.device, optional
        Device of the result when ``wav_lens`` is None.

    Returns
    -------
    torch.Tensor
        ``[B]`` long, each in ``[1, max_len]``.

    Example
    -------
    >>> absolute_lengths(torch.tensor([1.0, 0.5, 0.333]), 16000).tolist()
    [16000, 8000, 5328]
    """
    if wav_lens is None:
        return torch.full((batch_size,), max_len, dtype=torch.long, device=device)
    wav_lens = torch.as_tensor(wav_lens)
    if wav_lens.dim() != 1 or (batch_size is not None and wav_lens.numel() != batch_size):
        raise ValueError(f"wav_lens must have shape [B] = [{batch_size}], got {tuple(wav_lens.shape)}")
    if bool(((wav_lens <= 0) | (wav_lens > 1 + 1e-6)).any()):
        raise ValueError(f"wav_lens must be SpeechBrain relative lengths in (0, 1], got {wav_lens.tolist()}")
    return torch.round(wav_lens.double() * max_len).long().clamp(1, max_len)


def length_groups(lengths):
    """Groups batch indices by equal length, in order of first appearance.

    Items of equal length run together through a model; items of different
    lengths run separately, so that no model ever sees another item's padding.

    Arguments
    ---------
    lengths : torch.Tensor
        ``[B]`` integer lengths.

    Returns
    -------
    list of (int, list of int)
        ``(length, indices)`` pairs.

    Example
    -------
    >>> length_groups(torch.tensor([5, 3, 5, 2]))
    [(5, [0, 2]), (3, [1]), (2, [3])]
    """
    groups = {}
    for index, length in enumerate(lengths.tolist()):
        groups.setdefault(int(length), []).append(index)
    return list(groups.items())


# ---------------------------------------------------------------------------
# Encoder
# ---------------------------------------------------------------------------
class SSLEncoder(nn.Module):
    """An s3prl upstream returning all of its hidden states, frozen by default.

    The upstream is chosen by its s3prl name. Checkpoints on disk load through
    s3prl's own loaders: ``upstream="tera_local"`` (or ``"hubert_local"``,
    ``"wavlm_local"``, ``"wav2vec2_local"``, ...) with ``ckpt=PATH``, or a model
    name with ``ckpt=PATH`` (``upstream="tera", ckpt=PATH`` means ``tera_local``).
    A model name without ``ckpt`` would download from the s3prl model hub, which is
    refused unless ``allow_download=True``.

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
        **upstream_kwargs,
    ):
        from ..trust import (
            TRUST_FIX,
            checkpoint_trust,
            in_model_folder,
            is_pickle_refusal,
            weights_only_loads,
        )

        super().__init__()
        self.freeze = freeze
        self._ckpt_path = None if ckpt is None else str(ckpt)
        if allow_download and in_model_folder() is False:
            raise CheckpointError(
                f"a model folder may not download its SSL encoder ({upstream}); {TRUST_FIX}"
            )
        self.name, args = self._select(upstream, ckpt, allow_download)
        loader = resolve_upstream(self.name)

        def build(weights_only):
            quiet = _quiet("building " + self.name)
            safe = weights_only_loads() if weights_only else contextlib.nullcontext()
            with torch.random.fork_rng(devices=[]), quiet, warnings.catch_warnings(), safe:
                # s3prl's feature extractors build mel filterbanks with empty bands; harmless
                warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero values")
                return loader(*args, **upstream_kwargs)

        try:
            try:  # s3prl unpickles checkpoints: weights only first
                self.upstream = build(weights_only=True)
            except Exception as err:
                if ckpt is None or not is_pickle_refusal(err):
                    raise
                if not checkpoint_trust(trust_checkpoint):
                    raise CheckpointError(
                        f"{ckpt} holds pickled Python objects besides tensors and plain values, and "
                        f"unpickling them can run code: it was not loaded; {TRUST_FIX}"
                    ) from None
                logger.warning(
                    "%s holds pickled Python objects besides tensors and plain values: loading it with "
                    "pickle (which can run code), as s3prl does; only use checkpoints you trust",
                    ckpt,
                )
                self.upstream = build(weights_only=False)
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


# ---------------------------------------------------------------------------
# Layer combination
# ---------------------------------------------------------------------------
class LayerCombination(nn.Module):
    """Learned combination of SSL hidden states ``[L, B, F, D] -> [B, F, D]``.

    Modes:

    - ``"linear"`` (default): an unconstrained weighted sum, the weights starting at
      ``1 / L``. The learned layer weights of the spectrum-aware vocoder include
      negative values, which a softmax cannot represent.
    - ``"softmax"``: weights ``softmax(w)`` (s3prl / SpeechBrain weighted sum),
      starting uniform.
    - ``last_only=True``: the last hidden state alone, no parameters.

    Arguments
    ---------
    num_layers : int
        Number of hidden states L.
    mode : str
        ``"linear"`` or ``"softmax"``.
    layer_norm : bool
        Normalise each hidden state over its features (no affine parameters) first.
    last_only : bool
        Use the last hidden state only.

    Example
    -------
    >>> combine = LayerCombination(4)
    >>> combine(torch.randn(4, 2, 10, 8)).shape
    torch.Size([2, 10, 8])
    >>> combine.weights
    tensor([0.2500, 0.2500, 0.2500, 0.2500])
    >>> LayerCombination(4, last_only=True).weights
    tensor([0., 0., 0., 1.])
    """

    MODES = ("linear", "softmax")

    def __init__(self, num_layers, mode="linear", layer_norm=False, last_only=False):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"unknown layer combination mode {mode!r}: expected one of {self.MODES}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.num_layers = num_layers
        self.mode = mode
        self.layer_norm = layer_norm
        self.last_only = last_only
        if last_only:
            self.register_parameter("weight", None)
        elif mode == "linear":
            self.weight = nn.Parameter(torch.full((num_layers,), 1.0 / num_layers))
        else:
            self.weight = nn.Parameter(torch.zeros(num_layers))

    def _effective_weights(self):
        if self.last_only:
            weights = torch.zeros(self.num_layers)
            weights[-1] = 1.0
            return weights
        return self.weight.softmax(dim=0) if self.mode == "softmax" else self.weight

    @property
    def weights(self):
        """The effective per-layer weights, a detached 1-D CPU tensor of length L."""
        return self._effective_weights().detach().cpu().clone()

    def forward(self, hidden):
        """Combines the hidden states.

        Arguments
        ---------
        hidden : torch.Tensor
            ``[L, B, F, D]``.

        Returns
        -------
        torch.Tensor
            ``[B, F, D]``.
        """
        if hidden.dim() != 4 or hidden.shape[0] != self.num_layers:
            raise ValueError(
                f"expected hidden states [L={self.num_layers}, B, F, D], got {tuple(hidden.shape)}"
            )
        if self.last_only:
            hidden = hidden[-1:]
        if self.layer_norm:
            hidden = F.layer_norm(hidden, hidden.shape[-1:])
        if self.last_only:
            return hidden[0]
        weights = self._effective_weights().to(hidden.dtype)
        return torch.einsum("l,lbfd->bfd", weights, hidden)
