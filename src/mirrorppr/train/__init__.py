"""Two-stage MirrorPPR training (needs the ``model`` extra).

Stage I pretrains the Retouching Operation Extractor with a reconstruction head; stage II
trains R-Former + connector + LoRA (or a from-scratch base) with the flow-matching loss,
data drawn by the curriculum loader. ``mirrorppr train --config tiny|small|paper|FILE``.
"""
from .config import load_config
from .loop import train

__all__ = ["load_config", "train"]
