"""The studio's work, without any web framework: analyse an exemplar, edit its recipe,
preview a photo at screen size, export at full resolution.

Two rules keep the page honest:

- the operation the studio holds is the one its preset holds (analysed, then read back
  from its own JSON), so a preview, an export and ``mirrorppr apply`` with the saved
  preset all start from the same numbers;
- an export is made exactly as ``mirrorppr apply PRESET PHOTO -o DIR --engine E
  --strength K`` makes it (same :class:`~mirrorppr.transfer.Retoucher`, same writer), so
  its pixels are the command line's, bit for bit.

A preview is the same engine on a copy of the photo scaled to screen size, with the
landmarks found once on the full photo and scaled with it: only the transfer runs per
slider change.
"""
from __future__ import annotations

import json
import os
import time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..analyze import analyze
from ..analyze.operation import Operation
from ..errors import ConfigError, MirrorError
from ..eval.metrics import pixel_difference
from ..imageio import Photo, read_image, write_image
from ..landmarks import Face, find_face
from ..ops import get_op
from ..body.edit import BodyEdit
from ..ops.base import get_op
from ..ops.recipe import Recipe, Step
from ..transfer import Retoucher, transport
from ..visualize import flow_arrows

#: Long side of previews (pixels): what the page shows at about 1:1 (its before/after view
#: is at most 560 px high), and what keeps a preview of a 24 MP photo under 0.3 s.
PREVIEW_SIDE = 800
#: Engines the studio offers (the learned model needs weights and a GPU: command line).
STUDIO_ENGINES = ("auto", "recipe", "flow")

#: Called with a stage name and the fraction done (as :func:`mirrorppr.analyze.analyze` calls it).
Progress = Callable[[str, float], None]


def _no_progress(stage: str, fraction: float) -> None:  # noqa: ARG001
    return None


# ------------------------------------------------------------------ settings
@dataclass(frozen=True)
class Settings:
    """What the sliders say: one strength per recipe op (in order), the global
    multiplier and the engine."""

    strengths: tuple[tuple[str, float], ...] = ()
    strength: float = 1.0
    engine: str = "auto"

    def __post_init__(self) -> None:
        if self.engine not in STUDIO_ENGINES:
            raise ConfigError(f"engine {self.engine!r}: the studio offers {', '.join(STUDIO_ENGINES)}")
        if not 0.0 <= float(self.strength) <= 2.0:
            raise ConfigError(f"global strength {self.strength:g} outside 0..2")
        for name, s in self.strengths:
            get_op(name).fraction(s)     # a known op, strength in [-100, 100]

    @property
    def recipe(self) -> Recipe:
        return Recipe([Step(name, float(s)) for name, s in self.strengths])

    def cli_options(self) -> list[str]:
        """The ``mirrorppr apply`` options that reproduce an export."""
        return ["--engine", self.engine, "--strength", f"{self.strength:g}"]


def sliders_of(op: Operation) -> Recipe:
    """What the sliders show: the face recipe, then the body's ops when it carries them."""
    body = op.body.recipe.steps if op.body is not None and op.body.choice in ("ops", "ops+motion") else []
    return Recipe(list(op.recipe.steps) + list(body))


def settings_of(op: Operation, engine: str = "auto", strength: float = 1.0) -> Settings:
    """The sliders as an analysis leaves them: its recipe, strength 1."""
    return Settings(tuple((s.op, float(s.strength)) for s in sliders_of(op)), float(strength), engine)


def edit(op: Operation, recipe: Recipe) -> Operation:
    """The operation with the sliders' recipe.

    Unchanged sliders leave the analysis as it was. Changed ones are what the person
    asked for: an exemplar the analysis carries as its measured motion (``flow``), or
    found nothing in (``none``), is then carried as the recipe plus the motion it leaves
    (``recipe+residual``), as the ``auto`` engine does with per-op overrides, so that a
    slider always acts. The saved preset holds exactly this."""
    if recipe.to_list() == sliders_of(op).to_list():
        return op
    face = Recipe([s for s in recipe if get_op(s.op).family != "body"])
    body_steps = Recipe([s for s in recipe if get_op(s.op).family == "body"])
    meta = dict(op.meta)
    meta.setdefault("studio", {"analysed_recipe": op.recipe.to_list(), "analysed_choice": op.choice})
    out = op
    if face.to_list() != op.recipe.to_list():
        choice = "recipe+residual" if op.choice in ("flow", "none") else op.choice
        out = replace(out, recipe=face, choice=choice)
    old = op.body.recipe if op.body is not None and op.body.choice in ("ops", "ops+motion") else Recipe([])
    if body_steps.to_list() != old.to_list():
        # Body sliders act as ops; a body carried as measured motion alone gives way to them.
        body = op.body or BodyEdit()
        keep = body.choice if body.choice in ("ops", "ops+motion") else "ops"
        out = replace(out, body=replace(body, recipe=body_steps, choice=keep))
    return replace(out, meta=meta)


