"""Small file helpers: checksums, and the one atomic text and CSV writer every part uses."""

import csv
import hashlib
import math

from .audio import atomic_path

__all__ = ["read_csv", "sha256_file", "write_csv", "write_text"]


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


def write_text(path, text):
    """Writes a text file atomically (UTF-8, ``\\n`` line ends); missing folders are made.

    Arguments
    ---------
    path : str or Path
        The file.
    text : str
        Its content.

    Example
    -------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a", "b.txt")
    >>> write_text(p, "hello\\n")
    >>> open(p).read()
    'hello\\n'
    """
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def write_csv(path, rows, fieldnames):
    """Writes dict rows as a CSV file atomically (UTF-8, the csv module's dialect).

    Keys of a row that are not in ``fieldnames`` are left out, absent ones are empty,
    and NaN is written as ``nan``.

    Arguments
    ---------
    path : str or Path
        The file (missing folders are made).
    rows : iterable of dict
        One dictionary per row.
    fieldnames : list of str
        The columns, in order.

    Example
    -------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> write_csv(p, [{"a": 1, "b": float("nan"), "c": 2}], ["a", "b"])
    >>> open(p, newline="").read()
    'a,b\\r\\n1,nan\\r\\n'
    """
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
            )


def read_csv(path):
    """Reads a CSV file into a list of dicts (strings).

    Arguments
    ---------
    path : str or Path
        The file.

    Returns
    -------
    list of dict
        One dictionary per row, keyed by the header.

    Example
    -------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> write_csv(p, [{"a": 1}], ["a"])
    >>> read_csv(p)
    [{'a': '1'}]
    """
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
