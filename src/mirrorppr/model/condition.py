"""Optional Qwen2.5-VL condition encoder of Qwen-Image-Edit (the query image with an empty
prompt), used when the base folder holds it. Delegates to diffusers' own prompt encoder
so the tokens match what the base model was trained on.

Not exercised in this repository's tests: it needs the base model's multi-GB weights.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn


class QwenVLCondition(nn.Module):
    def __init__(self, base_path: str | Path, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        from diffusers import QwenImageEditPipeline

        # Only the text encoder, tokenizer and processor are loaded.
        pipe = QwenImageEditPipeline.from_pretrained(str(base_path), transformer=None, vae=None,
                                                     torch_dtype=dtype)
        self.text_encoder = pipe.text_encoder.requires_grad_(False).eval()
        self._pipe = pipe

    @torch.no_grad()
    def forward(self, query_rgb: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image

        imgs = [Image.fromarray(q) for q in query_rgb]
        dev = next(self.text_encoder.parameters()).device
        emb, mask = self._pipe.encode_prompt(prompt=[""] * len(imgs), image=imgs, device=dev)
        if mask is None:
            mask = torch.ones(emb.shape[:2], dtype=torch.long, device=emb.device)
        return emb, mask
