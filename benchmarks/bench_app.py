"""The studio's speed: slider-to-preview latency (median over 20 slider changes) and
full-resolution export, on the bundled exemplar, for a 512 px portrait and a 24 MP photo.

Two ways of measuring a preview:

- *server*: the studio's own preview step (transfer at preview size + the two JPEGs the
  page shows), called in process;
- *browser*: from setting a slider in headless Chromium (Playwright, the system browser)
  to the new preview image in the page: Gradio's queue, the HTTP round trips and the
  browser included (skipped without Chromium).

Run: `python benchmarks/bench_app.py [--changes 20]`. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def photos(folder: Path) -> dict[str, Path]:
    from _util import portrait

    from mirrorppr import samples
    from mirrorppr.imageio import Photo, write_image

    a = folder / "astronaut.png"
    shutil.copyfile(samples.astronaut(), a)
    big = write_image(Photo(portrait(6000, 4000), format="JPEG"), folder / "portrait-24mp.jpg")
    return {"512x512": a, "6000x4000": big}


def server_side(files: dict[str, Path], changes: int) -> list[dict]:
    from mirrorppr.app import Studio
    from mirrorppr.app.core import Settings

    rows = []
    with tempfile.TemporaryDirectory() as root:
        ws = Studio(Path(root)).workspace("bench")
        t = time.perf_counter()
        ws.load_example(procedure="clean")
        analysis_s = time.perf_counter() - t
        ws.reset_shown()
        base = ws.default_settings()
        for label, path in files.items():
            staged = Path(root) / "up" / path.name
            staged.parent.mkdir(exist_ok=True)
            shutil.copyfile(path, staged)
            t = time.perf_counter()
            (entry,), _ = ws.add_photos([staged])
            load_s = time.perf_counter() - t
            name, v0 = base.strengths[0]
            ws.preview(entry.name, base)                       # warm-up
            transfer, total = [], []
            for i in range(changes):
                s = Settings(((name, v0 + (i % 10) - 5),) + base.strengths[1:], base.strength, base.engine)
                p = ws.preview(entry.name, s)
                transfer.append(p.seconds)
                total.append(p.total)
            t = time.perf_counter()
            res = ws.export(base, [entry.name])
            export_s = time.perf_counter() - t
            rows.append({"photo": label, "preview": entry.pixels.shape[1::-1], "load": load_s,
                         "transfer": statistics.median(transfer), "total": statistics.median(total),
                         "p90": sorted(total)[int(0.9 * len(total))], "export": export_s,
                         "analysis": analysis_s, "file": res.path.name})
    return rows


def browser_side(files: dict[str, Path], changes: int) -> dict[str, float]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if not chromium:
        return {}
    from mirrorppr.app.server import start

    out = {}
    with start() as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page(viewport={"width": 1480, "height": 1200})
        page.goto(srv.url, wait_until="load")
        page.locator("#mp-procedure label", has_text="clean").click()
        page.click("#mp-example")
        page.wait_for_function("() => document.querySelectorAll('#mp-compare img').length == 2",
                               timeout=180_000)
        for label, path in files.items():
            if label != "512x512":
                page.set_input_files("#mp-photos input[type=file]", str(path))
                page.wait_for_function("() => document.querySelector('#mp-timing').innerText.includes('"
                                       f"{path.name}')", timeout=60_000)
            slider = page.locator("#mp-op-face_width input[type=number]")
            v0 = float(slider.input_value())
            times = []
            for i in range(changes + 1):
                old = page.locator("#mp-compare img").nth(1).evaluate("e => e.src")
                t = time.perf_counter()
                slider.fill(str(round(v0 + (i % 10) - 5 + (0.5 if i % 2 else 0))))
                page.wait_for_function("old => { const i = document.querySelectorAll('#mp-compare img');"
                                       " return i.length == 2 && i[1].src !== old && i[1].complete; }",
                                       arg=old, timeout=30_000)
                if i:                      # the first change warms the page up
                    times.append(time.perf_counter() - t)
            out[label] = statistics.median(times)
        browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        files = photos(Path(d))
        rows = server_side(files, args.changes)
        web = browser_side(files, args.changes)
    print(f"\nanalysis of the bundled exemplar (once): {rows[0]['analysis']:.1f} s\n")
    print("| photo | preview size | photo load (decode + landmarks, once) | transfer | preview, server "
          "(transfer + images) | preview, browser (slider to image) | export, full resolution |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        w, h = r["preview"]
        b = web.get(r["photo"])
        print(f"| {r['photo']} | {w}x{h} | {r['load']:.2f} s | {r['transfer'] * 1000:.0f} ms | "
              f"{r['total'] * 1000:.0f} ms (p90 {r['p90'] * 1000:.0f}) | "
              f"{'-' if b is None else f'{b * 1000:.0f} ms'} | {r['export']:.2f} s |")
    print(f"\nmedians over {args.changes} slider changes; goal <= 300 ms per preview")


if __name__ == "__main__":
    main()
