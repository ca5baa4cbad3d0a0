"""The learned MirrorPPR system (needs the ``model`` extra: torch, diffusers, peft).

Pipeline of modules, each a diffusers model (``ModelMixin`` + ``ConfigMixin``):

    source, target --PatchEncoder (ViT-MAE)--> patch features
                   --RFormer--> 8 operation tokens
                   --Connector--> 8 tokens in the backbone's text width
    query --codec--> latents; noise + query latents + tokens --DiT (+LoRA)--> velocity

Stage I trains the R-Former through a :class:`ReconstructionHead`; stage II trains the
R-Former, connector and LoRA with the flow-matching loss. See ``mirrorppr.train``.
Beyond the paper, :class:`LearnedWarp` decodes operation tokens into a displacement
field that the project's warp applies (the ``learned-warp`` engine). Sizes:
:mod:`mirrorppr.model.sizes`.
"""
from .codec import PixelCodec, VaeCodec
from .connector import Connector
from .encoder import PatchEncoder
from .head import ReconstructionHead
from .pipeline import MirrorPPRPipeline, MirrorPPRPipelineOutput
from .rformer import RFormer
from .sizes import SIZES, WARP_SIZES
from .warp import LearnedWarp

__all__ = ["Connector", "LearnedWarp", "MirrorPPRPipeline", "MirrorPPRPipelineOutput", "PatchEncoder",
           "PixelCodec", "RFormer", "ReconstructionHead", "SIZES", "VaeCodec", "WARP_SIZES"]
