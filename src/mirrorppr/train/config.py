"""Training configuration: plain nested data loaded from YAML, with shipped presets
(``tiny``, ``small``, ``paper``) and dotted command-line overrides."""
from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import yaml

from ..errors import ConfigError

SHIPPED = ("tiny", "small", "paper", "warp-tiny", "warp-small")
REQUIRED = {"model": ("encoder", "base"), "data": ("size", "batch_size"), "stage1": ("steps", "lr"),
            "stage2": ("steps", "lr"), "train": ()}
#: The learned warp head's configs (``kind: warp``).
WARP_REQUIRED = {"model": (), "data": ("batch_size",), "stage": ("steps", "lr"), "train": ()}
TRAIN_DEFAULTS = {"seed": 0, "mixed_precision": "no", "grad_accum": 1, "grad_checkpointing": False,
                  "max_grad_norm": 1.0, "log_every": 10, "checkpoint_every": 500, "validate_every": 250,
                  "inference_steps": 20, "fsdp": False}


def shipped_path(name: str) -> Path:
    return Path(str(resources.files("mirrorppr.train") / "configs" / f"{name}.yaml"))


def load_config(name_or_path: str | Path, overrides: list[str] | None = None) -> dict:
    """A shipped config by name, or a YAML file; ``overrides`` like ``stage2.steps=100``."""
    p = Path(name_or_path)
    if str(name_or_path) in SHIPPED and not p.exists():
        p = shipped_path(str(name_or_path))
    if not p.is_file():
        raise ConfigError(f"{name_or_path}: no such config (a YAML file, or one of {', '.join(SHIPPED)})")
    try:
        cfg = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level")
    for item in overrides or []:
        set_dotted(cfg, item)
    return validate(cfg, str(p))


def set_dotted(cfg: dict, item: str) -> None:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. stage2.steps=200")
    node = cfg
    parts = key.strip().split(".")
    for k in parts[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {item!r}: {k} is not a section")
    node[parts[-1]] = yaml.safe_load(raw)


def validate(cfg: dict, where: str = "config") -> dict:
    from ..model.sizes import model_spec

    cfg = copy.deepcopy(cfg)
    kind = cfg.get("kind", "diffusion")
    if kind not in ("diffusion", "warp"):
        raise ConfigError(f"{where}: kind {kind!r}: diffusion (the default) or warp")
    if isinstance(cfg.get("model"), dict) and "size" in cfg["model"]:
        cfg["model"] = model_spec(cfg["model"])      # the registry's size, overridden
    for section, keys in (WARP_REQUIRED if kind == "warp" else REQUIRED).items():
        sec = cfg.setdefault(section, {})
        if not isinstance(sec, dict):
            raise ConfigError(f"{where}: '{section}' must be a mapping")
        for k in keys:
            if k not in sec:
                raise ConfigError(f"{where}: '{section}.{k}' is required")
    cfg["train"] = {**TRAIN_DEFAULTS, **cfg["train"]}
    mp = cfg["train"]["mixed_precision"]
    if mp is False or mp is None:           # YAML reads a bare `no` as false
        mp = cfg["train"]["mixed_precision"] = "no"
    if mp not in ("no", "bf16", "fp16"):
        raise ConfigError(f"{where}: train.mixed_precision {mp!r}: use no, bf16 or fp16")
    cfg.setdefault("name", Path(where).stem)
    if kind == "warp":
        return cfg
    base = cfg["model"]["base"]
    if base.get("train", "lora") not in ("lora", "full"):
        raise ConfigError(f"{where}: model.base.train must be lora or full")
    if not base.get("path") and not base.get("config"):
        raise ConfigError(f"{where}: model.base needs a path (local Qwen-Image-Edit) or a config")
    enc = cfg["model"]["encoder"]
    if not enc.get("path") and not enc.get("config"):
        raise ConfigError(f"{where}: model.encoder needs a path (local ViT-MAE) or a config")
    cfg.setdefault("name", Path(where).stem)
    return cfg
