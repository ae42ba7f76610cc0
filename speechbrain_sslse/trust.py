"""What a model folder may run when it is loaded: the restricted loader.

A model folder's ``hyperparams.yaml`` is HyperPyYAML, which builds Python objects from
tags (``!new:``, ``!name:``, ``!apply:``, ...) and, through ruamel, ``!!python/...``;
its ``ssl.ckpt`` is read by s3prl with pickle. Both can run code. Model folders are
therefore loaded (:meth:`speechbrain_sslse.inference.SpectrumAwareEnhancer.from_hparams`,
``sslse-enhance --model``) with these rules, unless ``trust_model_code=True``
(``--trust-model-code``):

- **tags**: the YAML core tags (strings, numbers, booleans, null, maps, lists,
  timestamps, binary, merge keys), ``!ref``, ``!copy``, ``!PLACEHOLDER``, ``!tuple``
  (plain values only), and ``!new:``, ``!name:`` and ``!apply:`` of an allowed name.
  Refused: ``!!python/...``, ``!module:``, ``!applyref:``, ``!include:`` and unknown tags.
- **names**: under ``speechbrain.``, ``speechbrain_sslse.`` or ``torch.``, or in
  :data:`ALLOWED_NAMES`; each part a public identifier (no leading ``_``); it must
  resolve to a class, a function or a constant defined under those packages (``torch.os``
  and the like are refused), without reaching through a class's attributes; and it must
  not be in :data:`DENIED` (what runs commands, loads code, pickles or other models,
  downloads, or writes and deletes files).
- **checkpoints**: every file the ``pretrainer`` lists is read with
  ``torch.load(..., weights_only=True)``: ``ssl.ckpt`` too, by the SSL encoder's own
  transfer hook (:meth:`~speechbrain_sslse.lobes.SSLEncoder.load_checkpoint`), and an
  encoder that names its ``ckpt`` is built by s3prl's loaders with ``torch.load`` held to
  ``weights_only=True``; a file holding other pickled objects is refused. A model folder
  cannot download.

The rules are checked on the file as written and again after references and overrides
are resolved; a refusal names the file, the line and the fix (:class:`ModelCodeError`).
This is a guard against foreign code, not a sandbox: the allowed packages run with your
permissions.

Authors
 * speechbrain-sslse contributors
"""

import contextlib
import contextvars
import importlib
import inspect
import io
import logging
import pickle
import re
import types
from pathlib import Path

import ruamel.yaml
import torch

__all__ = [
    "ALLOWED_PREFIXES",
    "ALLOWED_NAMES",
    "DENIED",
    "ModelCodeError",
    "check_hparams",
    "load_model_hparams",
    "load_pretrained_weights",
    "model_folder_trust",
    "checkpoint_trust",
    "weights_only_loads",
    "is_pickle_refusal",
]

logger = logging.getLogger(__name__)

ALLOWED_PREFIXES = ("speechbrain.", "speechbrain_sslse.", "torch.")
# Names outside the prefixes (or inside a denied module) that a model folder may use.
ALLOWED_NAMES = frozenset(
    {
        "speechbrain.utils.parameter_transfer.Pretrainer",  # its files are loaded weights-only, never fetched
        "collections.OrderedDict",
        "math.sqrt",
        "math.pi",
    }
)
# Refused even under the allowed prefixes (a name, or every name below it).
DENIED = (
    # run commands, load code or compiled extensions
    "torch.utils.cpp_extension",
    "torch.ops",
    "torch.classes",
    "torch.library",
    "torch.jit",
    "torch.package",
    "torch.fx",
    "torch.compile",
    "torch.compiler",
    "torch.export",
    "torch.onnx",
    "torch.multiprocessing",
    "torch.distributed",
    "torch.testing",
    "speechbrain.utils.superpowers",
    "speechbrain.utils.importutils",
    "speechbrain.utils.distributed",
    "speechbrain.utils.hpopt",
    "speechbrain.core",
    "speechbrain_sslse.trust",
    # load pickles, other models or files from the network
    "torch.hub",
    "torch.load",
    "torch.serialization",
    "torch.from_file",
    "speechbrain.inference",
    "speechbrain.utils.fetching",
    "speechbrain.utils.data_utils",
    "speechbrain.utils.checkpoints",
    "speechbrain.utils.parameter_transfer",
    "speechbrain.integrations",
    "speechbrain.k2_integration",
    "speechbrain.lobes.models.huggingface_transformers",
    "speechbrain.wordemb",
    "speechbrain_sslse.inference",
    "speechbrain_sslse.checkpointing",
    # write or delete files
    "torch.save",
    "torch.utils.data",
    "torch.utils.tensorboard",
    "torch.utils.benchmark",
    "torch.profiler",
    "torch.autograd.profiler",
    "torch.cuda.memory",
    "speechbrain.dataio",
    "speechbrain.tokenizers",
    "speechbrain.utils.train_logger",
    "speechbrain.utils.logger",
    "speechbrain.utils.profiling",
    "speechbrain_sslse.audio",
    "speechbrain_sslse.cli",
    "speechbrain_sslse.enhance_files",
    "speechbrain_sslse.corpus",
    "speechbrain_sslse.packaging",
    "speechbrain_sslse.ssl_checkpoints",
    "speechbrain_sslse.testing",
    "speechbrain_sslse.tera",
    "speechbrain_sslse.probing",
    "speechbrain_sslse.metrics",
)
_CORE = "tag:yaml.org,2002:"
CORE_TAGS = frozenset(
    _CORE + t
    for t in ("str", "int", "float", "bool", "null", "map", "seq", "omap", "pairs", "set", "timestamp")
    + ("binary", "merge", "value")
)
PLAIN_TAGS = frozenset({"!ref", "!copy", "!PLACEHOLDER", "!tuple"})
OBJECT_TAGS = ("!new:", "!name:", "!apply:")
_TUPLE = re.compile(r"^\(.*\)$", re.S)
TRUST_FIX = (
    "load it only if you trust its source, with --trust-model-code (sslse-enhance) "
    "or trust_model_code=True (SpectrumAwareEnhancer.from_hparams)"
)


