"""The learned MirrorPPR system (needs the ``model`` extra: torch, diffusers, peft).

Pipeline of modules, each a diffusers-style model (``ModelMixin`` + ``ConfigMixin``):

    source, target --PatchEncoder (ViT-MAE)--> patch features
                   --RFormer--> 8 operation tokens
                   --Connector--> 8 tokens in the backbone's text width
    query --codec--> latents; noise + query latents + tokens --DiT (+LoRA)--> velocity

Stage I trains the R-Former through a :class:`ReconstructionHead`; stage II trains the
R-Former, connector and LoRA with the flow-matching loss. See ``mirrorppr.train``.
"""
from .connector import Connector
from .encoder import PatchEncoder
from .head import ReconstructionHead
from .rformer import RFormer

__all__ = ["Connector", "PatchEncoder", "RFormer", "ReconstructionHead"]
