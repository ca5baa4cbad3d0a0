"""The one guard every file mirrorppr writes goes through.

Two layers:

- **Writes** (:func:`atomic_path`, :func:`write_bytes`, :func:`write_text`): a temp file
  beside the target, fsync, then a rename, so a reader never sees half a file and a
  failed write leaves the old file as it was and no temp file behind. A new file gets the
  mode the umask gives (``mkstemp`` alone would make it 0600); a replaced file keeps its
  mode. Any OS failure (read-only or full filesystem, no permission, a parent that cannot
  be created) becomes an :class:`OutputError` (exit 5) with a one-line reason. A write
  never replaces a file read as an input of the running command.
- **A run** (:func:`run_scope`, :class:`RunGuard`): a command declares what it reads and
  what it will write before doing any work. An output is refused when it is an input,
  when another output of the same run already claimed it, or when it exists and the
  command was not given ``--overwrite`` (existing-output policy: refuse with a message;
  ``batch`` and ``data`` resume instead, see their docs). Images read while the run is
  active are protected as inputs automatically.

Outside a run scope (the Python API) writes still refuse the paths passed as
``protect`` and keep the atomic, mode-preserving behaviour.
"""
from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import stat
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .errors import OutputError

#: Temp files being written by this process, removed by :func:`remove_temp_files` when a
#: worker is told to stop (a signal handler cannot unwind the writer's ``finally``).
_TEMPS: set[str] = set()
_UMASK_LOCK = threading.Lock()


