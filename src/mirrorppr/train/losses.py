"""The two training objectives, as modules whose forward returns the loss (so data- and
fully-sharded-parallel wrappers see every trained parameter in one forward)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..model.backbone import pack, shift_sigmas
from ..model.pipeline import to_uint8


class ReconstructionObjective(nn.Module):
    """Stage I: operation tokens of (source, target) + query features -> ground truth."""

    def __init__(self, encoder, rformer, head) -> None:
        super().__init__()
        self.encoder, self.rformer, self.head = encoder, rformer, head

    def forward(self, batch: dict) -> torch.Tensor:
        fs, ft = self.encoder(torch.cat([batch["source"], batch["target"]])).chunk(2)
        fq = self.encoder(batch["query"])         # its own call: the query keeps its aspect until here
        return self.head.loss(self.rformer(fs, ft), fq, batch["query"], batch["ground_truth"])


class FlowMatchingObjective(nn.Module):
    """Stage II: rectified flow. ``x_t = (1 - s) x_0 + s e``, the DiT predicts ``e - x_0``
    from ``x_t``, the query latents and the operation tokens; ``s`` is logit-normal,
    shifted for the image size exactly as the sampler shifts its schedule."""

    def __init__(self, pipe, logit_mean: float = 0.0, logit_std: float = 1.0) -> None:
        super().__init__()
        self.encoder, self.rformer = pipe.encoder, pipe.rformer
        self.connector, self.transformer = pipe.connector, pipe.transformer
        self._pipe = [pipe]                 # not a submodule: its modules are registered above
        self.logit_mean, self.logit_std = logit_mean, logit_std

    def forward(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        pipe = self._pipe[0]
        with torch.no_grad():
            z0 = pipe.codec.encode(batch["ground_truth"]).float()
            zq = pipe.codec.encode(batch["query"]).float()
        if pipe.residual:
            z0 = z0 - zq
        h, w = z0.shape[-2:]
        x0, qtok = pack(z0), pack(zq)
        b = x0.shape[0]
        u = torch.randn(b, generator=generator) * self.logit_std + self.logit_mean
        sigma = shift_sigmas(torch.sigmoid(u), pipe.shift_mu(x0.shape[1])).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        s = sigma.view(b, 1, 1)
        xt = (1 - s) * x0 + s * noise
        query_rgb = list(to_uint8(batch["query"])) if pipe.condition_encoder is not None else None
        cond, mask = pipe.condition(batch["source"], batch["target"], query_rgb)
        v = pipe.velocity(xt, qtok, sigma, cond, mask, (h, w))
        return F.mse_loss(v, noise - x0)
