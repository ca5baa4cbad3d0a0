"""The diffusion backbone: diffusers' ``QwenImageTransformer2DModel`` (Qwen-Image-Edit's
dual-stream MMDiT), LoRA on its blocks, latent packing and the flow-matching time shift."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from ..errors import ConfigError

#: Every linear layer inside the dual-stream blocks (attention and both MLPs).
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj",
                "to_add_out", "img_mlp.net.0.proj", "img_mlp.net.2", "txt_mlp.net.0.proj", "txt_mlp.net.2"]


def build_transformer(spec: dict, dtype: torch.dtype = torch.float32):
    """From a local Qwen-Image-Edit folder (``path``) or a from-scratch ``config``."""
    from diffusers import QwenImageTransformer2DModel

    if spec.get("path"):
        root = Path(spec["path"]).expanduser()
        sub = root / "transformer" if (root / "transformer" / "config.json").is_file() else root
        if not (sub / "config.json").is_file():
            raise ConfigError(f"{root}: no transformer/config.json; point base.path at a local "
                              "Qwen-Image-Edit folder")
        return QwenImageTransformer2DModel.from_pretrained(sub, torch_dtype=dtype)
    model = QwenImageTransformer2DModel(**spec["config"])
    return model if dtype == torch.float32 else model.to(dtype)


def lora_config(spec: dict):
    from peft import LoraConfig

    return LoraConfig(r=int(spec.get("rank", 64)), lora_alpha=float(spec.get("alpha", spec.get("rank", 64))),
                      target_modules=list(spec.get("targets", LORA_TARGETS)), init_lora_weights="gaussian",
                      lora_dropout=0.0)


def add_lora(transformer, spec: dict) -> None:
    """Freeze the base weights and add trainable LoRA adapters to the blocks."""
    transformer.requires_grad_(False)
    transformer.add_adapter(lora_config(spec))


#: Linears of the last block whose output nothing reads (the text stream ends there):
#: they get no gradient, which DDP refuses, so they are not trained.
DEAD_ENDS = ("attn.to_add_out", "txt_mlp.net.0.proj", "txt_mlp.net.2")


def freeze_dead_ends(transformer) -> None:
    last = transformer.transformer_blocks[-1]
    for name in DEAD_ENDS:
        last.get_submodule(name).requires_grad_(False)


def pack(z: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) latents -> (B, H/2 * W/2, 4C) tokens of 2x2 latent patches."""
    b, c, h, w = z.shape
    return z.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`pack` for a latent grid of ``h`` x ``w``."""
    b, _, d = x.shape
    c = d // 4
    return x.view(b, h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


def image_shift(seq_len: int, base_len: int = 256, max_len: int = 8192, base_shift: float = 0.5,
                max_shift: float = 0.9) -> float:
    """Resolution-dependent shift ``mu`` (linear in the number of image tokens)."""
    m = (max_shift - base_shift) / (max_len - base_len)
    return base_shift + m * (seq_len - base_len)


def shift_sigmas(sigma: torch.Tensor, mu: float) -> torch.Tensor:
    """Exponential time shift: more time at high noise for bigger images."""
    return math.exp(mu) / (math.exp(mu) + (1 / sigma.clamp_min(1e-6) - 1))


def default_scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9,
                                           base_image_seq_len=256, max_image_seq_len=8192,
                                           time_shift_type="exponential", shift_terminal=0.02)
