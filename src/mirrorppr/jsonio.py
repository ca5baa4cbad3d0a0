"""Reading the small JSON files a user hands mirrorppr (presets, recipes, labels).

Everything that can go wrong becomes a :class:`ConfigError` (exit 6) with one line that
names the file: a folder or a missing file, no permission, a file too large, text that is
not UTF-8, nesting deep enough to exhaust the parser, NaN or Infinity, invalid JSON.
Size and depth are checked before parsing, so a hostile file costs little.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np

from .errors import ConfigError

#: Deepest nesting of arrays/objects accepted (a preset needs 4).
MAX_DEPTH = 32
#: A JSON string literal, as an unrolled loop (linear and fast on megabyte strings).
_BIG_EXPONENT = re.compile(r"[eE][+-]?\d{3}")
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def read_json(path: str | os.PathLike, what: str, max_bytes: int) -> object:
    """Parse the JSON file at ``path`` (a ``what``: "preset", "recipe"...)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such {what} file")
    if p.is_dir():
        raise ConfigError(f"{p}: is a folder, expected a {what} file")
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise ConfigError(f"{p}: {size / 2 ** 20:.1f} MB is too large for a {what} "
                              f"(at most {max_bytes / 2 ** 20:.0f} MB)")
        with open(p, "rb") as fh:
            raw = fh.read(max_bytes + 1)     # a special file may report size 0
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read this {what} ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > max_bytes:
        raise ConfigError(f"{p}: too large for a {what} (at most {max_bytes / 2 ** 20:.0f} MB)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start}); a {what} is a UTF-8 JSON file") from None
    return parse_json(text, f"{p}", what)


def parse_json(text: str, name: str, what: str) -> object:
    """Parse JSON text with the same bounds; ``name`` prefixes every message."""
    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        raise ConfigError(f"{name}: nested {depth} levels deep; a {what} needs at most {MAX_DEPTH}")
    # Only a number with a 3-digit exponent can overflow to infinity: check each float
    # (a Python call per number, slow on big files) only when the text has one.
    floats = _finite_float if _BIG_EXPONENT.search(text) else None
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=floats)
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except (RecursionError, ValueError) as exc:   # huge integers, odd escapes
        raise ConfigError(f"{name}: not a usable {what} ({type(exc).__name__})") from None


def nesting_depth(text: str) -> int:
    """Deepest bracket nesting outside strings, without parsing (vectorised)."""
    bare = _STRINGS.sub('""', text)
    codes = np.frombuffer(bare.encode("utf-8", "replace"), np.uint8)
    step = np.zeros(codes.shape, np.int32)
    step[(codes == ord("[")) | (codes == ord("{"))] = 1
    step[(codes == ord("]")) | (codes == ord("}"))] = -1
    return int(np.cumsum(step).max(initial=0))


def _refuse_constant(name: str):
    raise ConfigError(f"{name} is not allowed (numbers must be finite)")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ConfigError(f"number {text[:20]} is out of range (numbers must be finite)")
    return v


__all__ = ["read_json", "parse_json", "nesting_depth", "MAX_DEPTH"]
