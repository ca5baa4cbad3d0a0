"""Connector: maps the operation tokens into the backbone's text-stream width."""
from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .blocks import Block, RMSNorm


class Connector(ModelMixin, ConfigMixin):
    """Bidirectional transformer (RoPE, QK-RMSNorm), then Linear-GELU-Linear-RMSNorm.
    Sizes: :mod:`mirrorppr.model.sizes` (paper: 6 layers, width 768, 12 heads, out 3584,
    Qwen-Image's text width)."""

    @register_to_config
    def __init__(self, width: int, num_layers: int, num_heads: int, out_dim: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(width, num_heads, rms=True, qk_norm=True, use_rope=True)
                                    for _ in range(num_layers))
        self.out = nn.Sequential(nn.Linear(width, out_dim), nn.GELU(approximate="tanh"),
                                 nn.Linear(out_dim, out_dim))
        self.norm = RMSNorm(out_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = tokens
        for blk in self.blocks:
            x = blk(x)
        return self.norm(self.out(x))
