"""Reading hparams written before the vocoder's parts were built in the yaml.

Runs and model folders made before this change name the vocoder's parts in the
vocoder's own settings (``fusion: cross_attention``, ``spectrum: log``, ``d_model``,
``fusion_options``, ``layer_combination: {...}``, ``generator: {preset: v3, ...}``).
:func:`upgrade_vocoder_yaml` rewrites such a vocoder entry into the current form: one
``!new:`` entry per part (layer combination, noisy spectrum, fusion, HiFi-GAN generator)
passed to :class:`~speechbrain_sslse.lobes.SpectrumAwareVocoder`. The parts have the same
module names, so the checkpoints of those runs load unchanged. Everything else in the
file is left as it is. The DNS recipe's packaging reads runs through it
(:func:`speechbrain_sslse.packaging.package_model`), and
:func:`speechbrain_sslse.packaging.upgrade_model_folder` rewrites a former model folder.
:func:`load_run_hyperparams` loads a training run's ``hyperparams.yaml`` of any of these
forms, also one from before the on-the-fly mixer was created in the yaml.

Authors
 * speechbrain-sslse contributors
"""

import io
import re

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, TaggedScalar
from ruamel.yaml.tag import Tag

from .lobes.fusion import FUSIONS

__all__ = ["VOCODER_TAG", "upgrade_vocoder_yaml", "is_former_vocoder", "load_run_hyperparams"]

VOCODER_TAG = "!new:speechbrain_sslse.lobes.SpectrumAwareVocoder"
# Settings only the former form of the vocoder's entry has.
FORMER_KEYS = ("d_model", "fusion_options", "spectrum_options")
_REF = re.compile(r"^<(\w+)>$")


def _tag(node):
    tag = getattr(node, "tag", None)
    return str(getattr(tag, "value", tag) or "")


def _tagged(tag, items):
    node = CommentedMap(items)
    node.yaml_set_ctag(Tag(suffix=tag))
    return node


def _ref(text):
    return TaggedScalar(f"<{text}>", tag="!ref")


def _deref(value, tree):
    """The value a plain ``!ref <key>`` points to (other values as they are)."""
    while isinstance(value, TaggedScalar) and _tag(value) == "!ref":
        match = _REF.match(str(value.value).strip())
        if not match or match.group(1) not in tree:
            break
        value = tree[match.group(1)]
    return value


def _key_of(value, tree):
    """The top-level key ``value`` refers to: ``!ref <key>``, or an alias of ``tree[key]`` (a saved run)."""
    if isinstance(value, TaggedScalar):
        match = _REF.match(str(value.value).strip())
        return match.group(1) if match else None
    return next((key for key, node in tree.items() if node is value), None)


def _free_key(tree, key):
    while key in tree:
        key += "_module"
    return key


def is_former_vocoder(node):
    """Whether a yaml entry is a vocoder in the former settings form.

    Example
    -------
    >>> from ruamel.yaml import YAML
    >>> tree = YAML(typ="rt").load(VOCODER_TAG + "\\n    encoder: !ref <enc>\\n    d_model: 8\\n")
    >>> is_former_vocoder(tree)
    True
    """
    return _tag(node) == VOCODER_TAG and hasattr(node, "keys") and any(k in node for k in FORMER_KEYS)


def upgrade_vocoder_yaml(text):
    """The hyperpyyaml ``text`` with its former-form vocoder entries in the current form.

    Arguments
    ---------
    text : str
        A hyperpyyaml file (references unresolved), e.g. a run's ``hyperparams.yaml``.

    Returns
    -------
    str or None
        The rewritten text, or None when the file has no vocoder in the former form.

    Example
    -------
    >>> former = '''
    ... fusion: additive
    ... enc: !new:speechbrain_sslse.lobes.SSLEncoder
    ...     upstream: tera
    ... generator: !new:speechbrain_sslse.lobes.SpectrumAwareVocoder
    ...     encoder: !ref <enc>
    ...     fusion: !ref <fusion>
    ...     spectrum: magnitude
    ...     d_model: 16
    ...     layer_combination: {last_only: True}
    ...     generator: {preset: v3, upsample_initial_channel: 16}
    ... '''
    >>> print(upgrade_vocoder_yaml(former).strip())  # doctest: +NORMALIZE_WHITESPACE
    fusion: additive
    enc: !new:speechbrain_sslse.lobes.SSLEncoder
        upstream: tera
    layer_combination: !new:speechbrain_sslse.lobes.LayerCombination
        num_layers: !ref <enc.num_layers>
        last_only: true
    noisy_spectrum: !new:speechbrain_sslse.lobes.NoisySpectrum
        kind: magnitude
    fusion_module: !new:speechbrain_sslse.lobes.AdditiveFusion
        ssl_dim: !ref <enc.hidden_size>
        spec_dim: !ref <noisy_spectrum.n_freq>
        d_model: 16
    waveform_generator: !apply:speechbrain_sslse.lobes.hifigan_generator
        in_channels: 16
        preset: v3
        upsample_initial_channel: 16
    generator: !new:speechbrain_sslse.lobes.SpectrumAwareVocoder
        encoder: !ref <enc>
        layer_combination: !ref <layer_combination>
        spectrum: !ref <noisy_spectrum>
        fusion: !ref <fusion_module>
        generator: !ref <waveform_generator>
    """
    yaml = YAML(typ="rt")
    yaml.indent(mapping=4, sequence=4, offset=2)
    tree = yaml.load(io.StringIO(text))
    if not hasattr(tree, "keys"):
        return None
    former = [key for key, node in tree.items() if is_former_vocoder(node)]
    for key in former:
        _upgrade_entry(tree, key)
    if not former:
        return None
    out = io.StringIO()
    yaml.dump(tree, out)
    return out.getvalue()


