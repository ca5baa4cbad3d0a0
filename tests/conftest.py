"""Shared real photos (from installed wheels) and expensive results, made once per run."""
from __future__ import annotations

import numpy as np
import pytest

from mirrorppr import samples
from mirrorppr.imageio import read_image
from mirrorppr.landmarks import find_face


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return read_image(samples.astronaut()).rgb8()


@pytest.fixture(scope="session")
def hopper() -> np.ndarray:
    return read_image(samples.grace_hopper()).rgb8()


@pytest.fixture(scope="session")
def astronaut_face(astronaut):
    return find_face(astronaut)


@pytest.fixture(scope="session")
def hopper_face(hopper):
    return find_face(hopper)


@pytest.fixture(scope="session")
def exemplar(hopper, hopper_face):
    """A synthetic exemplar: Grace Hopper before/after a known recipe (fast mode)."""
    from mirrorppr.edit import edit_pixels
    from mirrorppr.ops.recipe import Recipe

    recipe = Recipe.of(("face_width", -60), ("nose_alar", -70))
    after = edit_pixels(hopper, recipe, face=hopper_face)
    return recipe, hopper, after


@pytest.fixture(scope="session")
def operation(exemplar, hopper_face):
    from mirrorppr.analyze import analyze

    _, before, after = exemplar
    return analyze(before, after, face=hopper_face)
