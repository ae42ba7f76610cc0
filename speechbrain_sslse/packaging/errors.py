"""The error packaging raises for a training run it cannot package.

Authors
 * speechbrain-sslse contributors
"""

__all__ = ["PackagingError"]


class PackagingError(RuntimeError):
    """A training run that cannot be packaged (missing files, oracle model, ...)."""
