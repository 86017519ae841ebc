"""SAMUeL: vocal-conditioned accompaniment generation by latent diffusion (Cheung, Zhang, Chan).

``SAMUeL`` and ``SAMUeLConfig`` are imported on first use, so that the light modules of this package (the
registry, hashing, provenance, dist) can be imported without torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SAMUeL", "SAMUeLConfig"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "SAMUeL":
        from samuel.model import SAMUeL

        return SAMUeL
    if name == "SAMUeLConfig":
        from samuel.config import SAMUeLConfig

        return SAMUeLConfig
    raise AttributeError(f"module 'samuel' has no attribute {name!r}")
