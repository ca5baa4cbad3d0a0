"""The studio in a real browser: the distribution's headless Chromium driven by Playwright
(no browser is downloaded), against a real local server.

Set ``MIRRORPPR_STUDIO_SCREENSHOT=docs/studio.png`` to keep the screenshot for the README.
"""
from __future__ import annotations

import os
import shutil
import time
from urllib.parse import urlparse

import numpy as np
import pytest

pytest.importorskip("gradio", reason="the studio needs the 'app' extra (gradio)")
playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (the 'app' extra)")

CHROMIUM = os.environ.get("MIRRORPPR_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    pytest.skip("no system Chromium (Debian: apt-get install chromium; `make test` installs it when root)",
                allow_module_level=True)

from mirrorppr import samples  # noqa: E402
from mirrorppr.app import Limits  # noqa: E402
from mirrorppr.app.server import start  # noqa: E402
from mirrorppr.cli import main as cli  # noqa: E402
from mirrorppr.demo import EXEMPLAR_RECIPE  # noqa: E402
from mirrorppr.edit import edit_pixels  # noqa: E402
from mirrorppr.imageio import Photo, read_image, write_image  # noqa: E402

#: Flags that keep Chromium from reaching any host on its own.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions"]
WAIT_MS = 120_000     # an analysis on two busy cores


@pytest.fixture(scope="module")
def server():
    with start(limits=Limits(max_file_mb=2, max_megapixels=3, max_photos=3)) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        # Playwright gives each launch a fresh temporary profile (--user-data-dir).
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def photos(tmp_path_factory, hopper, hopper_face):
    d = tmp_path_factory.mktemp("browser")
    before = d / "before.jpg"
    shutil.copyfile(samples.grace_hopper(), before)
    after = write_image(Photo(edit_pixels(read_image(before).pixels, EXEMPLAR_RECIPE, face=hopper_face)),
                        d / "after.png")
    query = d / "astronaut.png"
    shutil.copyfile(samples.astronaut(), query)
    return {"before": before, "after": after, "query": query}


def _page(browser, log: list[str]):
    ctx = browser.new_context(viewport={"width": 1480, "height": 1200}, accept_downloads=True)
    page = ctx.new_page()
    page.on("request", lambda r: log.append(r.url))
    return ctx, page


def _src(page, i: int) -> str:
    return page.locator("#mp-compare img").nth(i).evaluate("e => e.src")


def _fetch(page, url: str) -> np.ndarray:
    import cv2
    body = page.request.get(url).body()
    return cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)


