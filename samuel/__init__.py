"""SAMUeL: vocal-conditioned accompaniment generation by latent diffusion (Cheung, Zhang, Chan)."""

from samuel.config import SAMUeLConfig
from samuel.model import SAMUeL

__all__ = ["SAMUeL", "SAMUeLConfig"]
__version__ = "0.1.0"
