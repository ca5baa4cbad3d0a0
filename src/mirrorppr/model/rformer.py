"""R-Former: reads the exemplar's before/after patch features and writes a few operation
tokens that say what the retoucher did (not where: the query supplies the geometry)."""
from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .blocks import Block, resize_pos

QUERY, SOURCE, SEP, TARGET = range(4)


class RFormer(ModelMixin, ConfigMixin):
    """Input ``[queries, proj(source), SEP, proj(target)]`` with learned position (shared by
    the same patch of source and target) and token-type embeddings; output the first
    ``num_queries`` tokens. Sizes: :mod:`mirrorppr.model.sizes` (paper: 4 layers, width
    768, 12 heads, 8 queries)."""

    @register_to_config
    def __init__(self, feature_dim: int, width: int, num_layers: int, num_heads: int, num_queries: int,
                 num_patches: int) -> None:
        super().__init__()
        self.proj = nn.Linear(feature_dim, width)
        self.queries = nn.Parameter(torch.randn(1, num_queries, width) * 0.02)
        self.sep = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, num_patches, width) * 0.02)
        self.query_pos = nn.Parameter(torch.randn(1, num_queries, width) * 0.02)
        self.type_embed = nn.Embedding(4, width)
        self.blocks = nn.ModuleList(Block(width, num_heads) for _ in range(num_layers))
        self.norm = nn.LayerNorm(width)

    def forward(self, source_feats: torch.Tensor, target_feats: torch.Tensor) -> torch.Tensor:
        b, n, _ = source_feats.shape
        pos = resize_pos(self.pos, n)
        t = self.type_embed.weight
        q = self.queries.expand(b, -1, -1) + self.query_pos + t[QUERY]
        s = self.proj(source_feats) + pos + t[SOURCE]
        sep = self.sep.expand(b, -1, -1) + t[SEP]
        g = self.proj(target_feats) + pos + t[TARGET]
        x = torch.cat([q, s, sep, g], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x[:, : self.config.num_queries])
