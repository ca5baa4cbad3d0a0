"""Model sizes, in one place (as DiT's ``DiT_models``): constructors take every size
explicitly, and a training config names one of these (``model.size``) and may override
single values.

``SIZES``: the learned MirrorPPR system (patch encoder, R-Former, connector, DiT, codec).
``WARP_SIZES``: the learned warp head (:class:`mirrorppr.model.warp.LearnedWarp`).
"""
from __future__ import annotations

import copy

#: tiny: CPU tests, seconds; small: one GPU, minutes, from scratch at 256 px; paper: the
#: published system (frozen MAE ViT-L/16 and Qwen-Image-Edit from local folders).
SIZES: dict[str, dict] = {
    "tiny": {
        "resolution": 64,
        "encoder": {"image_size": 64, "frozen": False,
                    "config": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                               "intermediate_size": 128, "patch_size": 8}},
        "rformer": {"width": 64, "num_layers": 2, "num_heads": 4, "num_queries": 8},
        "connector": {"num_layers": 2, "num_heads": 4},
        # Token width (4 x 12 channels) must stay below the DiT's width (64), or the noise
        # cannot pass through it: the loss then floors at 1 - width / token width.
        "base": {"train": "lora", "lora": {"rank": 8, "alpha": 8},
                 "config": {"patch_size": 2, "in_channels": 48, "out_channels": 12, "num_layers": 2,
                            "attention_head_dim": 16, "num_attention_heads": 4, "joint_attention_dim": 64,
                            "axes_dims_rope": [4, 6, 6]}},
        "residual": True,
        "codec": {"kind": "pixel", "factor": 2},
        "head": {"width": 64, "num_layers": 2, "num_heads": 4},
    },
    "small": {
        "resolution": 256,
        "encoder": {"image_size": 224, "frozen": False,
                    "config": {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
                               "intermediate_size": 1024, "patch_size": 16}},
        "rformer": {"width": 256, "num_layers": 4, "num_heads": 4, "num_queries": 8},
        "connector": {"num_layers": 2, "num_heads": 4},
        # Tokens of 2x2 cells of 48 channels (192 wide) under a 512-wide DiT: the noise must
        # fit through the model's width (a first run with 768-wide tokens under 384 floored at 0.5).
        "base": {"train": "full",
                 "config": {"patch_size": 2, "in_channels": 192, "out_channels": 48, "num_layers": 8,
                            "attention_head_dim": 64, "num_attention_heads": 8, "joint_attention_dim": 512,
                            "axes_dims_rope": [8, 28, 28]}},
        "residual": True,
        "codec": {"kind": "pixel", "factor": 4},
        "head": {"width": 256, "num_layers": 4, "num_heads": 4},
    },
    "paper": {
        "resolution": 1024,
        "encoder": {"path": "/models/vit-mae-large", "image_size": 1024, "frozen": True},
        "rformer": {"width": 768, "num_layers": 4, "num_heads": 12, "num_queries": 8},
        "connector": {"width": 768, "num_layers": 6, "num_heads": 12, "out_dim": 3584},
        "base": {"path": "/models/Qwen-Image-Edit", "train": "lora", "lora": {"rank": 64, "alpha": 64}},
        "codec": {"kind": "vae", "path": "/models/Qwen-Image-Edit", "subfolder": "vae"},
        "condition": {"vl": True},
        "head": {"width": 512, "num_layers": 8, "num_heads": 16},
    },
}

#: The warp head: ``warp-tiny`` for tests, ``warp-small`` trains on two CPU cores in an hour.
WARP_SIZES: dict[str, dict] = {
    "warp-tiny": {"crop": 64, "stem_widths": [16, 24, 32], "token_width": 32, "rformer_layers": 1,
                  "rformer_heads": 2, "num_queries": 8, "unet_widths": [8, 16, 24, 32], "out_stride": 2,
                  "attn_heads": 2, "max_motion": 8.0, "num_ops": 28},
    "warp-small": {"crop": 128, "stem_widths": [24, 48, 64, 96], "token_width": 96, "rformer_layers": 3,
                   "rformer_heads": 4, "num_queries": 8, "unet_widths": [16, 32, 48, 64, 96], "out_stride": 2,
                   "attn_heads": 4, "max_motion": 16.0, "num_ops": 28},
}


def merged(base: dict, over: dict | None) -> dict:
    """``base`` with ``over`` merged in, section by section (a deep copy)."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def model_spec(section: dict) -> dict:
    """A config's ``model`` section resolved against the registry: ``size`` names the
    base, every other key overrides it."""
    section = dict(section)
    name = section.pop("size", None)
    if name is None:
        return copy.deepcopy(section)
    table = WARP_SIZES if name in WARP_SIZES else SIZES
    if name not in table:
        from ..errors import ConfigError
        raise ConfigError(f"model.size {name!r}: one of {', '.join(list(SIZES) + list(WARP_SIZES))}")
    return merged(table[name], section)
