"""The studio's API through ``gradio_client`` against a real local server, and what the
server refuses: uploads over the limits, files outside its folder, fetching URLs."""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

gr_client = pytest.importorskip("gradio_client", reason="the studio needs the 'app' extra (gradio)")
httpx = pytest.importorskip("httpx")

from gradio_client import Client, handle_file  # noqa: E402

from mirrorppr import samples  # noqa: E402
from mirrorppr.app import Limits  # noqa: E402
from mirrorppr.app.server import start  # noqa: E402
from mirrorppr.cli import main as cli  # noqa: E402
from mirrorppr.demo import EXEMPLAR_RECIPE  # noqa: E402
from mirrorppr.edit import edit_pixels  # noqa: E402
from mirrorppr.imageio import Photo, read_image, write_image  # noqa: E402

LIMITS = Limits(max_file_mb=1.5, max_megapixels=2.0, max_photos=2)


@pytest.fixture(scope="module")
def server():
    with start(limits=LIMITS) as running:
        yield running


@pytest.fixture(scope="module")
def files(tmp_path_factory, hopper, hopper_face):
    d = tmp_path_factory.mktemp("client")
    before = write_image(Photo(hopper, format="PNG"), d / "before.png")
    after = write_image(Photo(edit_pixels(hopper, EXEMPLAR_RECIPE, face=hopper_face)), d / "after.png")
    query = d / "astronaut.png"
    shutil.copyfile(samples.astronaut(), query)
    return {"before": before, "after": after, "query": query, "dir": d}


def test_api_analyse_then_retouch_matches_the_command_line(server, files, tmp_path):
    c = Client(server.url, verbose=False, download_files=str(tmp_path / "dl"))
    ops = c.predict(api_name="/ops")
    assert {"name": "face_width", "labels": ["Widen face", "Slim face"], "group": "face-shape",
            "family": "pro"} in ops
    preset, summary = c.predict(handle_file(files["before"]), handle_file(files["after"]), "clean",
                                api_name="/analyze")
    assert "Slim face" in summary, summary
    data = json.loads(Path(preset).read_text())
    assert any(s["op"] == "face_width" and s["strength"] < -30 for s in data["recipe"])
    result, used, report = c.predict(handle_file(preset), [handle_file(files["query"])],
                                     json.dumps({"eye_resize": 35}), 0.9, "auto", api_name="/retouch")
    assert json.loads(report)["done"] == ["astronaut.png"]
    assert {"op": "eye_resize", "strength": 35.0} in json.loads(Path(used).read_text())["recipe"]
    # the same through the command line: the preset as changed, the same options
    assert cli(["apply", used, str(files["query"]), "-o", str(tmp_path / "cli"),
                "--engine", "auto", "--strength", "0.9"]) == 0
    mine, theirs = read_image(result).pixels, read_image(tmp_path / "cli" / "astronaut.png").pixels
    assert np.array_equal(mine, theirs)
    assert not np.array_equal(mine, read_image(files["query"]).pixels)
    # two photos: a zip with the preset and a sidecar each
    second = files["dir"] / "turned.jpg"
    write_image(Photo(np.ascontiguousarray(np.rot90(read_image(files["query"]).rgb8())), format="JPEG"), second)
    result, _, report = c.predict(handle_file(preset), [handle_file(files["query"]), handle_file(second)],
                               "", 1.0, "recipe", api_name="/retouch")
    with zipfile.ZipFile(result) as z:
        assert sorted(z.namelist()) == ["astronaut.png", "astronaut.png.json", "preset.json",
                                        "turned.jpg", "turned.jpg.json"]
        side = json.loads(z.read("turned.jpg.json"))
    assert side["engine"] == "recipe" and side["command"].endswith("--engine recipe --strength 1")


def test_api_errors_are_one_line_messages(server, files, tmp_path):
    c = Client(server.url, verbose=False, download_files=str(tmp_path / "dl"))
    big = write_image(Photo(np.full((1500, 1500, 3), 90, np.uint8)), tmp_path / "big.png")      # 2.25 MP
    notes = tmp_path / "notes.jpg"
    notes.write_text("a text file")
    preset = tmp_path / "p.json"
    preset.write_text("{}")
    with pytest.raises(Exception, match=r"big\.png: 1500x1500 is 2\.2 MP, over the studio's 2 MP limit"):
        c.predict(handle_file(big), handle_file(files["after"]), "clean", api_name="/analyze")
    with pytest.raises(Exception, match=r"notes\.jpg: not a readable image"):
        c.predict(handle_file(files["before"]), handle_file(notes), "clean", api_name="/analyze")
    with pytest.raises(Exception, match="preset") as err:
        c.predict(handle_file(preset), [handle_file(files["query"])], "", 1.0, "auto", api_name="/retouch")
    assert "Traceback" not in str(err.value) and "/sessions/" not in str(err.value)
    noise = write_image(Photo(np.random.default_rng(1).integers(0, 256, (900, 900, 3), dtype=np.uint8)),
                        tmp_path / "noise.png")                                                  # 2.3 MB
    with pytest.raises(Exception, match="(?i)size"):
        c.predict(handle_file(noise), handle_file(files["after"]), "clean", api_name="/analyze")


def test_upload_over_the_size_limit_is_refused_by_the_server(server, tmp_path):
    blob = tmp_path / "big.jpg"
    blob.write_bytes(b"\xff" * int(LIMITS.max_file_bytes + 1024))
    with blob.open("rb") as fh:
        r = httpx.post(server.url + "gradio_api/upload", files={"files": ("big.jpg", fh, "image/jpeg")})
    assert r.status_code == 413, r.text
    assert not any(p.name == "big.jpg" for p in server.root.rglob("*"))


def test_files_outside_the_studio_folder_are_refused(server, tmp_path):
    secret = server.root.parent / f"{server.root.name}-secret.txt"
    secret.write_text("secret")
    inside = server.studio.workspace("probe").dir / "view" / "ok.txt"
    inside.write_text("fine")
    try:
        url = server.url + "gradio_api/file="
        assert httpx.get(url + str(inside)).text == "fine"        # the guard lets its own files through
        tricks = ["/etc/passwd", f"{server.root}/../{secret.name}", f"{server.root}/sessions/%2e%2e/%2e%2e/{secret.name}",
                  str(secret), "../../../../etc/passwd", "https://example.com/logo.png",
                  "http://127.0.0.1:1/"]
        for t in tricks:
            r = httpx.get(url + t)
            assert r.status_code in (403, 404) and "secret" not in r.text and "root:" not in r.text, t
        assert httpx.get(server.url + "gradio_api/proxy=https://example.com/").status_code == 403
    finally:
        secret.unlink()
        server.studio.end("probe")


def test_mirrorppr_app_serves_this_machine_only_and_cleans_up(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from mirrorppr.app.server import free_port

    port = free_port()
    share = tmp_path / "share"
    proc = subprocess.Popen([sys.executable, "-m", "mirrorppr", "app", "--port", str(port),
                             "--share-dir", str(share)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.3)
        folders = list(share.iterdir())
        assert len(folders) == 1 and folders[0].name.startswith("mirrorppr-studio-")
        # listening on the loopback address only (/proc/net/tcp: 0100007F = 127.0.0.1)
        listening = [line.split()[1] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                     if line.split()[3] == "0A" and line.split()[1].endswith(f":{port:04X}")]
        assert listening == [f"0100007F:{port:04X}"], listening
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert f"http://localhost:{port}/" in out
    assert not any(share.iterdir()), "the studio's folder is removed when it stops"