def with_recipe(op: Operation, recipe: Recipe) -> Operation:
    """:func:`edit`, exactly as its preset will read back."""
    return as_preset(edit(op, recipe))


def as_preset(op: Operation) -> Operation:
    """The operation as a preset file holds it (fields stored in half precision)."""
    return Operation.from_dict(json.loads(op.to_json()))


# ------------------------------------------------------------------ analysis
@dataclass
class Analysis:
    """An analysed exemplar: the operation (as its preset holds it) and what the page
    shows about it."""

    operation: Operation
    source_face: Face
    seconds: float

    def facts(self) -> list[tuple[str, str]]:
        """Rows of the analysis table."""
        return operation_facts(self.operation) + [("analysis time", f"{self.seconds:.1f} s")]


#: How ``auto`` carries each choice, in a retoucher's words.
CHOICE_WORDS = {"none": "nothing (no structural retouching found)", "recipe": "the named ops",
                "recipe+residual": "the named ops plus the motion they leave",
                "flow": "the measured motion itself (a slider change switches to the ops plus "
                        "the motion they leave)",
                "paper": "the paper's procedure, re-rendered"}


def operation_facts(op: Operation) -> list[tuple[str, str]]:
    """What the page says about an operation, as (label, value) rows."""
    peak = float(np.hypot(op.flow[..., 0], op.flow[..., 1]).max(initial=0.0))
    return [("found", "no face retouching (the body's is below)" if op.body_only else op.summary),
            ("auto transfers it as", "the body edit alone" if op.body_only else CHOICE_WORDS.get(op.choice, op.choice)),
            ("made as", "the paper's simulator (LLW procedure)" if op.provenance.kind == "paper"
             else "a clean warp (liquify-like)"),
            ("reproduces of the exemplar's change", f"{op.confidence:.0%}"),
            ("ops explain of the face motion", f"{op.explained:.0%}"),
            ("peak motion", f"{peak * 100:.1f}% of the eye distance")] + (
        [("body", f"{op.body.summary} (reproduces {op.body.confidence:.0%} of the body's change)")]
        if op.body is not None else [])


def candidate_rows(op: Operation) -> list[tuple[str, float, float, bool]]:
    """Each transfer tried on the exemplar: (name, PSNR dB, gain dB, chosen by auto)."""
    return [(c.name, c.psnr_db, c.gain_db, c.name == op.choice) for c in op.candidates]


def analyse_pair(before: str | os.PathLike, after: str | os.PathLike, procedure: str = "auto",
                 progress: Progress = _no_progress) -> Analysis:
    """Analyse an exemplar pair of files (the slow step: seconds, once per exemplar)."""
    t = time.perf_counter()
    progress("reading the photos", 0.0)
    src, tgt = read_image(before), read_image(after)
    face = find_face(src.rgb8(), source=Path(before).name)
    op = analyze(src, tgt, face=face, procedure=procedure, progress=progress)
    return Analysis(as_preset(op), face, time.perf_counter() - t)


def motion_picture(op: Operation, source_rgb: np.ndarray, face: Face, side: int = PREVIEW_SIDE) -> np.ndarray:
    """The exemplar's measured motion as arrows on a heatmap over its before photo."""
    rgb, k = fit_side(source_rgb, side)
    h, w = rgb.shape[:2]
    f = transport(op.flow, op.landmarks, face.points * k, (w, h))
    return flow_arrows(rgb, f.dense())


