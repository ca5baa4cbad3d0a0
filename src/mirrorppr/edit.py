"""Apply a recipe of named operations to a photo (the ``mirrorppr edit`` job)."""
from __future__ import annotations

import numpy as np

from .imageio import Photo
from .landmarks import Face, find_face
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
    if mode == "exact":
        def detect(px: np.ndarray) -> np.ndarray:
            return find_face(_rgb8(px), source=source, backend=backend, index=face_index).points
        return apply_recipe_exact(pixels, recipe, detect, points=face.points)
    h, w = pixels.shape[:2]
    field, _ = recipe_field(face.points, recipe, (w, h), working)
    return field.apply(pixels)


def edit_photo(photo: Photo, recipe: Recipe, **kw) -> Photo:
    """Retouch a :class:`Photo`; metadata (ICC, EXIF, format) is carried over."""
    return photo.with_pixels(edit_pixels(photo.pixels, recipe, source=str(photo.path or "image"), **kw))
