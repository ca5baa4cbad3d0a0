"""mirrorppr: exemplar-based portrait retouching.

    >>> from mirrorppr import Retoucher
    >>> r = Retoucher.from_exemplar("before.jpg", "after.jpg")
    >>> r.retouch_file("someone.jpg", "someone-retouched.jpg")

Pipeline: :mod:`mirrorppr.analyze` (exemplar -> :class:`Operation`) ->
:mod:`mirrorppr.transfer` (engines) on top of :mod:`mirrorppr.landmarks`,
:mod:`mirrorppr.warp` and :mod:`mirrorppr.ops`.
"""
from .analyze import Operation, analyze
from .edit import edit_photo
from .errors import ConfigError, FaceError, InputError, MirrorError, OutputError
from .imageio import Photo, read_image, write_image
from .ops import get_op, ops_in
from .ops.recipe import Recipe, Step
from .transfer import Retoucher

__version__ = "0.1.0"
__all__ = ["Retoucher", "Operation", "analyze", "Recipe", "Step", "Photo", "read_image",
           "write_image", "edit_photo", "get_op", "ops_in", "MirrorError", "InputError",
           "FaceError", "OutputError", "ConfigError", "__version__"]
