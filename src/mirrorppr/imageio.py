"""Reading and writing photos without losing anything a photographer cares about.

A :class:`Photo` holds the pixels in display orientation (EXIF rotation applied) with
their native bit depth and alpha, plus what is needed to write a result back the same
way: format, ICC profile and EXIF (orientation reset to 1). Writes are atomic (temp file
then rename) and never replace an input file.
"""
from __future__ import annotations

import io
import math
import os
import struct
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms

from . import outputs
from .errors import ConfigError, InputError, OutputError

#: Largest image accepted by default, in megapixels (env ``MIRRORPPR_MAX_MEGAPIXELS``).
DEFAULT_MAX_MEGAPIXELS = 100.0
SUPPORTED_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp")
_FORMAT_BY_SUFFIX = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF",
                     ".tiff": "TIFF", ".webp": "WEBP"}
_ORIENTATION_TAG = 0x0112

Image.MAX_IMAGE_PIXELS = None  # we enforce our own, clearer limit


@dataclass
class Photo:
    """Pixels plus the metadata needed to write them back faithfully.

    ``pixels`` is ``H x W x C`` with ``C`` in {1, 3, 4} (gray, RGB, RGBA) and dtype
    uint8 or uint16.
    """

    pixels: np.ndarray
    format: str = "PNG"
    icc_profile: bytes | None = None
    exif: bytes | None = None
    path: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as PIL and OpenCV take sizes."""
        return self.width, self.height

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def has_alpha(self) -> bool:
        return self.pixels.shape[2] in (2, 4)

    def rgb8(self) -> np.ndarray:
        """An 8-bit RGB view for analysis (landmarks, flow); never written out."""
        px = self.pixels
        if px.dtype == np.uint16:
            px = (px.astype(np.uint32) * 255 + 32767) // 65535
            px = px.astype(np.uint8)
        c = px.shape[2]
        if c == 1:
            return np.repeat(px, 3, axis=2)
        if c == 2:
            return np.repeat(px[..., :1], 3, axis=2)
        return np.ascontiguousarray(px[..., :3])

    def with_pixels(self, pixels: np.ndarray) -> "Photo":
        """A copy with new pixels (same metadata), detached from the input path."""
        if pixels.ndim == 2:
            pixels = pixels[..., None]
        return replace(self, pixels=pixels, path=None, notes=list(self.notes))


def max_pixels() -> int:
    """The pixel limit: ``MIRRORPPR_MAX_MEGAPIXELS`` (a positive number) or 100 MP."""
    raw = os.environ.get("MIRRORPPR_MAX_MEGAPIXELS")
    if raw is None or not raw.strip():
        return int(DEFAULT_MAX_MEGAPIXELS * 1_000_000)
    try:
        mp = float(raw)
    except ValueError:
        mp = math.nan
    if not (math.isfinite(mp) and mp > 0):
        raise ConfigError(f"MIRRORPPR_MAX_MEGAPIXELS={raw!r:.40}: expected a positive number of megapixels "
                          f"(default {DEFAULT_MAX_MEGAPIXELS:g})")
    return int(min(mp, 1e7) * 1_000_000)


def _check_size(path: Path, w: int, h: int, limit: int | None) -> None:
    limit = max_pixels() if limit is None else limit
    if w * h > limit:
        raise InputError(
            f"{path}: {w}x{h} is {w * h / 1e6:.0f} MP, over the {limit / 1e6:.0f} MP limit; "
            "downscale it or raise the limit with MIRRORPPR_MAX_MEGAPIXELS")
    if w < 16 or h < 16:
        raise InputError(f"{path}: {w}x{h} is too small to retouch")


def _exif_orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:
        return 1


def _apply_orientation(px: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation 1..8 applied to an ``H x W x C`` array."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: a.transpose(1, 0, 2)[:, ::-1],
           7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1], 8: lambda a: a.transpose(1, 0, 2)[::-1]}
    fn = ops.get(orientation)
    return np.ascontiguousarray(fn(px)) if fn else px


def _exif_without_orientation(im: Image.Image) -> bytes | None:
    try:
        exif = im.getexif()
    except Exception:
        return None
    if not exif:
        return None
    exif[_ORIENTATION_TAG] = 1
    return exif.tobytes()


def read_image(path: str | os.PathLike, *, limit_pixels: int | None = None) -> Photo:
    """Read a photo in display orientation with native depth, alpha, ICC and EXIF.

    Raises :class:`InputError` with the file name for anything unreadable or too large.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an image file")
    outputs.note_input(path)
    try:
        im = Image.open(path)
        im.size  # noqa: B018  (forces header parse)
    except PermissionError:
        raise InputError(f"{path}: cannot be read (permission denied)") from None
    except Exception as exc:
        _explain_unsupported_tiff(path)
        raise InputError(f"{path}: not a readable image ({type(exc).__name__}); supported: JPEG, PNG, "
                         "TIFF, WebP") from None
    w, h = im.size
    _check_size(path, w, h, limit_pixels)
    frames = int(getattr(im, "n_frames", 1) or 1)
    fmt = (im.format or "PNG").upper()
    if fmt == "MPO":
        fmt = "JPEG"
    icc = im.info.get("icc_profile")
    orientation = _exif_orientation(im)
    exif = _exif_without_orientation(im)
    notes: list[str] = []
    try:
        px = _decode(path, im, fmt, notes)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: image data is corrupt or truncated ({exc})") from None
    if px.ndim == 2:
        px = px[..., None]
    px = _apply_orientation(px, orientation)
    if orientation != 1:
        notes.append(f"EXIF orientation {orientation} applied")
    if frames > 1:
        notes.append(f"{frames} frames/pages: only the first is retouched and written")
    if "CMYK" in im.mode:
        icc = None  # the output is RGB: the CMYK profile no longer describes it
    return Photo(pixels=px, format=fmt, icc_profile=icc, exif=exif, path=path, notes=notes)


