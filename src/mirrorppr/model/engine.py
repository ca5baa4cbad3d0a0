"""The learned system as the ``model`` transfer engine.

The pipeline works at its training resolution (256 px ``small``, 1024 px ``paper``). Its
result is carried back onto the full-resolution query in one of two ways:

- ``flow`` (default): measure the motion from the query to the model's output at working
  size (DIS optical flow) and warp the full-resolution query by it. Keeps the query's own
  detail, bit depth and colour, and leaves unmoved pixels bit-identical; the model's tone
  changes are dropped (structural edits are the point).
- ``resize``: the model's pixels, resized up (the paper's output; softer at high
  resolution).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import ConfigError
from ..imageio import Photo
from ..transfer.engines import register_engine
from ..warp.field import Field

#: Displacements below this (working pixels) are measurement noise, not edits.
FLOW_NOISE = 0.25


@dataclass
class ModelSettings:
    steps: int = 40
    seed: int = 0
    resolution: int | None = None
    paste: str = "flow"               # flow | resize
    device: str | None = None         # default: cuda when available
    dtype: str = "auto"               # auto (bf16 on GPU, fp32 on CPU) | bf16 | fp32
    cpu_offload: bool = False
    base_path: str | None = None


def _dtype(name: str, device: str):
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}[name]


def load_pipeline(weights: str | Path, settings: ModelSettings | None = None):
    import torch

    from .pipeline import MirrorPPRPipeline

    s = settings or ModelSettings()
    dev = s.device or ("cuda" if torch.cuda.is_available() else "cpu")
    pipe = MirrorPPRPipeline.from_pretrained(weights, base_path=s.base_path, torch_dtype=_dtype(s.dtype, dev))
    if s.cpu_offload and dev.startswith("cuda"):
        pipe.enable_model_cpu_offload()
    else:
        pipe.to(dev)
    return pipe


def paste_back(pixels: np.ndarray, small_query: np.ndarray, small_out: np.ndarray, mode: str = "flow") -> np.ndarray:
    """Carry the model's working-size result onto the full-resolution ``pixels``."""
    H, W = pixels.shape[:2]
    if mode == "resize":
        big = cv2.resize(small_out, (W, H), interpolation=cv2.INTER_CUBIC)
        out = pixels.copy()
        scale = 257 if pixels.dtype == np.uint16 else 1
        c = min(3, pixels.shape[2])
        out[..., :c] = (big[..., :c].astype(np.uint32) * scale).astype(pixels.dtype) if c == 3 else \
            cv2.cvtColor(big, cv2.COLOR_RGB2GRAY)[..., None].astype(pixels.dtype) * scale
        return out
    if mode != "flow":
        raise ConfigError(f"paste mode {mode!r}: use flow or resize")
    a = cv2.cvtColor(small_out, cv2.COLOR_RGB2GRAY).astype(np.float32)
    b = cv2.cvtColor(small_query, cv2.COLOR_RGB2GRAY).astype(np.float32)
    a = np.clip(a - a.mean() + b.mean(), 0, 255).astype(np.uint8)   # ignore global tone shifts
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    d = dis.calc(a, b.astype(np.uint8), None)        # output(p) ~ query(p + d(p)): backward
    d[np.hypot(d[..., 0], d[..., 1]) < FLOW_NOISE] = 0
    d = cv2.GaussianBlur(d, (0, 0), 1.0)
    return Field(d.astype(np.float32), (W, H)).apply(pixels)


def make_engine(pipe, settings: ModelSettings):
    def model_engine(op, pixels, face, opts, detect) -> np.ndarray:
        if op.exemplar is None:
            raise ConfigError("the model engine needs the exemplar pair itself; presets hold only the "
                              "analysis (use retouch --source/--target, or another engine)")
        src, tgt = op.exemplar
        query = Photo(pixels).rgb8()
        t = time.perf_counter()
        import torch

        res = pipe(src, tgt, query, num_inference_steps=settings.steps,
                   generator=torch.Generator().manual_seed(settings.seed), resolution=settings.resolution,
                   output_type="np", working_size_output=True, progress=False)
        out = (res.images[0] * 255).round().astype(np.uint8)
        small_q = cv2.resize(query, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_AREA)
        if opts.strength != 1.0:        # global strength: blend the model's change
            out = np.clip(small_q + opts.strength * (out.astype(np.float32) - small_q), 0, 255).astype(np.uint8)
        res = paste_back(pixels, small_q, out, settings.paste)
        model_engine.last_seconds = time.perf_counter() - t
        return res
    model_engine.last_seconds = 0.0
    return model_engine


def register_model_engine(weights: str | Path, settings: ModelSettings | None = None):
    """Load trained weights and register them as the ``model`` engine; returns the pipeline."""
    s = settings or ModelSettings()
    pipe = load_pipeline(weights, s)
    register_engine("model", make_engine(pipe, s))
    return pipe
