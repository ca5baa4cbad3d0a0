"""Apply a recipe of named operations to a photo (the ``mirrorppr edit`` job)."""
from __future__ import annotations

import numpy as np

from .imageio import Photo
from .landmarks import Face, find_face
from .ops.base import get_op
from .ops.recipe import Recipe, recipe_field
from .paper.render import apply_recipe_exact

MODES = ("fast", "exact")


def _rgb8(pixels: np.ndarray) -> np.ndarray:
    return Photo(pixels).rgb8()


def edit_pixels(pixels: np.ndarray, recipe: Recipe, *, mode: str = "fast", face: Face | None = None,
                backend: str | None = None, face_index: int | None = None, source: str = "image",
                working: int = 1024) -> np.ndarray:
    """Retouch an (H, W, C) array with ``recipe``; returns a new array of the same layout."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    if len(recipe.active()) == 0:
        return pixels.copy()
    if face is None:
        face = find_face(_rgb8(pixels), source=source, backend=backend, index=face_index)
    body_steps = Recipe([st for st in recipe.active() if get_op(st.op).family == "body"])
    if len(body_steps):
        # Body ops act on the person's skeleton; the face ops then on what they leave.
        pixels = _edit_body(pixels, body_steps, face, source)
        recipe = Recipe([st for st in recipe.active() if get_op(st.op).family != "body"])
        if not len(recipe):
            return pixels
    if mode == "exact":
        def detect(px: np.ndarray) -> np.ndarray:
            return find_face(_rgb8(px), source=source, backend=backend, index=face_index).points
        return apply_recipe_exact(pixels, recipe, detect, points=face.points)
    h, w = pixels.shape[:2]
    field, _ = recipe_field(face.points, recipe, (w, h), working)
    return field.apply(pixels)


def _edit_body(pixels: np.ndarray, recipe: Recipe, face: Face, source: str) -> np.ndarray:
    from .body.detect import find_body
    from .body.edit import edit_field
    from .body.parts import Skeleton
    from .errors import FaceError
    from .ops.body import STROKES

    body = find_body(_rgb8(pixels), face.box)
    if body is None:
        raise FaceError(f"{source}: no body found below the face; body ops "
                        f"({', '.join(st.op for st in recipe)}) need the person's shoulders in the photo")
    sk = Skeleton.of(body)
    missing = [st.op for st in recipe if not STROKES[st.op](sk)]
    if missing:
        raise FaceError(f"{source}: the photo does not show the body parts that {', '.join(missing)} acts on")
    h, w = pixels.shape[:2]
    return edit_field(None, sk, (w, h), face.points, overrides={st.op: st.strength for st in recipe}).apply(pixels)


def edit_photo(photo: Photo, recipe: Recipe, **kw) -> Photo:
    """Retouch a :class:`Photo`; metadata (ICC, EXIF, format) is carried over."""
    return photo.with_pixels(edit_pixels(photo.pixels, recipe, source=str(photo.path or "image"), **kw))