def test_studio_in_a_browser(server, browser, photos, tmp_path):
    log: list[str] = []
    ctx, page = _page(browser, log)
    page.goto(server.url, wait_until="load")
    # 1. an exemplar, analysed (the page shows progress), one slider per recipe op
    page.set_input_files("#mp-before input[type=file]", str(photos["before"]))
    page.set_input_files("#mp-after input[type=file]", str(photos["after"]))
    for box in ("#mp-before", "#mp-after"):      # uploaded: the box shows the file's link
        page.wait_for_selector(f"{box} a", timeout=20_000)
    page.locator("#mp-procedure label", has_text="clean").click()
    page.click("#mp-analyse")
    page.wait_for_selector("#mp-op-face_width input[type=range]", state="visible", timeout=WAIT_MS)
    assert page.locator("#mp-op-eye_tilt").is_hidden(), "only the recipe's ops have sliders"
    assert "Slim face" in page.locator("#mp-status").inner_text()
    assert page.locator("#mp-analysis table").count() >= 1 and "recipe+residual" in page.locator("#mp-analysis").inner_text()
    # 2. a photo: its preview appears
    page.set_input_files("#mp-photos input[type=file]", str(photos["query"]))
    page.wait_for_function("() => document.querySelectorAll('#mp-compare img').length == 2", timeout=30_000)
    first_url = _src(page, 1)
    first = _fetch(page, first_url)
    # 3. move one slider: the preview changes
    slider = page.locator("#mp-op-face_width input[type=range]")
    slider.fill("-20")
    page.wait_for_function("old => document.querySelectorAll('#mp-compare img')[1].src !== old",
                           arg=first_url, timeout=20_000)
    second = _fetch(page, _src(page, 1))
    assert np.abs(first.astype(int) - second.astype(int)).max() > 20, "the preview did not change"
    assert "transfer" in page.locator("#mp-timing").inner_text()
    # ... and an op added from the menu gets its slider
    page.locator("#mp-add-op input").click()
    page.get_by_role("option", name="eye_tilt", exact=False).first.click()
    page.click("#mp-add")
    page.wait_for_selector("#mp-op-eye_tilt input[type=range]", state="visible", timeout=10_000)
    old = _src(page, 1)
    page.locator("#mp-op-eye_tilt input[type=number]").fill("30")
    page.wait_for_function("old => document.querySelectorAll('#mp-compare img')[1].src !== old",
                           arg=old, timeout=20_000)
    # 4. export at full resolution, save the preset, and compare with the command line
    page.click("#mp-export")
    page.wait_for_selector("#mp-export-file a", timeout=60_000)
    exported = tmp_path / "exported.png"
    exported.write_bytes(page.request.get(page.locator("#mp-export-file a").first.get_attribute("href")).body())
    page.click("#mp-save")
    page.wait_for_selector("#mp-preset-out a", timeout=20_000)
    preset = tmp_path / "preset.json"
    preset.write_bytes(page.request.get(page.locator("#mp-preset-out a").first.get_attribute("href")).body())
    assert cli(["apply", str(preset), str(photos["query"]), "-o", str(tmp_path / "cli"),
                "--engine", "auto", "--strength", "1"]) == 0
    mine, theirs = read_image(exported).pixels, read_image(tmp_path / "cli" / "astronaut.png").pixels
    assert mine.shape == (512, 512, 3) and np.array_equal(mine, theirs), "export differs from mirrorppr apply"
    assert not np.array_equal(mine, read_image(photos["query"]).pixels)
    shot = tmp_path / "studio.png"
    page.screenshot(path=str(shot), full_page=True)
    assert read_image(shot).rgb8().std() > 20
    if os.environ.get("MIRRORPPR_STUDIO_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["MIRRORPPR_STUDIO_SCREENSHOT"])
    # 5. nothing came from another host
    hosts = {urlparse(u).netloc for u in log if urlparse(u).scheme in ("http", "https", "ws", "wss")}
    assert hosts == {urlparse(server.url).netloc}, hosts
    assert not [u for u in log if not u.startswith(("http://127.0.0.1", "data:", "blob:"))]
    # 6. a second browser sees none of it; closing the first removes its files
    mine_ws = [ws for ws in server.studio._sessions.values() if ws.photos]
    assert len(mine_ws) == 1 and mine_ws[0].dir.exists()
    ctx2, page2 = _page(browser, [])
    page2.goto(server.url, wait_until="load")
    page2.wait_for_selector("#mp-photo-list")
    assert "No photos yet" in page2.locator("#mp-photo-list").inner_text()
    page2.click("#mp-export")
    page2.wait_for_selector(".toast-body", timeout=10_000)
    assert "no exemplar yet" in page2.locator(".toast-body").first.inner_text()
    assert not page2.locator("#mp-compare img").count()
    # ... and the saved preset, loaded there, brings back the sliders as they were
    page2.set_input_files("#mp-preset-in input[type=file]", str(preset))
    page2.wait_for_selector("#mp-op-eye_tilt input[type=range]", state="visible", timeout=20_000)
    assert page2.locator("#mp-op-eye_tilt input[type=number]").input_value() == "30"
    assert page2.locator("#mp-op-face_width input[type=number]").input_value() == "-20"
    ctx.close()
    deadline = time.monotonic() + 15
    while mine_ws[0].dir.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not mine_ws[0].dir.exists(), "a closed tab's files stay on disk"
    assert server.studio.session_count >= 1      # the second tab's session lives on
    ctx2.close()


def test_bad_uploads_are_explained_in_the_page(server, browser, tmp_path):
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a photo")
    wide = write_image(Photo(np.full((1500, 2100, 3), 100, np.uint8)), tmp_path / "wide.png")    # 3.2 MP
    noise = write_image(Photo(np.random.default_rng(0).integers(0, 256, (1000, 1000, 3), dtype=np.uint8)),
                        tmp_path / "noise.png")                                                   # 3 MB
    ctx, page = _page(browser, [])
    page.goto(server.url, wait_until="load")
    page.set_input_files("#mp-photos input[type=file]", [str(notes), str(wide)])
    page.wait_for_function("() => document.querySelector('#mp-status').innerText.includes('Refused')",
                           timeout=20_000)
    status = page.locator("#mp-status").inner_text()
    assert "notes.jpg: not a readable image" in status
    assert "wide.png: 2100x1500 is 3.1 MP, over the studio's 3 MP limit per photo" in status
    page.set_input_files("#mp-photos input[type=file]", str(noise))
    page.wait_for_selector(".toast-body:has-text('maximum allowed size')", timeout=10_000)
    page.set_input_files("#mp-before input[type=file]", str(notes))
    page.click("#mp-analyse")
    page.wait_for_function("() => document.querySelector('#mp-status').innerText.includes('Not analysed')",
                           timeout=20_000)
    text = page.locator("body").inner_text()
    assert "Traceback" not in text and "/sessions/" not in text
    ctx.close()
