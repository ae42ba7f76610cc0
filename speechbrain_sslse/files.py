"""Small file helpers shared by the packaging and the metrics' model records."""

import hashlib

__all__ = ["sha256_file"]


def sha256_file(path):
    """Hex SHA-256 of a file, read in 1 MB blocks.

    Example
    -------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x")
    >>> _ = open(p, "wb").write(b"abc")
    >>> sha256_file(p)[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
