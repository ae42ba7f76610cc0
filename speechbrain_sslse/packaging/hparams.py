"""A model folder's ``hyperparams.yaml``: the inference template filled with a run's vocoder parts.

The parts (layer combination, noisy spectrum, fusion, generator) are taken from the run's
own yaml entries, as ruamel nodes with references and overrides resolved
(:func:`run_tree`, :func:`vocoder_parts`); a reference to an attribute of a built object
(``!ref <ssl_encoder.hidden_size>``) is written out as the value the run built, so the
model folder states its sizes. :func:`model_hyperparams` fills them into the template
(``assets/templates/inference.yaml``) with the inference settings and the SSL encoder's
architecture (:func:`ssl_architecture`, read from its checkpoint): the folder's yaml then
opens no file as it loads, and its pretrainer loads ``ssl.ckpt`` and ``vocoder.ckpt``.

Authors
 * speechbrain-sslse contributors
"""

import inspect
import io
from pathlib import Path

from hyperpyyaml import resolve_references
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tag import Tag
from ruamel.yaml.tokens import CommentToken

import speechbrain_sslse

from ..lobes.upstream_architecture import ARCHITECTURE_UPSTREAMS, checkpoint_architecture, load_states
from ..upgrade import VOCODER_TAG
from .errors import PackagingError

__all__ = [
    "INFERENCE_TEMPLATE",
    "INFERENCE_DEFAULTS",
    "VOCODER_PARTS",
    "yaml_tag",
    "top_key",
    "run_tree",
    "vocoder_parts",
    "set_generator_settings",
    "ssl_architecture",
    "model_hyperparams",
]

# The template of a model folder's hyperparams.yaml (in the package: packaging runs from it).
INFERENCE_TEMPLATE = Path(__file__).parents[1] / "assets" / "templates" / "inference.yaml"
INFERENCE_DEFAULTS = {
    "chunk_seconds": 10.0,
    "overlap_seconds": 1.0,
    "chunk_batch_size": 4,
}
# The vocoder's arguments that are its trained parts -> their entries in the template.
VOCODER_PARTS = {
    "layer_combination": "layer_combination",
    "spectrum": "noisy_spectrum",
    "fusion": "fusion",
    "generator": "generator",
}


def _yaml():
    yaml = YAML(typ="rt")
    yaml.indent(mapping=4, sequence=4, offset=2)
    yaml.width = 110
    return yaml


def yaml_tag(node):
    """The tag of a ruamel node as text (``""`` when untagged)."""
    tag = getattr(node, "tag", None)
    return str(getattr(tag, "value", tag) or "")


def top_key(node, tree):
    """The top-level key of ``tree`` whose value is ``node`` (None when there is none)."""
    return next((key for key, value in tree.items() if value is node), None)


def _concrete(node, tree, hparams):
    """A copy of a resolved yaml node whose attribute references hold the built values.

    ``!ref <ssl_encoder.hidden_size>`` resolves to ``!apply:getattr [*ssl_encoder, hidden_size]``;
    the copy holds the value the run's built ``ssl_encoder`` has instead, so the model folder
    states its sizes (and needs no ``getattr`` to load).
    """
    tag = yaml_tag(node)
    if tag == "!apply:getattr" and isinstance(node, list) and len(node) == 2:
        key = top_key(node[0], tree)
        if key is None or key not in hparams:
            raise PackagingError(f"cannot resolve the reference to an attribute of {node[0]!r}")
        return _concrete(getattr(hparams[key], str(node[1])), tree, hparams)
    if isinstance(node, dict):
        copy = CommentedMap((k, _concrete(v, tree, hparams)) for k, v in node.items())
    elif isinstance(node, list | tuple):
        copy = CommentedSeq(_concrete(v, tree, hparams) for v in node)
        if all(not isinstance(v, dict | list) for v in copy):
            copy.fa.set_flow_style()
    else:
        return node
    if tag.startswith("!"):
        copy.yaml_set_ctag(Tag(suffix=tag))
    return copy


def run_tree(text, overrides):
    """A run's hyperparams text with references and overrides resolved, as ruamel nodes."""
    return _yaml().load(resolve_references(io.StringIO(text), overrides).getvalue())


def vocoder_parts(tree, hparams, vocoder_key):
    """The template entries of the vocoder's parts, taken from a run's (resolved) yaml nodes."""
    node = tree[vocoder_key]
    if yaml_tag(node) != VOCODER_TAG:
        raise PackagingError(
            f"{vocoder_key} is not a SpectrumAwareVocoder entry ({yaml_tag(node) or 'untagged'})"
        )
    missing = [arg for arg in VOCODER_PARTS if arg not in node]
    if missing:
        raise PackagingError(f"the vocoder entry {vocoder_key} does not pass {', '.join(missing)}")
    return {entry: _concrete(node[arg], tree, hparams) for arg, entry in VOCODER_PARTS.items()}