class ModelCodeError(ValueError):
    """A model folder asks for code the restricted loader refuses; the message names the file and line."""


# --- names --------------------------------------------------------------------------------------


def _under(name, prefixes):
    return any(name == p.rstrip(".") or name.startswith(p.rstrip(".") + ".") for p in prefixes)


def _denied(name):
    return name not in ALLOWED_NAMES and _under(name, DENIED)


def _allowed_home(name):
    return name in ALLOWED_NAMES or (_under(name, ALLOWED_PREFIXES) and not _denied(name))


def name_problem(dotted, tag="!new:"):
    """Why ``dotted`` may not be used by a model folder with ``tag``, or None when it may.

    Example
    -------
    >>> name_problem("speechbrain_sslse.lobes.SSLEncoder") is None
    True
    >>> name_problem("subprocess.Popen")
    'not under speechbrain., speechbrain_sslse. or torch. (nor in the allow-list)'
    >>> name_problem("torch.os.system")
    'torch.os is the module os, outside the allowed packages'
    """
    parts = dotted.split(".")
    if not all(p.isidentifier() for p in parts):
        return "not a dotted Python name"
    if any(p.startswith("_") for p in parts):
        return "private names (a part starting with '_') are refused"
    if dotted not in ALLOWED_NAMES and not _under(dotted, ALLOWED_PREFIXES):
        return "not under speechbrain., speechbrain_sslse. or torch. (nor in the allow-list)"
    if _denied(dotted):
        return "in the deny-list (runs commands, loads code, pickles or models, downloads or writes files)"
    obj, start = None, len(parts)
    while start > 0:  # the longest importable module prefix
        try:
            obj = importlib.import_module(".".join(parts[:start]))
            break
        except ImportError:
            start -= 1
    if obj is None:  # (a damaged file, most likely: loading it fails with the import error)
        return None
    where = ".".join(parts[:start])
    for part in parts[start:]:
        if inspect.isclass(obj):
            return f"reaches through the class {where} to its attribute {part!r}"
        try:
            obj = getattr(obj, part)
        except AttributeError:  # as above
            return None
        where = f"{where}.{part}"
        if isinstance(obj, types.ModuleType) and not _allowed_home(obj.__name__):
            return f"{where} is the module {obj.__name__}, outside the allowed packages"
    if isinstance(obj, types.ModuleType):
        return "a module, not a class or a function"
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if callable(obj):
        if not isinstance(module, str) or not isinstance(qualname, str):
            return "a callable whose defining module is unknown"
        home = f"{module}.{qualname}"
        if home != dotted and not _allowed_home(home) and not _allowed_home(module):
            return f"is {home}, outside the allowed packages"
        if home != dotted and _denied(home):
            return f"is {home}, in the loader's deny-list"
    if tag == "!new:" and not inspect.isclass(obj):
        return "!new: builds classes; this is not a class"
    return None


# --- the YAML -------------------------------------------------------------------------------------