# ------------------------------------------------------------------ photos
def fit_side(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """Scaled (down only) so the long side is at most ``side``; returns the scale."""
    k = min(1.0, side / max(rgb.shape[:2]))
    if k >= 1.0:
        return np.ascontiguousarray(rgb), 1.0
    h, w = rgb.shape[:2]
    size = (max(1, round(w * k)), max(1, round(h * k)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), k


@dataclass
class PreviewPhoto:
    """A photo to retouch, as far as previews need it: a screen-size copy and its face
    (found once on the full photo, then scaled)."""

    name: str
    path: Path
    size: tuple[int, int]
    pixels: np.ndarray                 # uint8 RGB, long side <= PREVIEW_SIDE
    face: Face | None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path, name: str, side: int = PREVIEW_SIDE) -> "PreviewPhoto":
        photo = read_image(path)
        rgb = photo.rgb8()
        small, k = fit_side(rgb, side)
        try:
            face = find_face(rgb, source=name)
            face, error = Face(face.points * k, face.backend), None
        except MirrorError as exc:
            face, error = None, _short(str(exc), path, name)
        return cls(name, path, photo.size, small, face, error, list(photo.notes))

    def describe(self) -> str:
        w, h = self.size
        what = self.error or f"face {self.face.size / self._k():.0f} px"
        return f"{self.name}: {w}x{h}, {what}"

    def _k(self) -> float:
        return self.pixels.shape[1] / self.size[0]


def _short(message: str, path: Path, name: str) -> str:
    """A message that names the file as the person called it, not by its temp path."""
    return message.replace(str(path), name)


def preview_pixels(op: Operation, photo: PreviewPhoto, settings: Settings) -> np.ndarray:
    """The retouched preview (uint8 RGB at preview size): the export's engine and
    options on the screen-size copy."""
    if photo.face is None:
        raise MirrorError(photo.error or f"{photo.name}: no face")
    r = Retoucher(edit(op, settings.recipe), engine=settings.engine, strength=settings.strength)
    name = photo.name

    def detect(px: np.ndarray) -> np.ndarray:   # the paper's procedure re-detects per op
        return find_face(Photo(px).rgb8(), source=name).points
    return r.engine(r.operation, photo.pixels, photo.face, r.options, detect)


def face_window(photo: PreviewPhoto, pad: float = 0.45) -> tuple[slice, slice]:
    """The face and some of its surroundings (structural edits are subtle at photo scale)."""
    if photo.face is None:
        return np.s_[:, :]
    x0, y0, x1, y1 = photo.face.box
    m = pad * max(x1 - x0, y1 - y0)
    h, w = photo.pixels.shape[:2]
    return (slice(max(0, int(y0 - m)), min(h, int(y1 + m) + 1)),
            slice(max(0, int(x0 - m)), min(w, int(x1 + m) + 1)))


def difference(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Where pixels changed, amplified (black = unchanged): the heatmap of
    :func:`mirrorppr.visualize.heatmap`, in 8-bit steps (it runs on every slider move)."""
    d = pixel_difference(before, after)
    vmax = max(8.0, float(d.max()))
    scaled = cv2.convertScaleAbs(d, alpha=255.0 / vmax)
    return cv2.cvtColor(cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def write_jpeg(rgb: np.ndarray, path: Path, quality: int = 90) -> Path:
    """A screen image (fast to encode; never an export)."""
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise MirrorError(f"{path.name}: could not encode the preview")
    path.write_bytes(buf.tobytes())
    return path


# ------------------------------------------------------------------ export
EXPORT_FORMAT = "mirrorppr.studio-export/1"


@dataclass
class Exported:
    path: Path                        # the image, or the zip
    preset: Path                      # the preset it was made with (also inside a zip)
    done: list[str]
    failed: dict[str, str]
    seconds: float


def export_photos(op: Operation, settings: Settings, photos: list[tuple[Path, str]], outdir: Path,
                  *, zip_name: str | None = None) -> Exported:
    """Retouch ``photos`` ((file, name) pairs) at full resolution into ``outdir``.

    One photo and no ``zip_name``: the image itself. Otherwise a zip with every image,
    ``preset.json`` (the recipe the sliders hold) and a sidecar ``NAME.json`` per image
    that says how it was made, including the command that makes it again.
    """
    t = time.perf_counter()
    outdir.mkdir(parents=True, exist_ok=True)
    edited = with_recipe(op, settings.recipe)
    preset = edited.save(outdir / "preset.json")
    r = Retoucher(edited, engine=settings.engine, strength=settings.strength)
    done, failed, files = [], {}, []
    for src, name in photos:
        dst = outdir / name
        try:
            res = r.run(src)
            write_image(res.photo, dst, protect=(src,))
        except MirrorError as exc:
            failed[name] = _short(str(exc), src, name)
            continue
        side = outdir / f"{name}.json"
        side.write_text(json.dumps(_sidecar(name, settings, edited, res), indent=1))
        done.append(name)
        files += [dst, side]
    if zip_name is None and len(photos) == 1:
        if failed:
            raise MirrorError(next(iter(failed.values())))
        return Exported(outdir / photos[0][1], preset, done, failed, time.perf_counter() - t)
    if not done and failed:
        raise MirrorError("nothing exported: " + "; ".join(failed.values()))
    zpath = outdir / (zip_name or "retouched.zip")
    with zipfile.ZipFile(zpath, "w") as z:
        z.write(preset, "preset.json", compress_type=zipfile.ZIP_DEFLATED)
        for f in files:   # photos are compressed already
            z.write(f, f.name, compress_type=zipfile.ZIP_DEFLATED if f.suffix == ".json" else zipfile.ZIP_STORED)
        if failed:
            z.writestr("failed.json", json.dumps(failed, indent=1))
    return Exported(zpath, preset, done, failed, time.perf_counter() - t)


def _sidecar(name: str, settings: Settings, op: Operation, res) -> dict:
    sliders = sliders_of(op)
    applied = sliders.scaled(settings.strength).active()
    return {"format": EXPORT_FORMAT, "input": name, "output": name, "preset": "preset.json",
            "engine": settings.engine, "strength": settings.strength,
            "recipe": sliders.to_list(), "applied": applied.to_list(),
            "size": list(res.photo.size), "bit_depth": res.photo.bit_depth,
            "face_box": [round(v, 1) for v in res.face.box], "seconds": round(res.seconds, 3),
            "notes": list(res.photo.notes),
            "command": " ".join(["mirrorppr", "apply", "preset.json", name, "-o", "OUT",
                                 *settings.cli_options()])}