def set_generator_settings(generator, settings, family, source):
    """Writes inference settings of a generator family into its entry (checked against its arguments)."""
    import pydoc

    tag = yaml_tag(generator)
    target = pydoc.locate(tag.split(":", 1)[-1]) if ":" in tag else None
    accepted = sorted(inspect.signature(target).parameters) if target is not None else []
    notes = []
    for key, value in (settings or {}).items():
        if family == "hifigan" or key not in accepted:
            raise PackagingError(
                f"generator setting {key!r}: the generator of {source} ({family}) has no such setting; "
                f"it has {[] if family == 'hifigan' else accepted}"
            )
        generator[key] = value
        notes.append(f"Inference setting of the generator: `{key}: {value}` (set at packaging).")
    return notes + [""] if notes else []


def _end_with(node, line_end):
    """Gives a block map's last line (its last key, in its innermost block map) the ``line_end`` comment."""
    while True:
        last = list(node)[-1]
        value = node[last]
        if not isinstance(value, CommentedMap) or not value or value.fa.flow_style():
            break
        node = value
    node.ca.items[last] = line_end


def _architecture_node(architecture):
    """The SSL encoder's architecture as a yaml block, its innermost maps on one line each."""
    node = CommentedMap()
    for key, value in architecture.items():
        if isinstance(value, dict):
            value = _architecture_node(value)
            if all(not isinstance(v, dict | list) for v in value.values()) and len(value) <= 6:
                value.fa.set_flow_style()
        node[key] = value
    return node


def _set_ssl_encoder(tree, ssl_upstream, architecture):
    """The template's SSL encoder: built from its architecture, or from ``ckpt`` when there is none."""
    encoder = tree["ssl_encoder"]
    encoder["upstream"] = ssl_upstream
    line_end = encoder.ca.items.pop("architecture", None)  # the blank line and comment below it
    if architecture is not None:
        encoder["architecture"] = _architecture_node(architecture)
    else:
        del encoder["architecture"]
        encoder["ckpt"] = TaggedScalar("<model_dir>/ssl.ckpt", tag="!ref")
        for section in ("loadables", "paths"):  # the encoder loads ssl.ckpt itself
            del tree["pretrainer"][section]["ssl_encoder"]
    if line_end is not None:
        _end_with(encoder, line_end)


def ssl_architecture(upstream, ckpt):
    """The SSL encoder's architecture for a model folder's yaml, read (weights only) from its checkpoint.

    Arguments
    ---------
    upstream : str
        The s3prl entry of the encoder (``SSLEncoder.name``).
    ckpt : str or Path
        Its checkpoint (the model folder's ``ssl.ckpt``).

    Returns
    -------
    dict or None
        None when the upstream cannot be built from an architecture (not TERA) or the
        checkpoint does not load weights-only: the folder's encoder then loads ``ssl.ckpt``
        itself, as it is built.
    """
    from ..trust import is_pickle_refusal

    if upstream not in ARCHITECTURE_UPSTREAMS:
        return None
    try:
        states = load_states(ckpt, weights_only=True)
    except Exception as err:
        if is_pickle_refusal(err):
            return None
        raise
    return checkpoint_architecture(states)


def model_hyperparams(parts, ssl_upstream, source_note, inference=None, ssl_architecture=None):
    """The model folder's hyperparams.yaml: the inference template with the run's parts filled in.

    ``ssl_architecture`` (see :func:`ssl_architecture`) builds the SSL encoder from its
    architecture, the pretrainer loading ``ssl.ckpt``; without it the encoder loads
    ``ssl.ckpt`` as it is built (``ckpt: !ref <model_dir>/ssl.ckpt``).
    """
    yaml = _yaml()
    with open(INFERENCE_TEMPLATE, encoding="utf-8") as f:
        tree = yaml.load(f)
    for key, value in {**INFERENCE_DEFAULTS, **(inference or {})}.items():
        tree[key] = value
    _set_ssl_encoder(tree, ssl_upstream, ssl_architecture)
    for key, node in parts.items():
        tree.ca.items.pop(key, None)  # the template's line ends (placeholders): the part ends with one
        tree[key] = node
        if isinstance(node, dict) and node:
            _end_with(node, [None, None, CommentToken("\n\n", CommentMark(0), None), None])
    header = tree.ca.comment[1][-1]  # the template's header ends with a blank line
    header.value = header.value.rstrip("\n") + (
        f"\n# Packaged by speechbrain-sslse {speechbrain_sslse.__version__} {source_note}.\n\n"
    )
    out = io.StringIO()
    yaml.dump(tree, out)
    return out.getvalue()