def _tag_problem(tag, node):
    """Why a node's tag is refused, or None."""
    if tag in CORE_TAGS:
        value = node.value if isinstance(node, ruamel.yaml.nodes.ScalarNode) else None
        if isinstance(value, str) and node.style is None and _TUPLE.match(value) and "!" in value:
            return "a tuple may hold plain values only (no tags)"
        return None
    if tag in PLAIN_TAGS:
        if tag == "!tuple" and "!" in str(node.value):
            return "a tuple may hold plain values only (no tags)"
        return None
    for prefix in OBJECT_TAGS:
        if tag.startswith(prefix):
            problem = name_problem(tag[len(prefix) :], prefix)
            return None if problem is None else f"{tag[len(prefix) :]}: {problem}"
    if tag.startswith(_CORE + "python/"):
        return "!!python tags build arbitrary Python objects"
    if tag.startswith(("!module:", "!applyref:", "!include:")):
        return f"{tag.split(':')[0]}: is not used by packaged models"
    return "unknown tag"


def check_hparams(text, source="hyperparams.yaml"):
    """Checks HyperPyYAML text against the restricted loader's rules (see the module docstring).

    Nothing is built: the text is only parsed.

    Arguments
    ---------
    text : str
        The YAML.
    source : str
        How to name it in messages (a path).

    Raises
    ------
    ModelCodeError
        The first refused tag or name, with its line.

    Example
    -------
    >>> check_hparams("enc: !new:speechbrain_sslse.lobes.LayerCombination\\n    num_layers: 2\\n")
    >>> check_hparams("x: 1\\ny: !apply:os.system [id]\\n", "model/hyperparams.yaml")
    Traceback (most recent call last):
    ...
    speechbrain_sslse.trust.ModelCodeError: model/hyperparams.yaml, line 2: !apply:os.system is refused ...
    """
    root = ruamel.yaml.YAML(typ="rt").compose(io.StringIO(text))
    stack, seen = [root] if root is not None else [], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        tag = str(node.tag)
        problem = _tag_problem(tag, node)
        if problem is not None:
            shown = "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag
            raise ModelCodeError(
                f"{source}, line {node.start_mark.line + 1}: {shown} is refused by the restricted "
                f"model loader ({problem}); {TRUST_FIX}"
            )
        if isinstance(node, ruamel.yaml.nodes.MappingNode):
            for key, value in reversed(node.value):
                stack += [value, key]
        elif isinstance(node, ruamel.yaml.nodes.SequenceNode):
            stack += list(reversed(node.value))


def load_model_hparams(path, overrides=None, trust=False, overrides_must_match=True):
    """Loads a model folder's ``hyperparams.yaml`` with HyperPyYAML, restricted unless ``trust``.

    The file is checked as written, then again once references and ``overrides`` are
    resolved, before anything is built; objects are built with SSL checkpoints read
    weights-only (see :func:`model_folder_trust`).

    Arguments
    ---------
    path : str or Path
        The YAML file.
    overrides : dict, optional
        HyperPyYAML overrides (e.g. ``{"model_dir": folder}``).
    trust : bool
        Skip the restrictions (the folder's code runs as written).
    overrides_must_match : bool
        As for ``hyperpyyaml.load_hyperpyyaml``.

    Returns
    -------
    dict
        The hyperparameters, objects built.

    Raises
    ------
    ModelCodeError
        A tag or name the loader refuses (file and line named).
    """
    from hyperpyyaml import load_hyperpyyaml, resolve_references

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    with model_folder_trust(trust):
        if trust:
            with open(path, encoding="utf-8") as stream:  # (!include: relative to the file)
                return load_hyperpyyaml(stream, overrides, overrides_must_match=overrides_must_match)
        check_hparams(text, str(path))
        if isinstance(overrides, str):
            check_hparams(overrides, f"the overrides of {path}")
        resolved = resolve_references(io.StringIO(text), overrides, overrides_must_match).getvalue()
        check_hparams(resolved, f"{path} (with references and overrides resolved)")
        return load_hyperpyyaml(resolved)


def _weights_only_transfer(obj, path):
    """SpeechBrain's parameter transfer (non-strict, warnings), with ``weights_only=True``."""
    from speechbrain.utils.checkpoints import hook_on_loading_state_dict_checkpoint

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        if not is_pickle_refusal(err):
            raise
        raise ModelCodeError(
            f"{path} holds pickled Python objects besides tensors and plain values, and unpickling them "
            "can run code: it was not loaded (the project's checkpoints hold weights only)"
        ) from None
    state = hook_on_loading_state_dict_checkpoint(state)
    incompatible = obj.load_state_dict(state, strict=False)
    for key in incompatible.missing_keys:
        logger.warning(f"{path}: no parameters for {key}")
    for key in incompatible.unexpected_keys:
        logger.warning(f"{path}: unused parameters {key}")


