"""How long the body part takes: pose keypoints and mask at 2 MP and 24 MP, and a whole
retouch with a body edit (face and body) of a 24 MP photo, with the process's peak
memory. The exemplar is Obama with his shoulders narrowed by independent liquify strokes
(`eval/liquify_body.py`); the query is Grace Hopper, upscaled. Each row: median of 3 after
a warm-up. Prints a Markdown table.

Run: `python benchmarks/bench_body.py` (about a minute on 2 cores).
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).parent))

from _util import peak_rss_mb, timed  # noqa: E402

from mirrorppr import samples  # noqa: E402
from mirrorppr.analyze import analyze  # noqa: E402
from mirrorppr.body.detect import find_body  # noqa: E402
from mirrorppr.eval.liquify import render  # noqa: E402
from mirrorppr.eval.liquify_body import BodyDraw, strokes_for  # noqa: E402
from mirrorppr.imageio import read_image  # noqa: E402
from mirrorppr.landmarks import find_face  # noqa: E402
from mirrorppr.transfer import Retoucher  # noqa: E402

PORTRAIT = Path(__file__).parent.parent / "tests" / "data" / "portraits" / "obama.jpg"


def at(rgb, pixels: float):
    k = (pixels / (rgb.shape[0] * rgb.shape[1])) ** 0.5
    return cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)


def main() -> None:
    before = read_image(PORTRAIT).rgb8()
    body = find_body(before, find_face(before).box)
    after = render(before, strokes_for(BodyDraw("shoulder width", 0.4, -0.05, 0.5, 1.0), body))
    op = analyze(before, after)
    hopper = read_image(samples.grace_hopper()).rgb8()
    rows = []
    for name, mp in (("2 MP", 2e6), ("24 MP", 24e6)):
        q = at(hopper, mp)
        box = find_face(q).box
        med, _ = timed(lambda: find_body(q, box), repeat=3)
        rows.append((f"pose keypoints + mask, {name} ({q.shape[1]}x{q.shape[0]})", med))
    q = at(hopper, 24e6)
    r = Retoucher(op)
    med, _ = timed(lambda: r.run(q), repeat=3)
    rows.append((f"retouch with a body edit, 24 MP ({q.shape[1]}x{q.shape[0]}): {op.body.summary}", med))
    print("| step | seconds (median of 3) |")
    print("|---|---|")
    for name, s in rows:
        print(f"| {name} | {s:.2f} |")
    print(f"\npeak memory of the process: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
