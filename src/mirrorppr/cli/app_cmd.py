"""``app``: the studio, a local web app (Gradio, the ``app`` extra)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import ConfigError
from .common import FORMATTER


def register(sub) -> None:
    p = sub.add_parser(
        "app", help="the studio: a local web app to analyse, adjust, preview and export",
        description="Start mirrorppr studio in the browser: load an exemplar pair (or the "
                    "bundled example), adjust the recovered recipe with one slider per op, "
                    "preview photos live, export them at full resolution. Local only: it binds "
                    "to 127.0.0.1 unless --host says otherwise and loads nothing from other hosts.",
        epilog="examples:\n  mirrorppr app                      # then open http://localhost:7860/\n"
               "  mirrorppr app --port 8080 --max-megapixels 30",
        formatter_class=FORMATTER)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--share-dir", type=Path, metavar="DIR",
                   help="where the studio keeps its files (uploads, previews, exports) in a folder "
                        "of its own, removed when it stops (default: the system's temp folder)")
    p.add_argument("--max-file-mb", type=float, default=50.0, help="largest upload (default 50 MB)")
    p.add_argument("--max-megapixels", type=float, default=50.0, help="largest photo (default 50 MP)")
    p.add_argument("--max-photos", type=int, default=20, help="photos per session (default 20)")
    p.set_defaults(func=run_app)


def run_app(args) -> int:
    if importlib.util.find_spec("gradio") is None:
        raise ConfigError("the studio needs the 'app' extra: pip install 'mirrorppr[app]'")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port}: use 1..65535")
    if min(args.max_file_mb, args.max_megapixels, args.max_photos) <= 0:
        raise ConfigError("--max-file-mb, --max-megapixels and --max-photos must be positive")
    from ..app import Limits, serve

    serve(args.host, args.port, args.share_dir,
          Limits(args.max_file_mb, args.max_megapixels, args.max_photos))
    return 0


__all__ = ["register"]
