"""Write failures (issue 13): a read-only folder, a full filesystem and a missing parent
that cannot be created all end in exit 5 with a one-line message, the old output intact
and no temp file left, for images and for JSON (presets, reports).

Root ignores permission bits, so the read-only and full cases use real small tmpfs
mounts (remounted read-only, or filled up); where mounting is not allowed the test is
skipped and says why."""
from __future__ import annotations

import contextlib
import os
import subprocess
import uuid

import numpy as np
import pytest

from mirrorppr import samples
from mirrorppr.cli import main
from mirrorppr.errors import OutputError
from mirrorppr.imageio import Photo, atomic_write_text as write_text, read_image, write_image


@contextlib.contextmanager
def tmpfs(where, size: str = "2m"):
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not root'}); "
                    "the read-only and full-disk cases need one")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _remount_ro(where) -> None:
    r = subprocess.run(["mount", "-o", "remount,ro", str(where)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _fill(where) -> None:
    """Leave (almost) no free space."""
    with contextlib.suppress(OSError), open(where / f"filler-{uuid.uuid4().hex}", "wb") as fh:
        while True:
            fh.write(b"\0" * 65536)
            fh.flush()


def _temps(folder) -> list[str]:
    return [p for p in os.listdir(folder) if p.endswith(".part") or ".mirrorppr-probe" in p]


def _edit(capsys, astro, out, *extra) -> tuple[int, str]:
    code = main(["edit", str(astro), "-o", str(out), "--op", "eye_resize=40", "--overwrite", *map(str, extra)])
    return code, capsys.readouterr().err


@pytest.fixture
def astro(tmp_path):
    return write_image(Photo(read_image(samples.astronaut()).pixels), tmp_path / "astro.png")


@pytest.mark.parametrize("case", ["read-only", "full", "parent-is-a-file", "parent-in-proc"])
def test_unwritable_output_exits_5_with_old_output_intact(tmp_path, capsys, astro, case):
    if case in ("read-only", "full"):
        ctx = tmpfs(tmp_path / "mnt", size="600k")
    else:
        ctx = contextlib.nullcontext(tmp_path)
    with ctx as root:
        old = root / "old.png"
        write_image(Photo(np.full((64, 64, 3), 7, np.uint8)), old)
        before = old.read_bytes()
        if case == "read-only":
            _remount_ro(root)
            target, why = old, "read-only filesystem"
        elif case == "full":
            _fill(root)
            target, why = old, "no space left"     # a 512 px PNG no longer fits
        elif case == "parent-is-a-file":
            target, why = old / "sub" / "new.png", "cannot create this folder"
        else:
            target, why = "/proc/mirrorppr-test/new.png", "cannot create this folder"
        code, err = _edit(capsys, astro, target)
        assert code == 5, err
        lines = [ln for ln in err.splitlines() if ln.startswith("mirrorppr:")]
        assert len(lines) == 1 and why in lines[0] and "Traceback" not in err, err
        assert old.read_bytes() == before
        assert not _temps(root)


def test_full_disk_during_the_write_itself_keeps_the_old_file(tmp_path):
    """The probe before the work succeeds; the disk fills up only when the real bytes go in."""
    with tmpfs(tmp_path / "mnt", size="256k") as root:
        old = write_text(root / "look.json", '{"old": true}')
        big = "x" * (512 * 1024)
        with pytest.raises(OutputError, match="no space left"):
            write_text(old, big)
        assert old.read_text() == '{"old": true}' and not _temps(root)
        photo = Photo(np.random.default_rng(0).integers(0, 255, (512, 512, 3), dtype=np.uint8))
        with pytest.raises(OutputError, match="no space left"):
            write_image(photo, root / "new.png")
        assert not (root / "new.png").exists() and not _temps(root)


def test_read_only_filesystem_for_json_outputs(tmp_path, capsys, astro):
    with tmpfs(tmp_path / "mnt") as root:
        report = write_text(root / "report.json", "{}")
        _remount_ro(root)
        with pytest.raises(OutputError, match="read-only filesystem"):
            write_text(report, '{"new": 1}')
        assert report.read_text() == "{}"
        code = main(["analyze", "--source", str(astro), "--target", str(astro), "-o", str(root / "p.json")])
        err = capsys.readouterr().err
        assert code == 5 and "read-only filesystem" in err, err
