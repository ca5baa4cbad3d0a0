"""mirrorppr studio: a local web app (Gradio) for exemplar-based retouching.

Load an exemplar pair, see the recovered recipe as one slider per operation, preview
photos live at screen size, export them at full resolution exactly as ``mirrorppr
apply`` would. ``mirrorppr app`` starts it; :func:`start` runs one in a background
thread. Needs the ``app`` extra (Gradio).

Modules: :mod:`.core` (the work, no web framework), :mod:`.session` (one folder and
state per session), :mod:`.limits` (what uploads may be), :mod:`.ui` (the page and its
API endpoints), :mod:`.server` (local-only serving).
"""
from .limits import Limits
from .session import Studio, Workspace

__all__ = ["Limits", "Studio", "Workspace", "start", "serve"]


def start(*args, **kwargs):
    """Start a studio server in a background thread (see :func:`.server.start`)."""
    from .server import start as _start
    return _start(*args, **kwargs)


def serve(*args, **kwargs):
    """Run a studio server in the foreground (see :func:`.server.serve`)."""
    from .server import serve as _serve
    return _serve(*args, **kwargs)
