"""The operation library: the paper's LLW ops, this project's professional face ops and
the body ops."""
from . import llw  # noqa: F401,I001  (registers the paper's ops first)
from . import face  # noqa: F401,E402  (then this project's)
from . import body  # noqa: F401,E402  (and the body's)
from .apply import apply_exact, blend_mask, geometry_field
from .base import REGISTRY, Geometry, Op, get_op, ops_in, register

__all__ = ["Op", "Geometry", "REGISTRY", "get_op", "ops_in", "register", "apply_exact",
           "geometry_field", "blend_mask"]
