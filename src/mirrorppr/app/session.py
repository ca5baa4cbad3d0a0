"""Sessions: one folder and one state per browser tab (or API client), nothing shared.

A :class:`Studio` owns the app's temporary folder; each session gets a folder below it
with an unguessable name, holding that session's uploads (moved there from where Gradio
received them), previews and exports. Nothing else is ever served. A session ends when
its tab closes (Gradio's unload event), when it has been idle too long, or when the
server stops; its folder goes with it.
"""
from __future__ import annotations

import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import samples
from ..analyze.operation import Operation
from ..analyze.preset_schema import MAX_BYTES as PRESET_MAX_BYTES
from ..errors import ConfigError, InputError, MirrorError
from ..imageio import read_image, write_image
from ..jsonio import read_json
from ..landmarks import find_face
from .core import (PREVIEW_SIDE, Analysis, Exported, PreviewPhoto, Progress, Settings, _no_progress,
                   analyse_pair, as_preset, difference, export_photos, face_window, motion_picture,
                   preview_pixels, settings_of, with_recipe, write_jpeg)
from .limits import Limits, check_count, check_photo_file, display_name

#: A session nobody has used for this long is closed (API clients send no heartbeat).
IDLE_SECONDS = 6 * 3600
#: Previews kept per session: the one shown and the one being fetched.
KEEP_PREVIEWS = 4


@dataclass
class Preview:
    before: Path
    after: Path
    diff: Path
    seconds: float          # the transfer alone
    total: float            # transfer + the images for the page


