"""Compute cost of the backbone, on paper: tokens and FLOPs per denoising step.

Per dual-stream block and token: Q, K, V and output projections (4 d^2 multiply-adds) and
a 4x MLP (8 d^2); attention over all T tokens adds 2 T d per token (scores and values).
One multiply-add = 2 FLOPs. Embedders, modulation and the output projection are counted
too; they are small.
"""
from __future__ import annotations

from dataclasses import dataclass

#: Qwen-Image(-Edit)'s DiT, from its published configuration.
QWEN_IMAGE = {"patch_size": 2, "in_channels": 64, "out_channels": 16, "num_layers": 60,
              "attention_head_dim": 128, "num_attention_heads": 24, "joint_attention_dim": 3584}


@dataclass
class StepCost:
    image_tokens: int          # noisy + query tokens
    text_tokens: int           # condition tokens (VL tokens + operation tokens)
    flops: float               # per forward pass
    attention_flops: float     # the part in attention scores and values

    @property
    def tokens(self) -> int:
        return self.image_tokens + self.text_tokens


def tokens_at(side: int, vae_factor: int = 8, patch: int = 2) -> int:
    """Packed latent tokens of one ``side`` x ``side`` image."""
    return (side // (vae_factor * patch)) ** 2


def dit_step(cfg: dict, image_tokens: int, text_tokens: int, batch: int = 1) -> StepCost:
    d = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    n_layers, t = cfg["num_layers"], image_tokens + text_tokens
    block = 12 * d * d * t + 2 * t * t * d            # multiply-adds per block
    mod = 2 * 6 * d * d                               # img_mod and txt_mod (per sample)
    io = (image_tokens * (cfg["in_channels"] * d) + text_tokens * cfg["joint_attention_dim"] * d
          + image_tokens * d * cfg["patch_size"] ** 2 * (cfg.get("out_channels") or cfg["in_channels"]))
    macs = n_layers * (block + mod) + io
    return StepCost(image_tokens, text_tokens, 2.0 * macs * batch, 2.0 * n_layers * 2 * t * t * d * batch)
