"""Errors a user can act on. The CLI prints ``str(error)`` on one line and exits with ``code``."""
from __future__ import annotations


class MirrorError(Exception):
    """Base of every error mirrorppr raises on purpose."""

    code = 2


class InputError(MirrorError):
    """A file cannot be read, has an unsupported layout, or is too large."""

    code = 3


class FaceError(MirrorError):
    """No usable face: none found, too small, or ambiguous."""

    code = 4


class OutputError(MirrorError):
    """An output cannot be written (exists as an input, unwritable folder...)."""

    code = 5


class ConfigError(MirrorError):
    """A recipe, preset or option is malformed."""

    code = 6