# ------------------------------------------------------------------ identity
def _real(path: Path) -> Path:
    """The file a path names: symlinks followed, relative parts resolved."""
    return Path(os.path.realpath(os.path.abspath(path)))


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (same real path, or hard links of one inode)."""
    a, b = Path(a), Path(b)
    if _real(a) == _real(b):
        return True
    ia, ib = _inode(a), _inode(b)
    return ia is not None and ia == ib


@dataclass
class _Registry:
    """Files by real path and by inode (hard links), each with the role it plays."""

    by_real: dict[Path, str] = field(default_factory=dict)
    by_inode: dict[tuple[int, int], str] = field(default_factory=dict)

    def add(self, path: str | os.PathLike, role: str) -> None:
        p = Path(path)
        self.by_real.setdefault(_real(p), role)
        ino = _inode(p)
        if ino is not None:
            self.by_inode.setdefault(ino, role)

    def role_of(self, path: str | os.PathLike) -> str | None:
        p = Path(path)
        role = self.by_real.get(_real(p))
        if role is None:
            ino = _inode(p)
            role = self.by_inode.get(ino) if ino is not None else None
        return role


# ------------------------------------------------------------------ the run
@dataclass
class RunGuard:
    """What one command reads and writes: inputs are never written, each output path is
    claimed by one role only, existing outputs are replaced only with ``overwrite``."""

    overwrite: bool = False
    inputs: _Registry = field(default_factory=_Registry)
    outputs: _Registry = field(default_factory=_Registry)
    created: list[Path] = field(default_factory=list)

    def protect(self, *paths: str | os.PathLike | None, role: str = "input") -> None:
        """Declare files (or folders) this run reads: no output may replace them."""
        for p in paths:
            if p is not None:
                self.inputs.add(p, role)

    def input_role(self, path: str | os.PathLike) -> str | None:
        """The role of ``path`` if it is an input of this run."""
        return self.inputs.role_of(path)

    def claim(self, path: str | os.PathLike, role: str, *, replace: bool | None = None,
              suffixes: Iterable[str] | None = None) -> Path:
        """Reserve ``path`` as the output ``role`` (e.g. "-o", "--compare") before any work.

        Raises :class:`OutputError` when it is an input, another output of this run,
        an existing file without ``overwrite`` (``replace`` overrides the run's policy),
        a folder, of an unsupported type, or in a folder that cannot be written.
        """
        p = Path(path)
        if suffixes is not None and p.suffix.lower() not in tuple(suffixes):
            raise OutputError(f"{p}: unsupported output type {p.suffix or '(none)'!r} for {role}; use one of "
                              + ", ".join(suffixes))
        hit = self.input_role(p)
        if hit is not None:
            raise OutputError(f"{p}: refusing to overwrite an input file ({hit}); choose another "
                              "output path")
        other = self.outputs.role_of(p)
        if other is not None:
            raise OutputError(f"{p}: given as both {other} and {role}; each output needs its own path")
        if p.is_dir():
            raise OutputError(f"{p}: is a folder; {role} needs a file path")
        allowed = self.overwrite if replace is None else replace
        if (p.exists() or p.is_symlink()) and not allowed:
            raise OutputError(f"{p}: already exists; pass --overwrite to replace it")
        self._probe(p.parent, role)
        self.outputs.add(p, role)
        return p

    def claim_dir(self, path: str | os.PathLike, role: str) -> Path:
        """Reserve a folder that outputs go into: created now, must be writable, and may
        not be an input (``batch`` also refuses one inside its input folder)."""
        p = Path(path)
        if p.exists() and not p.is_dir():
            raise OutputError(f"{p}: exists and is not a folder; {role} needs a folder")
        hit = self.input_role(p)
        if hit is not None:
            raise OutputError(f"{p}: is an input of this command ({hit}); choose another folder")
        self._probe(p, role)
        self.outputs.add(p, role)
        return p

    def _probe(self, folder: Path, role: str) -> None:
        """Create ``folder`` if needed and check a file can be made in it, so an
        unwritable destination fails before the work, not after."""
        self._mkdirs(folder, role)
        try:
            fd, tmp = tempfile.mkstemp(prefix=".mirrorppr-probe.", dir=folder)
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            why = ("this filesystem takes no new files" if exc.errno == errno.ENOENT and folder.is_dir()
                   else _reason(exc))
            raise OutputError(f"{folder}: cannot write here ({why}); {role} needs a writable folder") from None

    def _mkdirs(self, folder: Path, role: str) -> None:
        missing = []
        p = Path(os.path.abspath(folder))
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                why = "this filesystem takes no new folders" if exc.errno == errno.ENOENT else _reason(exc)
                raise OutputError(f"{d}: cannot create this folder ({why}) for {role}") from None
            self.created.append(d)

    def remove_created_dirs(self) -> None:
        """After a failed run: remove the folders it created that are still empty."""
        for d in reversed(self.created):
            with contextlib.suppress(OSError):
                d.rmdir()
        self.created.clear()


_CURRENT: contextvars.ContextVar[RunGuard | None] = contextvars.ContextVar("mirrorppr_run", default=None)


def current() -> RunGuard | None:
    """The guard of the command running in this context, if any."""
    return _CURRENT.get()


@contextlib.contextmanager
def run_scope(overwrite: bool = False) -> Iterator[RunGuard]:
    """Make a :class:`RunGuard` the active one for the block (one per command)."""
    guard = RunGuard(overwrite=overwrite)
    token = _CURRENT.set(guard)
    try:
        yield guard
    except BaseException:
        guard.remove_created_dirs()
        raise
    finally:
        _CURRENT.reset(token)


def note_input(path: str | os.PathLike) -> None:
    """Called by readers: a file read during a run becomes one of its inputs."""
    g = current()
    if g is not None:
        g.protect(path)


# ------------------------------------------------------------------ writes
def _reason(exc: OSError) -> str:
    names = {errno.ENOSPC: "no space left on the device", errno.EROFS: "read-only filesystem",
             errno.EACCES: "permission denied", errno.EPERM: "not permitted",
             errno.EDQUOT: "disk quota exceeded", errno.ENOENT: "no such folder",
             errno.ENOTDIR: "a part of the path is not a folder", errno.EISDIR: "is a folder",
             errno.ENAMETOOLONG: "name too long"}
    return names.get(exc.errno, exc.strerror or type(exc).__name__)


def _umask() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:       # no /proc: the classic set-and-restore
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _mode_for(path: Path) -> int:
    """The mode the written file should end with: an existing file's own, else what a
    plain ``open(path, "w")`` would give under the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def check_not_input(path: Path, protect: Iterable[str | os.PathLike | None]) -> None:
    for g in protect:
        if g is not None and same_file(path, g):
            raise OutputError(f"{path}: refusing to overwrite an input file; choose another output path")
    guard = current()
    hit = guard.input_role(path) if guard is not None else None
    if hit is not None:
        raise OutputError(f"{path}: refusing to overwrite an input file ({hit}); "
                          "choose another output path")


def _target(path: Path) -> Path:
    """Where the bytes go: through a symlink to its file, so the link survives."""
    return _real(path) if path.is_symlink() and not path.is_dir() else path


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, protect: Iterable[str | os.PathLike | None] = ()) -> Iterator[Path]:
    """Yield a temp path beside ``path``; when the block finishes it replaces ``path``.

    The temp file is removed on any failure; OS errors become :class:`OutputError`.
    """
    path = Path(path)
    check_not_input(path, protect)
    path = _target(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, expected a file path")
    guard = current() or RunGuard()
    guard._mkdirs(path.parent, str(path))
    try:
        # Short prefix: a 250-character name must still leave room for the temp suffix.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:180]}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({_reason(exc)})") from None
    os.close(fd)
    _TEMPS.add(tmp)
    try:
        yield Path(tmp)
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({_reason(exc)}); nothing was replaced") from None
    finally:
        with contextlib.suppress(OSError):
            if os.path.lexists(tmp):
                os.unlink(tmp)
        _TEMPS.discard(tmp)


def write_bytes(path: str | os.PathLike, data: bytes, *,
                protect: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Write a whole file atomically (temp file, fsync, rename)."""
    with atomic_path(path, protect=protect) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def write_text(path: str | os.PathLike, text: str, *,
               protect: Iterable[str | os.PathLike | None] = ()) -> Path:
    return write_bytes(path, text.encode("utf-8"), protect=protect)


def remove_temp_files() -> None:
    """Remove this process's unfinished temp files (a worker stopping on a signal)."""
    for tmp in list(_TEMPS):
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        _TEMPS.discard(tmp)


def remove_stale_temps(path: str | os.PathLike) -> None:
    """Remove temp files that an unfinished write of ``path`` left (its writer was
    killed): the ``.NAME.*.part`` files beside it."""
    p = Path(path)
    with contextlib.suppress(OSError):
        for tmp in p.parent.glob(f".{glob_escape(p.name[:180])}.*.part"):
            with contextlib.suppress(OSError):
                tmp.unlink()


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


__all__ = ["RunGuard", "run_scope", "current", "note_input", "check_not_input", "atomic_path", "write_bytes",
           "write_text", "same_file", "remove_temp_files", "remove_stale_temps"]
