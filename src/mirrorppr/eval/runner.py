"""``mirrorppr eval``: run engines on benchmark cases and score them.

Writes ``DIR/results.json`` (per case and mean, per method), ``DIR/results.md`` (the
tables, per subset), ``DIR/index.html`` (every case: exemplar pair, query, ground truth,
each output and its difference heatmap) and ``DIR/outputs/<method>/<case>.png`` (so any
other scorer can read them). The no-op row (the query itself) and every
``<system>-output.*`` found in the cases are always scored too.
"""
from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..analyze import analyze
from ..analyze.operation import Operation
from ..errors import ConfigError, MirrorError
from ..imageio import Photo, atomic_write_text, read_image, write_image
from ..landmarks import find_face
from ..transfer import Retoucher
from ..visualize import heatmap
from .cases import Case, load_cases
from .metrics import pixel_difference, score

#: Engines that read the exemplar pair itself instead of an analysis.
PAIR_ENGINES = ("model", "learned-warp")
KEYS = ["psnr", "ssim", "psnr_edit", "gain_edit", "gain_face", "gain_body", "psnr_keep", "flow_epe", "facesim",
        "seconds"]


@dataclass
class EvalResult:
    cases: dict[str, dict[str, dict | None]]        # method -> case -> metrics
    summary: dict[str, dict]                         # method -> mean metrics (+ missing)
    subsets: dict[str, str]                          # case -> subset
    recovery: dict[str, list] | None = None          # case -> [(op, true, fitted)] when labelled

    def recovery_rate(self, tol: float = 10.0) -> float | None:
        rows = [r for v in (self.recovery or {}).values() for r in v]
        return None if not rows else float(np.mean([abs(t - f) <= tol for _, t, f in rows]))

    def to_json(self) -> str:
        return json.dumps({"summary": self.summary, "cases": self.cases, "subsets": self.subsets,
                           "recipe_recovery": self.recovery,
                           "recipe_within_10": self.recovery_rate()}, indent=1)


def _rgb(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    rgb = read_image(path).rgb8()
    if size is not None and (rgb.shape[1], rgb.shape[0]) != size:
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
    return rgb


def _mean(rows: list[dict]) -> dict:
    out = {}
    for k in KEYS:
        vals = [r[k] for r in rows if r.get(k) is not None]
        out[k] = float(np.mean(vals)) if vals else None
    return out


def run_eval(root: Path, engines: list[str], out: Path, *, facesim: bool = True,
             families: tuple[str, ...] = ("llw", "pro"), procedure: str = "auto", progress: bool = True,
             model_weights: Path | None = None) -> EvalResult:
    from tqdm import tqdm

    if "model" in engines:
        from ..transfer.engines import ENGINES
        if model_weights is not None:
            from ..model.engine import register_model_engine
            register_model_engine(model_weights)
        elif "model" not in ENGINES:
            raise ConfigError("engine 'model' needs trained weights (--weights DIR)")
    cases = load_cases(root)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, dict | None]] = {"no-op": {}}
    for e in engines:
        results[e] = {}
    subsets = {c.id: str(c.info.get("subset", "all")) for c in cases}
    recovery: dict[str, list] = {}
    pages = []
    for case in tqdm(cases, desc="evaluating", unit="case", disable=not progress):
        if case.ground_truth is None:
            continue
        gt = _rgb(case.ground_truth)
        size = (gt.shape[1], gt.shape[0])
        query = _rgb(case.query, size)
        try:
            face_box = find_face(query, source=str(case.query)).box
        except MirrorError:
            face_box = None
        outputs: dict[str, np.ndarray | None] = {"no-op": query}
        seconds: dict[str, float] = {"no-op": 0.0}
        op, err, t_an = None, None, 0.0
        try:
            if any(e not in PAIR_ENGINES for e in engines):
                t = time.perf_counter()
                op = analyze(case.source, case.target, families=families, procedure=procedure)
                t_an = time.perf_counter() - t
        except MirrorError as exc:
            err = str(exc)
        pair = Operation.from_pair(_rgb(case.source), _rgb(case.target)) \
            if any(e in PAIR_ENGINES for e in engines) else None
        if op is not None and isinstance(case.info.get("recipe"), list):
            fitted = {s.op: s.strength for s in op.recipe.steps}
            recovery[case.id] = [(st["op"], float(st["strength"]), float(fitted.get(st["op"], 0.0)))
                                 for st in case.info["recipe"]]
        for e in engines:
            use = pair if e in PAIR_ENGINES else op
            if use is None:
                outputs[e] = None
                continue
            try:
                r = Retoucher(use, engine=e)
                t = time.perf_counter()
                res = r.run(case.query)
                seconds[e] = time.perf_counter() - t + (0.0 if e in PAIR_ENGINES else t_an)
                o = res.photo.rgb8()
                write_image(res.photo, out / "outputs" / e / f"{case.id}.png")
                outputs[e] = cv2.resize(o, size, interpolation=cv2.INTER_CUBIC) if o.shape[:2] != gt.shape[:2] else o
            except MirrorError as exc:
                outputs[e] = None
                err = str(exc)
        for name, path in case.outputs.items():
            outputs[name] = _rgb(path, size)
            seconds[name] = None
            results.setdefault(name, {})
        for name, o in outputs.items():
            if o is None:
                results[name][case.id] = None
                continue
            m = score(gt, query, o, facesim=facesim, face_box=face_box)
            m["seconds"] = seconds.get(name)
            results[name][case.id] = m
        pages.append(_case_html(case, out, gt, outputs, results, op, err))
    summary = {}
    for name, per in results.items():
        done = [r for r in per.values() if r is not None]
        summary[name] = _mean(done) | {"missing": sum(r is None for r in per.values()), "n": len(done)}
        for sub in sorted(set(subsets.values())):
            rows = [r for cid, r in per.items() if r is not None and subsets.get(cid) == sub]
            if rows and len(set(subsets.values())) > 1:
                summary[f"{name} [{sub}]"] = _mean(rows) | {"n": len(rows)}
    res = EvalResult(results, summary, subsets, recovery or None)
    atomic_write_text(out / "results.json", res.to_json())
    atomic_write_text(out / "results.md", to_markdown(res))
    atomic_write_text(out / "index.html", _page(pages, res))
    return res


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def to_markdown(res: EvalResult) -> str:
    lines = []
    rate = res.recovery_rate()
    if rate is not None:
        n = sum(len(v) for v in res.recovery.values())
        lines.append(f"Recipe recovery: {rate:.1%} of {n} labelled ops within +-10 of the truth.\n")
    subs = sorted(set(res.subsets.values()))
    for sub in subs:
        lines.append(f"### {sub}\n")
        lines.append("| method | case | " + " | ".join(KEYS) + " |")
        lines.append("|---|---|" + "---|" * len(KEYS))
        for name, per in res.cases.items():
            for cid, r in per.items():
                if res.subsets.get(cid) != sub:
                    continue
                cells = ["missing"] * len(KEYS) if r is None else [_fmt(r.get(k)) for k in KEYS]
                lines.append(f"| {name} | {cid} | " + " | ".join(cells) + " |")
        for name in res.cases:
            key = f"{name} [{sub}]" if f"{name} [{sub}]" in res.summary else name
            m = res.summary[key]
            lines.append(f"| **{name}** | **mean** | " + " | ".join(_fmt(m.get(k)) for k in KEYS) + " |")
        lines.append("")
    return "\n".join(lines)


