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


def error_with_code(code: int, message: str) -> MirrorError:
    """The error class of an exit code (an error that crossed a process boundary as text)."""
    for cls in (InputError, FaceError, OutputError, ConfigError):
        if cls.code == code:
            return cls(message)
    err = MirrorError(message)
    err.code = code
    return err
