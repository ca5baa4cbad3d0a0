"""What the studio accepts from a browser: file size, pixels, number of photos.

The file-size limit is also given to Gradio, which refuses a larger upload before it is
stored; the others are checked here, on the image header, before any pixel is decoded.
Each refusal is an :class:`~mirrorppr.errors.InputError` with a one-line message that the
page shows as it is.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from ..imageio import SUPPORTED_SUFFIXES


@dataclass(frozen=True)
class Limits:
    """Upload limits of one studio server (every session gets the same)."""

    max_file_mb: float = 50.0        # one uploaded file
    max_megapixels: float = 50.0     # one photo (the command line allows 100 MP)
    max_photos: int = 20             # photos to retouch in one session

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    def gradio_max_file_size(self) -> int:
        """The value for Gradio's ``max_file_size`` (bytes)."""
        return self.max_file_bytes


def display_name(path: str | os.PathLike) -> str:
    """The name a person gave the file (Gradio keeps it as the last path part)."""
    return Path(path).name


def check_photo_file(path: str | os.PathLike, limits: Limits) -> tuple[int, int]:
    """Refuse a file that is too large, not an image or has too many pixels; return
    its (width, height) as stored (before EXIF rotation)."""
    p = Path(path)
    name = display_name(p)
    if p.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise InputError(f"{name}: not a photo type the studio reads (JPEG, PNG, TIFF or WebP)")
    size = p.stat().st_size
    if size > limits.max_file_bytes:
        raise InputError(f"{name}: {size / 2 ** 20:.1f} MB is over the studio's "
                         f"{limits.max_file_mb:g} MB limit per file")
    try:
        with Image.open(p) as im:
            w, h = im.size
    except (UnidentifiedImageError, OSError, ValueError):
        raise InputError(f"{name}: not a readable image") from None
    if w * h > limits.max_megapixels * 1e6:
        raise InputError(f"{name}: {w}x{h} is {w * h / 1e6:.1f} MP, over the studio's "
                         f"{limits.max_megapixels:g} MP limit per photo")
    return w, h


def check_count(have: int, name: str, limits: Limits) -> None:
    """Refuse one more photo when the session already has the most it may have."""
    if have >= limits.max_photos:
        raise InputError(f"{name}: not added; the studio takes at most {limits.max_photos} "
                         "photos per session (remove some first)")