def _thumb(rgb: np.ndarray, path: Path) -> str:
    k = min(1.0, 384 / max(rgb.shape[:2]))
    small = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_AREA) if k < 1 else rgb
    write_image(Photo(np.ascontiguousarray(small), format="JPEG"), path, quality=88)
    return path.name


def _case_html(case: Case, out: Path, gt, outputs, results, op, err) -> str:
    d = out / "html" / case.id
    d.mkdir(parents=True, exist_ok=True)
    cells = []
    for label, img in [("exemplar before", _rgb(case.source)), ("exemplar after", _rgb(case.target)),
                       ("query", outputs["no-op"]), ("ground truth", gt)]:
        name = _thumb(img, d / f"{label.replace(' ', '-')}.jpg")
        cells.append(f"<figure><img src='html/{case.id}/{name}'><figcaption>{label}</figcaption></figure>")
    for name, o in outputs.items():
        if o is None or name == "no-op":
            continue
        r = results[name][case.id]
        a = _thumb(o, d / f"{name}.jpg")
        diff = pixel_difference(o, gt)
        h = _thumb(heatmap(diff.astype(np.float32), vmax=48), d / f"{name}-diff.jpg")
        cap = (f"{html.escape(name)}: gain {r['gain_edit']:+.2f} dB, keep {_fmt(r['psnr_keep'])} dB, "
               f"EPE {r['flow_epe']:.2f} px")
        cells.append(f"<figure><img src='html/{case.id}/{a}'><figcaption>{cap}</figcaption></figure>"
                     f"<figure><img src='html/{case.id}/{h}'><figcaption>|{html.escape(name)} - truth|"
                     "</figcaption></figure>")
    desc = html.escape(op.describe()) if op is not None else html.escape(f"failed: {err}")
    info = html.escape(str(case.info.get("operation") or ""))
    return (f"<section><h2>{html.escape(case.id)}</h2><p>labelled: {info or 'unknown'}<br>"
            f"analysis: {desc}</p><div class='row'>{''.join(cells)}</div></section>")


def _page(sections: list[str], res: EvalResult) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(m)}</td>" + "".join(f"<td>{_fmt(v.get(k))}</td>" for k in KEYS) + "</tr>"
        for m, v in res.summary.items())
    head = "".join(f"<th>{k}</th>" for k in KEYS)
    return ("<!doctype html><meta charset='utf-8'><title>mirrorppr eval</title><style>"
            "body{font-family:sans-serif;margin:20px}img{max-width:240px}figure{display:inline-block;"
            "margin:4px;vertical-align:top}figcaption{font-size:12px;max-width:240px}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px}</style>"
            f"<h1>mirrorppr evaluation</h1><table><tr><th>method</th>{head}</tr>{rows}</table>"
            + "".join(sections))
