"""Serving the studio: local only, offline, files only from its own temporary folder.

Gradio's page is mounted in a FastAPI app behind a small guard that answers 403 to any
file request outside the studio's folder (``..``, absolute paths, links pointing out)
and to any request that would make the server fetch a URL (``file=https://...``,
``proxy=``): the studio never reaches another host. Telemetry and run history are off,
fonts are the system's, and the server binds to 127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from .limits import Limits
from .session import Studio

log = logging.getLogger("mirrorppr.app")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
FILE_ROUTE = "/gradio_api/file="
#: Routes by which Gradio can fetch from another host: never needed here.
OUTBOUND_ROUTES = ("/gradio_api/proxy=",)


class LocalFilesOnly:
    """ASGI guard: files only from below ``root``; no URL fetching."""

    def __init__(self, app, root: Path) -> None:
        self.app, self.root = app, os.path.realpath(root)

    def allowed(self, raw_path: str) -> bool:
        path = unquote(raw_path)
        if any(path.startswith(r) for r in OUTBOUND_ROUTES):
            return False
        if FILE_ROUTE not in path and not path.startswith("/gradio_api/file/"):
            return True
        target = path.split(FILE_ROUTE, 1)[1] if FILE_ROUTE in path else path[len("/gradio_api/file/"):]
        if "://" in target or target.startswith(("http:", "https:", "//")):
            return False
        real = os.path.realpath(target)     # relative: from the working folder, as Gradio reads it
        return real == self.root or real.startswith(self.root + os.sep)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and not self.allowed(scope.get("path", "")):
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": b"not allowed\n"})
            return
        await self.app(scope, receive, send)


def _prepare_environment(root: Path) -> None:
    """Before Gradio is imported: its temporary files below ``root``, no telemetry."""
    os.environ["GRADIO_TEMP_DIR"] = str(root)
    os.environ["GRADIO_EXAMPLES_CACHE"] = str(root / "examples")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["GRADIO_RUN_HISTORY"] = "False"
    os.environ.setdefault("GRADIO_SSR_MODE", "False")
    os.environ["HF_HUB_OFFLINE"] = "1"


def make_root(share_dir: str | os.PathLike | None) -> Path:
    """A fresh folder of the studio's own (inside ``share_dir`` when given)."""
    if share_dir is not None:
        Path(share_dir).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="mirrorppr-studio-", dir=share_dir)).resolve()


def build_app(root: Path, limits: Limits | None = None, **studio_kw):
    """The ASGI app (guard + FastAPI + Gradio) and its :class:`Studio`."""
    _prepare_environment(root)
    import gradio as gr
    from fastapi import FastAPI

    from .ui import CSS, build_ui, theme

    studio = Studio(root, limits, **studio_kw)
    demo = build_ui(studio)
    demo.queue(default_concurrency_limit=1)
    api = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    api = gr.mount_gradio_app(api, demo, path="", footer_links=["api"], run_history=False,
                              max_file_size=studio.limits.gradio_max_file_size(), show_error=True,
                              allowed_paths=[], ssr_mode=False, enable_monitoring=False,
                              mcp_server=False, pwa=False, theme=theme(), css=CSS)
    return LocalFilesOnly(api, root), studio


@dataclass
class Running:
    """A studio server running in a background thread (tests, benchmarks)."""

    url: str
    studio: Studio
    server: object
    thread: threading.Thread
    root: Path
    owns_root: bool

    def close(self) -> None:
        self.server.should_exit = True      # open event streams are cut after 2 s
        self.thread.join(timeout=10)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout=10)
        self.studio.close()
        if self.owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Running":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _server(app, host: str, port: int):
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                            ws="none", access_log=False, timeout_graceful_shutdown=2)
    return uvicorn.Server(config)


def start(host: str = DEFAULT_HOST, port: int | None = None, share_dir: str | os.PathLike | None = None,
          limits: Limits | None = None, **studio_kw) -> Running:
    """Start a studio in a background thread; returns when it answers."""
    root = make_root(share_dir)
    app, studio = build_app(root, limits, **studio_kw)
    port = port or free_port(host)
    server = _server(app, host, port)
    thread = threading.Thread(target=server.run, name="mirrorppr-studio", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            studio.close()
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"the studio did not start on {host}:{port}")
        time.sleep(0.05)
    return Running(f"http://{host}:{port}/", studio, server, thread, root, True)


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, share_dir: str | os.PathLike | None = None,
          limits: Limits | None = None) -> None:
    """Run the studio in the foreground until interrupted; its folder is removed after."""
    root = make_root(share_dir)
    try:
        app, studio = build_app(root, limits)
        print(f"mirrorppr studio: http://{'localhost' if host == DEFAULT_HOST else host}:{port}/ "
              f"(files in {root}; Ctrl-C stops)", flush=True)
        try:
            _server(app, host, port).run()
        finally:
            studio.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