def load_pretrained_weights(pretrainer, folder, trust=False):
    """Loads the files of a model folder's ``pretrainer`` into its objects, weights only.

    Each path must be a local file, inside ``folder`` unless ``trust`` (nothing is
    fetched or downloaded), and is read with ``torch.load(..., weights_only=True)``: by
    SpeechBrain's parameter transfer, or by the object's own transfer hook where the
    project defines one (:meth:`~speechbrain_sslse.lobes.SSLEncoder.load_checkpoint` for
    ``ssl.ckpt``, which falls back to pickle only with ``trust``). The files load in the
    pretrainer's order (the SSL encoder's before the vocoder's, whose fingerprint check
    needs the encoder's weights).

    Raises
    ------
    ModelCodeError
        A path outside the folder, or an object that is not a module.
    FileNotFoundError
        A listed file is missing.
    """
    from speechbrain.utils.checkpoints import DEFAULT_TRANSFER_HOOKS, get_default_hook

    folder = Path(folder).resolve()
    for name, obj in pretrainer.loadables.items():
        if not pretrainer.is_loadable(name):
            continue
        if name not in pretrainer.paths:
            raise ModelCodeError(f"{folder}: the pretrainer has no path for {name!r} (it would be fetched)")
        path = Path(str(pretrainer.paths[name])).expanduser().resolve()
        if not trust and folder not in path.parents:
            raise ModelCodeError(
                f"{folder}: the pretrainer loads {name!r} from {path}, outside the model folder; {TRUST_FIX}"
            )
        if not path.is_file():
            raise FileNotFoundError(f"{path}: listed by the pretrainer for {name!r}, missing")
        if not hasattr(obj, "load_state_dict"):
            raise ModelCodeError(
                f"{folder}: the pretrainer's {name!r} is not a module ({type(obj).__name__})"
            )
        hook = get_default_hook(obj, DEFAULT_TRANSFER_HOOKS)
        if str(getattr(hook, "__module__", "")).startswith("speechbrain_sslse."):
            with model_folder_trust(trust):  # the project's hooks read weights only unless trusted
                hook(obj, path)
        else:
            _weights_only_transfer(obj, path)


# --- checkpoints ----------------------------------------------------------------------------------

_FOLDER_TRUST = contextvars.ContextVar("sslse_model_folder_trust", default=None)


@contextlib.contextmanager
def model_folder_trust(trust):
    """Within the block, a model folder is being loaded, trusted or not (see :func:`checkpoint_trust`).

    Example
    -------
    >>> with model_folder_trust(False):
    ...     checkpoint_trust(True)
    False
    >>> checkpoint_trust(None)
    True
    """
    token = _FOLDER_TRUST.set(bool(trust))
    try:
        yield
    finally:
        _FOLDER_TRUST.reset(token)


def in_model_folder():
    """True / False while a trusted / untrusted model folder loads; None otherwise."""
    return _FOLDER_TRUST.get()


def checkpoint_trust(explicit=None):
    """Whether an SSL checkpoint may fall back to pickle when it does not load weights-only.

    While a model folder loads, its trust decides (a folder cannot grant itself trust);
    elsewhere ``explicit``, defaulting to True (a checkpoint you name yourself, as for
    s3prl, with a warning when it needs pickle).
    """
    folder = _FOLDER_TRUST.get()
    if folder is not None:
        return folder
    return True if explicit is None else bool(explicit)


@contextlib.contextmanager
def weights_only_loads():
    """Within the block, every ``torch.load`` call reads weights only (``weights_only=True``).

    Example
    -------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.pt")
    >>> torch.save({"x": torch.zeros(1), "why": ValueError("a Python object")}, p)
    >>> with weights_only_loads():
    ...     torch.load(p, weights_only=False)
    Traceback (most recent call last):
    ...
    _pickle.UnpicklingError: Weights only load failed...
    """
    original = torch.load

    def load(*args, **kwargs):
        kwargs["weights_only"] = True
        return original(*args, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = original


def is_pickle_refusal(err):
    """Whether ``err`` (or an exception it came from) is pickle refusing a non-weights object."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, pickle.UnpicklingError):
            return True
        err = err.__cause__ or err.__context__
    return False
