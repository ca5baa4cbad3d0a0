"""The operation library: the paper's LLW ops and this project's professional ops."""
from . import llw  # noqa: F401,I001  (registers the paper's ops first)
from . import face  # noqa: F401,E402  (then this project's)
from .apply import apply_exact, blend_mask, geometry_field
from .base import REGISTRY, Geometry, Op, get_op, ops_in, register

__all__ = ["Op", "Geometry", "REGISTRY", "get_op", "ops_in", "register", "apply_exact",
           "geometry_field", "blend_mask"]
