"""Benchmark case folders: CASE/source.*, target.*, query.*, optional ground-truth.*,
optional <system>-output.*, optional case.json."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..imageio import SUPPORTED_SUFFIXES


def find(folder: Path, stem: str) -> Path | None:
    for ext in SUPPORTED_SUFFIXES:
        p = folder / f"{stem}{ext}"
        if p.exists():
            return p
    return None


@dataclass
class Case:
    id: str
    folder: Path
    source: Path
    target: Path
    query: Path
    ground_truth: Path | None
    outputs: dict[str, Path] = field(default_factory=dict)   # system name -> file
    info: dict = field(default_factory=dict)


def load_cases(root: Path) -> list[Case]:
    cases = []
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        src, tgt, q = find(folder, "source"), find(folder, "target"), find(folder, "query")
        if not (src and tgt and q):
            continue
        outputs = {}
        for p in sorted(folder.iterdir()):
            if p.stem.endswith("-output") and p.suffix.lower() in SUPPORTED_SUFFIXES:
                outputs[p.stem[: -len("-output")]] = p
        info = {}
        if (folder / "case.json").exists():
            try:
                info = json.loads((folder / "case.json").read_text())
            except json.JSONDecodeError:
                info = {}
        cases.append(Case(folder.name, folder, src, tgt, q, find(folder, "ground-truth"), outputs, info))
    return cases
