"""A small process pool that stops when asked and dies with its parent.

``concurrent.futures`` finishes every submitted task on Ctrl-C and leaves its workers
alive for minutes when the parent is killed with ``kill -9``. This pool:

- on Ctrl-C (``KeyboardInterrupt`` in the parent) drops pending tasks and stops the
  workers at once (SIGTERM, then SIGKILL after a grace period); a task that was running
  leaves no temp file behind (the worker removes its own on SIGTERM, the parent sweeps
  after a SIGKILL);
- makes each worker exit when its parent dies: ``PR_SET_PDEATHSIG`` on Linux and, on any
  system, a thread that notices the parent is gone;
- reports a worker that crashes (segfault, out of memory) as the failure of its task.

Workers ignore SIGINT: a terminal's Ctrl-C reaches the whole process group, and only the
parent decides what stops.
"""
from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from . import outputs

#: Seconds a worker has to exit after SIGTERM before it is killed.
GRACE = 1.0
#: How often a worker checks that its parent is still alive.
WATCH_INTERVAL = 0.25


@dataclass
class Outcome:
    """What became of one task: ``value`` when it returned, ``error`` when it raised."""

    index: int
    value: Any = None
    error: str | None = None
    code: int | None = None      # the exit code of a MirrorError, None for anything else


def run_parallel(fn: Callable[..., Any], tasks: list[tuple], workers: int, *,
                 init: Callable[..., None] | None = None, init_args: tuple = (),
                 start_method: str = "spawn",
                 outputs_of: Callable[[tuple], Iterable[Path]] | None = None) -> Iterator[Outcome]:
    """Run ``fn(*task)`` for every task on ``workers`` processes; yield outcomes as they
    finish (any order). ``init(*init_args)`` runs once per worker first. ``outputs_of``
    names the files a task writes, so their temp files can be swept if it is killed.

    ``KeyboardInterrupt`` in the caller stops everything and propagates.
    """
    ctx = mp.get_context(start_method)
    todo: Any = ctx.Queue()
    done: Any = ctx.Queue()
    for i, t in enumerate(tasks):
        todo.put((i, t))
    for _ in range(workers):
        todo.put(None)
    procs = [ctx.Process(target=_worker, args=(fn, init, init_args, todo, done, os.getpid()), daemon=True)
             for _ in range(workers)]
    for p in procs:
        p.start()
    running: dict[int, int] = {}          # worker pid -> task index
    reported: set[int] = set()
    left = len(tasks)
    try:
        while left:
            try:
                msg = done.get(timeout=0.2)
            except queue.Empty:
                msg = None
            if msg is not None:
                kind, pid, index, payload = msg
                if kind == "start":
                    running[pid] = index
                    continue
                running.pop(pid, None)
                reported.add(index)
                left -= 1
                yield Outcome(index, value=payload) if kind == "ok" else Outcome(index, *payload)
                continue
            for lost in _dead_workers(procs, running):
                reported.add(lost)
                left -= 1
                yield Outcome(lost, error="worker process died (out of memory or a crash)")
            if left and not any(p.is_alive() for p in procs):
                for index in sorted(set(range(len(tasks))) - reported):
                    yield Outcome(index, error="not run: every worker process had exited")
                return
    except BaseException:
        _stop(procs)
        if outputs_of is not None:
            for index in running.values():
                for path in outputs_of(tasks[index]):
                    outputs.remove_stale_temps(path)
        raise
    finally:
        for p in procs:
            p.join(timeout=GRACE)
        _stop(procs)
        for q in (todo, done):
            q.cancel_join_thread()
            q.close()


def _dead_workers(procs: list, running: dict[int, int]) -> list[int]:
    """Tasks whose worker died without reporting (they will not finish)."""
    lost = []
    for p in procs:
        if not p.is_alive() and p.exitcode not in (0, None) and p.pid in running:
            lost.append(running.pop(p.pid))
    return lost


def _stop(procs: list) -> None:
    for p in procs:
        if p.is_alive():
            with contextlib.suppress(OSError):
                p.terminate()
    deadline = time.monotonic() + GRACE
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            with contextlib.suppress(OSError):
                p.kill()
            p.join(timeout=GRACE)


# ------------------------------------------------------------------ inside a worker
def _worker(fn, init, init_args, todo, done, parent: int) -> None:
    die_with_parent(parent)
    if init is not None:
        try:
            init(*init_args)
        except BaseException as exc:  # every task of this worker fails with the reason
            reason = _describe(exc)
            while (item := todo.get()) is not None:
                done.put(("error", os.getpid(), item[0], reason))
            return
    while (item := todo.get()) is not None:
        index, task = item
        done.put(("start", os.getpid(), index, None))
        try:
            done.put(("ok", os.getpid(), index, fn(*task)))
        except Exception as exc:  # the task's failure, reported; the worker goes on
            done.put(("error", os.getpid(), index, _describe(exc)))


def die_with_parent(parent: int) -> None:
    """Make this process stop cleanly on SIGTERM, ignore SIGINT, and exit when
    ``parent`` is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_term)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:       # the parent died before the line above
        _exit_now()
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="parent-watch").start()


def _watch(parent: int) -> None:
    while True:
        time.sleep(WATCH_INTERVAL)
        if os.getppid() != parent:
            _exit_now()


def _on_term(signum, frame) -> None:
    _exit_now()


def _exit_now() -> None:
    outputs.remove_temp_files()
    os._exit(143)


def _describe(exc: BaseException) -> tuple[None, str, int | None]:
    """(value, error text, exit code) of a failed task, as Outcome takes them."""
    from .errors import MirrorError

    if isinstance(exc, MirrorError):
        return None, str(exc), exc.code
    return None, f"{type(exc).__name__}: {exc}", None


__all__ = ["run_parallel", "Outcome", "die_with_parent"]
