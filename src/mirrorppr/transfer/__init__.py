"""Transfer: apply an exemplar's retouching to other portraits (engines, API, batch)."""
from .engines import ENGINES, TransferOptions, get_engine, register_engine
from .retoucher import Result, Retoucher
from .transport import transport

__all__ = ["Retoucher", "Result", "TransferOptions", "ENGINES", "get_engine", "register_engine",
           "transport"]