def _upgrade_entry(tree, key):
    node = tree[key]
    encoder = node["encoder"]
    encoder_key = _key_of(encoder, tree)
    if encoder_key is None:
        raise ValueError(f"{key}: the encoder must be a reference to a top-level entry (got {encoder!r})")
    d_model = node.get("d_model", 256)
    fusion_name = _deref(node.get("fusion", "cross_attention"), tree)
    if str(fusion_name) not in FUSIONS:
        raise ValueError(f"{key}: unknown fusion {fusion_name!r}: expected one of {', '.join(FUSIONS)}")
    names = {
        part: _free_key(tree, part)
        for part in ("layer_combination", "noisy_spectrum", "fusion", "waveform_generator")
    }
    parts = {}
    parts[names["layer_combination"]] = _tagged(
        "!new:speechbrain_sslse.lobes.LayerCombination",
        {
            "num_layers": _ref(f"{encoder_key}.num_layers"),
            **dict(_deref(node.get("layer_combination"), tree) or {}),
        },
    )
    parts[names["noisy_spectrum"]] = _tagged(
        "!new:speechbrain_sslse.lobes.NoisySpectrum",
        {"kind": node.get("spectrum", "log"), **dict(_deref(node.get("spectrum_options"), tree) or {})},
    )
    parts[names["fusion"]] = _tagged(
        f"!new:speechbrain_sslse.lobes.{FUSIONS[str(fusion_name)].__name__}",
        {
            "ssl_dim": _ref(f"{encoder_key}.hidden_size"),
            "spec_dim": _ref(f"{names['noisy_spectrum']}.n_freq"),
            "d_model": d_model,
            **dict(_deref(node.get("fusion_options"), tree) or {}),
        },
    )
    generator = node.get("generator")
    settings = _deref(generator, tree)
    if _tag(settings).startswith("!new:"):  # a generator family built in the yaml: passed as it is
        generator_ref = generator
    else:
        if settings is None or isinstance(settings, str):
            settings = {"preset": settings or "v1"}
        parts[names["waveform_generator"]] = _tagged(
            "!apply:speechbrain_sslse.lobes.hifigan_generator", {"in_channels": d_model, **dict(settings)}
        )
        generator_ref = _ref(names["waveform_generator"])
    vocoder = {
        "encoder": encoder,
        "layer_combination": _ref(names["layer_combination"]),
        "spectrum": _ref(names["noisy_spectrum"]),
        "fusion": _ref(names["fusion"]),
        "generator": generator_ref,
    }
    if "clean_embedding" in node:
        vocoder["clean_embedding"] = node["clean_embedding"]
    position = list(tree).index(key)
    for offset, (name, part) in enumerate(parts.items()):
        tree.insert(position + offset, name, part)
    node.clear()  # in place: the aliases of a saved run (modules, checkpointer) point to this node
    node.update(vocoder)


# The settings a run's mixer was built from before the yaml created it (``mixer: !new:...``).
FORMER_MIXER_KEYS = {
    "segment_seconds": "segment_seconds",
    "snr_range": "snr_range",
    "rir_probability": "rir_probability",
    "t60_range": "t60_range",
    "level_range": "level_range",
    "early_ms": "early_reverb_ms",
    "sample_rate": "sample_rate",
}


def load_run_hyperparams(path, overrides=None):
    r"""A training run's ``hyperparams.yaml`` loaded, whatever form of the recipe wrote it.

    A vocoder entry of the former form is rewritten by :func:`upgrade_vocoder_yaml`; a run
    from before the on-the-fly mixer was created in the yaml gets the
    :class:`~speechbrain_sslse.data.mixing.OnTheFlyMixer` its settings describe (as the
    recipe built it then), so its validation mixtures are drawn as it drew them.

    Arguments
    ---------
    path : str or Path
        The run's ``hyperparams.yaml``.
    overrides : dict, optional
        Hyperparameter overrides, as for ``hyperpyyaml.load_hyperpyyaml``.

    Returns
    -------
    dict
        The loaded hyperparameters (with a ``mixer``).

    Example
    -------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "hyperparams.yaml"
    >>> _ = path.write_text(
    ...     "segment_seconds: 1.0\nsnr_range: [0, 5]\nrir_probability: 0.0\nt60_range: [0.3, 0.5]\n"
    ...     "level_range: [-30, -20]\nearly_reverb_ms: 50.0\nsample_rate: 16000\n"
    ... )
    >>> hparams = load_run_hyperparams(path)
    >>> type(hparams["mixer"]).__name__, hparams["mixer"].snr_range
    ('OnTheFlyMixer', (0, 5))
    """
    from hyperpyyaml import load_hyperpyyaml

    from .data.mixing import OnTheFlyMixer

    with open(path) as f:
        text = f.read()
    text = upgrade_vocoder_yaml(text) or text
    hparams = load_hyperpyyaml(text, overrides or {})
    if "mixer" not in hparams:
        settings = {arg: hparams[key] for arg, key in FORMER_MIXER_KEYS.items()}
        hparams["mixer"] = OnTheFlyMixer(**settings, augment=hparams.get("augment"))
    return hparams
