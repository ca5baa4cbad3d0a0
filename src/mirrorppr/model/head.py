"""Stage-I reconstruction head: retouch the query from its own patch features plus the
operation tokens, so the R-Former learns tokens that carry the edit.

Deviation from the paper, for trainability at small scale: the decoder predicts a
residual added to the (resized) query instead of the image from nothing; the loss is the
same reconstruction of the retouched query.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .blocks import Block, resize_pos


class ReconstructionHead(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, token_width: int, num_queries: int, feature_dim: int, width: int, num_layers: int,
                 num_heads: int, patch_size: int, num_patches: int) -> None:
        super().__init__()
        # Operation tokens -> one vector added to every query patch token.
        self.op_mlp = nn.Sequential(nn.Linear(num_queries * token_width, width), nn.GELU(approximate="tanh"),
                                    nn.Linear(width, width))
        self.proj = nn.Linear(feature_dim, width)
        self.pos = nn.Parameter(torch.randn(1, num_patches, width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, num_heads) for _ in range(num_layers))
        self.norm = nn.LayerNorm(width)
        self.to_pixels = nn.Linear(width, patch_size * patch_size * 3)
        nn.init.zeros_(self.to_pixels.weight)      # start as the identity edit
        nn.init.zeros_(self.to_pixels.bias)

    def forward(self, op_tokens: torch.Tensor, query_feats: torch.Tensor,
                query: torch.Tensor) -> torch.Tensor:
        """Predicted retouched query, (B, 3, S, S) in [-1, 1] with S = sqrt(N) * patch."""
        b, n, _ = query_feats.shape
        g, p = int(round(n ** 0.5)), self.config.patch_size
        cond = self.op_mlp(op_tokens.flatten(1))[:, None]
        x = self.proj(query_feats) + resize_pos(self.pos, n) + cond
        for blk in self.blocks:
            x = blk(x)
        delta = self.to_pixels(self.norm(x))                        # (B, N, p*p*3)
        delta = delta.view(b, g, g, p, p, 3).permute(0, 5, 1, 3, 2, 4).reshape(b, 3, g * p, g * p)
        base = F.interpolate(query.float(), size=(g * p, g * p), mode="bilinear", antialias=True,
                             align_corners=False)
        return base + delta

    def loss(self, op_tokens, query_feats, query, ground_truth) -> torch.Tensor:
        pred = self(op_tokens, query_feats, query)
        gt = F.interpolate(ground_truth.float(), size=pred.shape[-2:], mode="bilinear", antialias=True,
                           align_corners=False)
        return F.mse_loss(pred, gt)
