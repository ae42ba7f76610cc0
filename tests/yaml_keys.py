"""Consistency of a recipe's hparams file with its scripts (every yaml key is used).

In the spirit of SpeechBrain's ``tests/consistency/test_yaml.py``: a top-level key of a
hyperpyyaml file counts as used when a script reads it (``hparams["key"]``,
``hparams['key']``, ``hparams.get("key"``, ``hparams.key``) or another entry of the
yaml refers to it (``<key>``, ``<key[...]>``, ``<key.attr>``).

Usage in a test::

    from yaml_keys import unused_keys
    assert unused_keys("recipes/X/hparams/a.yaml", ["recipes/X/train.py"]) == []
"""

import re
from pathlib import Path

KEY_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:", re.MULTILINE)
READ_PATTERNS = (
    r"""hparams\[\s*["']{key}["']\s*\]""",
    r"""hparams\.get\(\s*["']{key}["']""",
    r"""hparams\.{key}\b""",
)


def yaml_keys(yaml_path):
    """Top-level keys of a hyperpyyaml file, in file order (comments ignored).

    Example
    -------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "h.yaml")
    >>> _ = open(p, "w").write("a: 1\\n# b: 2\\nc: !ref <a>\\nd:\\n    e: 3\\n")
    >>> yaml_keys(p)
    ['a', 'c', 'd']
    """
    text = Path(yaml_path).read_text(encoding="utf-8")
    return list(dict.fromkeys(KEY_LINE.findall(text)))


def _referenced_in_yaml(text, key):
    """True when a ``!ref``/``!apply`` expression of the yaml mentions ``<key>``."""
    body = re.sub(r"#.*", "", text)  # comments do not count
    return re.search(rf"<{re.escape(key)}(?:[>\[.])", body) is not None


def unused_keys(yaml_path, script_paths):
    """Top-level yaml keys that no script reads and no other yaml entry references.

    Arguments
    ---------
    yaml_path : str or Path
        The hparams file.
    script_paths : list of str or Path
        The scripts that load it (recipe script, prepare script, ...).

    Returns
    -------
    list of str
        Sorted unused keys (empty when consistent).

    Example
    -------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> _ = open(os.path.join(d, "h.yaml"), "w").write("a: 1\\nb: !ref <a>/x\\nc: 2\\n")
    >>> _ = open(os.path.join(d, "s.py"), "w").write("print(hparams['b'])\\n")
    >>> unused_keys(os.path.join(d, "h.yaml"), [os.path.join(d, "s.py")])
    ['c']
    """
    text = Path(yaml_path).read_text(encoding="utf-8")
    scripts = "\n".join(Path(p).read_text(encoding="utf-8") for p in script_paths)
    unused = []
    for key in yaml_keys(yaml_path):
        read = any(re.search(p.format(key=re.escape(key)), scripts) for p in READ_PATTERNS)
        if not read and not _referenced_in_yaml(text, key):
            unused.append(key)
    return sorted(unused)


def undefined_keys(yaml_path, script_paths):
    """Keys that the scripts read as ``hparams["key"]`` but the yaml does not define.

    Example
    -------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> _ = open(os.path.join(d, "h.yaml"), "w").write("a: 1\\n")
    >>> _ = open(os.path.join(d, "s.py"), "w").write("hparams['a'] + hparams['z']\\n")
    >>> undefined_keys(os.path.join(d, "h.yaml"), [os.path.join(d, "s.py")])
    ['z']
    """
    defined = set(yaml_keys(yaml_path))
    scripts = "\n".join(Path(p).read_text(encoding="utf-8") for p in script_paths)
    read = set(re.findall(r"""hparams\[\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*\]""", scripts))
    return sorted(read - defined)