@dataclass
class Workspace:
    """One session: its folder, its exemplar and its photos."""

    dir: Path
    limits: Limits
    analysis: Analysis | None = None
    operation: Operation | None = None   # what the sliders edit (as its preset holds it)
    exemplar_files: tuple[Path, Path] | None = None
    motion: Path | None = None
    photos: dict[str, PreviewPhoto] = field(default_factory=dict)
    shown: list[str] = field(default_factory=list)   # ops with a slider, in recipe order
    preview_side: int = PREVIEW_SIDE
    used: float = field(default_factory=time.monotonic)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _serial: int = 0
    _before: dict[tuple[str, str], Path] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for sub in ("in", "view", "out"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)

    # -------------------------------------------------------------- files
    def _next(self) -> int:
        self._serial += 1
        return self._serial

    def take(self, upload: str | Path, what: str) -> tuple[Path, str]:
        """Move an uploaded file into this session's folder (after checking it) and
        return its new path and the name it was uploaded with."""
        src = Path(upload)
        name = _safe_name(display_name(src))
        if not src.is_file():
            raise InputError(f"{name}: the upload is gone; upload it again")
        if what == "photo":
            check_photo_file(src, self.limits)
        elif Path(name).suffix.lower() != ".json":
            raise InputError(f"{name}: a preset is a .json file (made by 'Save preset' or 'mirrorppr analyze')")
        dst = self.dir / "in" / f"{self._next():03d}" / name
        dst.parent.mkdir()
        shutil.move(src, dst)
        _remove_empty(src.parent)
        return dst, name

    def view_path(self, stem: str, suffix: str = ".jpg") -> Path:
        return self.dir / "view" / f"{stem}-{self._next()}{suffix}"

    # -------------------------------------------------------------- exemplar
    def load_exemplar(self, before: str | Path, after: str | Path, procedure: str = "auto",
                      progress: Progress = _no_progress) -> Analysis:
        if not before or not after:
            raise InputError("load both photos of the exemplar: before and after retouching")
        b, _ = self.take(before, "photo")
        a, _ = self.take(after, "photo")
        return self._analyse(b, a, procedure, progress)

    def load_example(self, procedure: str = "auto", progress: Progress = _no_progress) -> Analysis:
        """The demo's exemplar (Grace Hopper before and after a recipe) and the astronaut
        portrait as a photo to retouch."""
        from ..demo import EXEMPLAR_RECIPE
        from ..edit import edit_pixels

        progress("making the bundled exemplar", 0.0)
        before = read_image(samples.grace_hopper())
        face = find_face(before.rgb8(), source="grace_hopper")
        folder = self.dir / "in" / f"{self._next():03d}"
        folder.mkdir()
        b = folder / "grace-hopper-before.jpg"
        shutil.copyfile(samples.grace_hopper(), b)
        a = write_image(before.with_pixels(edit_pixels(before.pixels, EXEMPLAR_RECIPE, face=face)),
                        folder / "grace-hopper-after.png")
        analysis = self._analyse(b, a, procedure, progress)
        if "astronaut.png" not in self.photos and len(self.photos) < self.limits.max_photos:
            q = folder / "astronaut.png"
            shutil.copyfile(samples.astronaut(), q)
            self.photos["astronaut.png"] = PreviewPhoto.load(q, "astronaut.png", self.preview_side)
        return analysis

    def _analyse(self, before: Path, after: Path, procedure: str, progress: Progress) -> Analysis:
        analysis = analyse_pair(before, after, procedure, progress)
        progress("drawing the motion map", 0.99)
        src = read_image(before).rgb8()
        self.motion = write_jpeg(motion_picture(analysis.operation, src, analysis.source_face),
                                 self.view_path("motion"))
        self.analysis, self.operation, self.exemplar_files = analysis, analysis.operation, (before, after)
        return analysis

    def load_preset(self, upload: str | Path) -> Operation:
        src, name = self.take(upload, "preset")
        # Read within bounds and validated field by field, as the command line reads presets.
        try:
            op = Operation.from_dict(read_json(src, "preset", PRESET_MAX_BYTES))
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError(f"{name}: malformed preset ({exc})") from None
        if not op.meta.get("analysed", True):
            raise ConfigError(f"{name}: this preset holds no analysis (made for the learned model)")
        self.operation, self.analysis, self.motion, self.exemplar_files = as_preset(op), None, None, None
        return self.operation

    def require_operation(self) -> Operation:
        if self.operation is None:
            raise ConfigError("no exemplar yet: load a before/after pair (or the bundled example) "
                              "or a preset first")
        return self.operation

    def save_preset(self, settings: Settings) -> Path:
        op = with_recipe(self.require_operation(), settings.recipe)
        folder = self.dir / "out" / f"{self._next():03d}"
        return op.save(folder / "preset.json")

    # -------------------------------------------------------------- photos
    def add_photos(self, uploads: list[str | Path]) -> tuple[list[PreviewPhoto], list[str]]:
        """Take each uploaded photo that passes the limits; returns those added and one
        message per photo refused (refused uploads are deleted at once)."""
        added, refused = [], []
        for u in [u for u in uploads or [] if u]:
            name, path = _safe_name(display_name(u)), Path(u)
            try:
                check_count(len(self.photos), name, self.limits)
                path, name = self.take(u, "photo")
                key = _unique(name, self.photos)
                try:
                    entry = PreviewPhoto.load(path, key, self.preview_side)
                except MirrorError:
                    shutil.rmtree(path.parent, ignore_errors=True)
                    raise
            except MirrorError as exc:
                refused.append(str(exc).replace(str(path), name).replace(str(u), name))
                Path(u).unlink(missing_ok=True)
                _remove_empty(Path(u).parent)
                continue
            self.photos[key] = entry
            added.append(entry)
        return added, refused

    def clear_photos(self) -> None:
        for p in self.photos.values():
            shutil.rmtree(p.path.parent, ignore_errors=True)
        self.photos.clear()
        self._before.clear()

    def photo(self, key: str | None) -> PreviewPhoto:
        if not self.photos:
            raise InputError("no photo to retouch yet: add one or more photos")
        if key not in self.photos:
            raise InputError(f"{key}: not one of this session's photos")
        return self.photos[key]

    # -------------------------------------------------------------- preview / export
    def preview(self, key: str, settings: Settings, close_up: bool = False) -> Preview:
        """The photo retouched at preview size (and the views the page shows: before,
        after, difference; ``close_up`` crops them to the face)."""
        op = self.require_operation()
        photo = self.photo(key)
        t0 = time.perf_counter()
        after = preview_pixels(op, photo, settings)
        t1 = time.perf_counter()
        stem = Path(key).stem
        window = face_window(photo) if close_up else np.s_[:, :]
        tag = "face" if close_up else "photo"
        before = self._before.get((key, tag))
        if before is None:
            before = self._before[(key, tag)] = write_jpeg(photo.pixels[window], self.view_path(f"{stem}-before"))
        out = Preview(before, write_jpeg(after[window], self.view_path(f"{stem}-after")),
                      write_jpeg(difference(photo.pixels[window], after[window]),
                                 self.view_path(f"{stem}-diff")), t1 - t0, 0.0)
        self._prune_views()
        out.total = time.perf_counter() - t0
        return out

    def export(self, settings: Settings, keys: list[str] | None = None, zip_all: bool = False) -> Exported:
        op = self.require_operation()
        keys = list(self.photos) if keys is None else keys
        photos = [self.photo(k) for k in keys]
        folder = self.dir / "out" / f"{self._next():03d}"
        return export_photos(op, settings, [(p.path, p.name) for p in photos], folder,
                             zip_name="retouched.zip" if zip_all else None)

    def _prune_views(self) -> None:
        views = sorted((p for p in (self.dir / "view").glob("*-[0-9]*.jpg")
                        if "-after-" in p.name or "-diff-" in p.name),
                       key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        for p in views[:-2 * KEEP_PREVIEWS]:
            p.unlink(missing_ok=True)

    def default_settings(self) -> Settings:
        return settings_of(self.require_operation())

    def default_values(self) -> dict[str, float]:
        """Slider values as the analysis (or preset) left them."""
        return dict(self.default_settings().strengths)

    def reset_shown(self) -> None:
        """One slider per op of the analysed recipe, none added."""
        self.shown = list(dict.fromkeys(name for name, _ in self.default_settings().strengths))

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _safe_name(name: str) -> str:
    """A file name without folders or leading dots (Gradio already strips odd characters)."""
    name = Path(name.replace("\\", "/")).name.lstrip(".")
    return name or "photo"


def _unique(name: str, taken: dict) -> str:
    if name not in taken:
        return name
    stem, suffix = Path(name).stem, Path(name).suffix
    i = 2
    while f"{stem}-{i}{suffix}" in taken:
        i += 1
    return f"{stem}-{i}{suffix}"


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


class Studio:
    """All sessions of one server, below one temporary folder."""

    def __init__(self, root: Path, limits: Limits | None = None, idle_seconds: float = IDLE_SECONDS,
                 preview_side: int = PREVIEW_SIDE) -> None:
        self.root = Path(root).resolve()
        self.sessions_dir = self.root / "sessions"
        self.sessions_dir.mkdir(parents=True, exist_ok=True)
        self.limits = limits or Limits()
        self.idle_seconds = idle_seconds
        self.preview_side = preview_side
        self._sessions: dict[str, Workspace] = {}
        self._lock = threading.Lock()

    def workspace(self, session: str | None) -> Workspace:
        """This session's workspace (made on first use); closes idle ones."""
        if not session:
            raise MirrorError("no session: reload the page")
        now = time.monotonic()
        with self._lock:
            for key, ws in list(self._sessions.items()):
                if key != session and now - ws.used > self.idle_seconds:
                    self._sessions.pop(key).close()
            ws = self._sessions.get(session)
            if ws is None:
                ws = Workspace(self.sessions_dir / secrets.token_hex(16), self.limits,
                               preview_side=self.preview_side)
                self._sessions[session] = ws
            ws.used = now
            return ws

    def find(self, session: str) -> Workspace | None:
        with self._lock:
            return self._sessions.get(session)

    def end(self, session: str | None) -> None:
        """A tab closed: its folder goes."""
        with self._lock:
            ws = self._sessions.pop(session, None) if session else None
        if ws is not None:
            with ws.lock:
                ws.close()

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for ws in sessions:
            ws.close()

    @property
    def session_count(self) -> int:
        return len(self._sessions)


__all__ = ["Studio", "Workspace", "Preview", "Settings"]
