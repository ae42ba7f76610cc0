"""Registry of s3prl upstream names: which ``s3prl.upstream.<module>.hubconf`` defines each.

:func:`list_upstreams` reads s3prl's ``hubconf.py`` files without importing anything, and
:func:`resolve_upstream` imports only the module that defines the requested name, after
:mod:`speechbrain_sslse._compat` has applied its patches (the two torchaudio names that
s3prl modules still import; for TERA's family, the vectorised position table).

Why not s3prl's own registry (``s3prl.hub``, ``s3prl.hub.options()``): with the
compatibility patches ``import s3prl.hub`` does work here, but it is not the same set of
names. It imports every upstream module at once (52 s on this 2-core machine under load,
against a few milliseconds for parsing), logs the upstreams whose optional packages are
missing (ESPnet), leaves out the upstreams of modules it does not import (``spec_augment``,
``spec_augment_local``, ``spec_augment_url``), and lists names that are not upstreams
(``FileLock``, ``Path``, ``load_and_convert_fairseq_ckpt``, ``timit_posteriorgram``); and a
name re-exported by another module (``vq_apc_url``) resolves to that module. Parsing the
hubconf files gives exactly the upstream names, each with the module to import.

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
from pathlib import Path

from .. import _compat

__all__ = ["UpstreamUnavailableError", "list_upstreams", "resolve_upstream", "upstream_kind"]

logger = logging.getLogger(__name__)

# Modules whose upstreams are hand-crafted features: no weights, nothing to download.
FEATURE_MODULES = ("baseline", "log_stft")
LOCAL_SUFFIXES = ("_local", "_custom")


class UpstreamUnavailableError(RuntimeError):
    """An s3prl upstream that cannot be used here (no hub access, or its module fails to import)."""


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