def _explain_unsupported_tiff(path: Path) -> None:
    """Pillow cannot open float or 32-bit TIFFs; say why instead of "unreadable"."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError:
        return
    if magic not in (b"II*\x00", b"MM\x00*"):
        return
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is not None and raw.dtype.kind == "f":
        raise InputError(f"{path}: floating-point (HDR) pixels are not supported; export 8- or 16-bit")
    if raw is not None and raw.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{path}: {raw.dtype} samples are not supported; export 8- or 16-bit")


def _decode(path: Path, im: Image.Image, fmt: str, notes: list[str]) -> np.ndarray:
    mode = im.mode
    if mode == "F" or mode.startswith("F;"):
        raise InputError(f"{path}: floating-point (HDR) pixels are not supported; export 8- or 16-bit")
    if fmt in ("PNG", "TIFF"):
        # OpenCV keeps 16 bits per channel for colour PNG/TIFF, which Pillow truncates.
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is not None and raw.dtype.kind == "f":
            raise InputError(f"{path}: floating-point (HDR) pixels are not supported; export 8- or 16-bit")
        if raw is not None and raw.dtype not in (np.uint8, np.uint16):
            raise InputError(f"{path}: {raw.dtype} samples are not supported; export 8- or 16-bit")
        if raw is not None and raw.dtype == np.uint16:
            if raw.ndim == 3 and raw.shape[2] == 3:
                return cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
            if raw.ndim == 3 and raw.shape[2] == 4:
                return cv2.cvtColor(raw, cv2.COLOR_BGRA2RGBA)
            return raw
    if mode == "CMYK":
        notes.append("CMYK converted to RGB" + (" with its ICC profile" if im.info.get("icc_profile") else ""))
        icc = im.info.get("icc_profile")
        if icc:
            try:
                src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                return np.asarray(ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"),
                                                            outputMode="RGB"))
            except Exception:
                pass
        return np.asarray(im.convert("RGB"))
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(im).astype(np.uint16) if mode != "I" else np.clip(np.asarray(im), 0, 65535).astype(np.uint16)
    if mode in ("L", "RGB", "RGBA"):
        return np.asarray(im)
    if mode == "LA":
        return np.asarray(im)
    if mode in ("P", "PA"):
        target = "RGBA" if ("transparency" in im.info or mode == "PA") else "RGB"
        notes.append(f"palette image converted to {target}")
        return np.asarray(im.convert(target))
    if mode == "1":
        notes.append("1-bit image converted to 8-bit gray")
        return np.asarray(im.convert("L"))
    if mode in ("YCbCr", "LAB", "HSV"):
        notes.append(f"{mode} converted to RGB")
        return np.asarray(im.convert("RGB"))
    if mode == "F":
        raise InputError(f"{path}: floating-point images are not supported; export 8- or 16-bit")
    notes.append(f"{mode} converted to RGB")
    return np.asarray(im.convert("RGB"))


def output_format(path: Path, fallback: str) -> str:
    return _FORMAT_BY_SUFFIX.get(path.suffix.lower(), fallback)


def check_quality(quality: int) -> int:
    """JPEG/WebP quality, 1 (smallest) to 100 (best)."""
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ConfigError(f"quality {quality!r}: expected an integer from 1 to 100")
    return quality


def write_image(photo: Photo, path: str | os.PathLike, *, protect: tuple[Path, ...] = (),
                quality: int = 95, overwrite: bool = True) -> Path:
    """Write atomically in the format the suffix names, keeping depth, alpha, ICC, EXIF.

    ``protect`` lists input files that must never be replaced (the photo's own source
    path and, inside a command, every file it read are always protected; see
    :mod:`mirrorppr.outputs`). ``quality`` (1-100) applies to JPEG and WebP. Formats that
    cannot hold the photo's depth or alpha get the nearest faithful encoding and a note
    is added to ``photo.notes``.
    """
    path = Path(path)
    guards = (*protect, photo.path)
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise OutputError(f"{path}: unsupported output type {path.suffix!r}; use one of "
                          + ", ".join(SUPPORTED_SUFFIXES))
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputError(f"{path}: exists (pass overwrite to replace it)")
    outputs.check_not_input(path, guards)    # before the encode: fail fast
    data = encode_image(photo, output_format(path, photo.format), quality=check_quality(quality))
    return outputs.write_bytes(path, data, protect=guards)


def encode_image(photo: Photo, fmt: str, *, quality: int = 95) -> bytes:
    """Encode to bytes in ``fmt`` (JPEG, PNG, TIFF, WEBP)."""
    px = photo.pixels
    c = px.shape[2]
    if px.dtype == np.uint16 and fmt in ("PNG", "TIFF"):
        return _encode16(photo, fmt)
    if px.dtype == np.uint16:
        photo.notes.append(f"{fmt} holds 8 bits per channel: reduced from 16")
        px = Photo(px).rgb8() if c != 4 else np.concatenate(
            [Photo(px[..., :3]).rgb8(), (px[..., 3:] // 257).astype(np.uint8)], axis=2)
        c = px.shape[2]
    if fmt == "JPEG" and c in (2, 4):
        photo.notes.append("JPEG has no alpha: alpha dropped")
        px = px[..., :-1]
        c = px.shape[2]
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c]
    im = Image.fromarray(px[..., 0] if c == 1 else px, mode=mode)
    kw: dict = {}
    if photo.icc_profile:
        kw["icc_profile"] = photo.icc_profile
    if photo.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        kw["exif"] = photo.exif
    if fmt == "JPEG":
        kw.update(quality=quality, subsampling=0 if quality >= 90 else 2, optimize=True)
    elif fmt == "WEBP":
        kw.update(quality=quality, method=4)
    elif fmt == "TIFF":
        kw.update(compression="tiff_deflate")
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _encode16(photo: Photo, fmt: str) -> bytes:
    px = photo.pixels
    c = px.shape[2]
    bgr = px[..., 0] if c == 1 else cv2.cvtColor(px, cv2.COLOR_RGB2BGR if c == 3 else cv2.COLOR_RGBA2BGRA)
    if fmt == "TIFF":
        ok, buf = cv2.imencode(".tiff", bgr)
        if not ok:
            raise OutputError("could not encode a 16-bit TIFF")
        if photo.icc_profile or photo.exif:
            photo.notes.append("16-bit TIFF written without ICC/EXIF (use PNG to keep them)")
        return buf.tobytes()
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise OutputError("could not encode a 16-bit PNG")
    data = buf.tobytes()
    # OpenCV drops metadata: splice iCCP and eXIf chunks right after IHDR (8 + 25 bytes).
    extra = b""
    if photo.icc_profile:
        extra += _png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(photo.icc_profile))
    if photo.exif:
        exif = photo.exif[6:] if photo.exif.startswith(b"Exif\x00\x00") else photo.exif
        extra += _png_chunk(b"eXIf", exif)
    return data[:33] + extra + data[33:]


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Convenience: 8-bit RGB array of a file, orientation applied."""
    return read_image(path).rgb8()


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES and not path.name.startswith(".")


__all__ = ["Photo", "read_image", "write_image", "encode_image", "load_rgb", "is_image_file", "atomic_write_text",
           "SUPPORTED_SUFFIXES", "DEFAULT_MAX_MEGAPIXELS"]


def atomic_path(path: Path):
    """A temp path that replaces ``path`` when the block finishes: see
    :func:`mirrorppr.outputs.atomic_path` (kept here for existing callers)."""
    return outputs.atomic_path(path)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write a file atomically (temp file, fsync, rename) through the output guard."""
    return outputs.write_bytes(path, data)


def atomic_write_text(path: Path, text: str) -> Path:
    return outputs.write_text(path, text)
