"""How audio of any length maps onto SAMUeL's fixed 1024-frame chunks (pure NumPy, no I/O).

One latent frame of the Stable Audio Open VAE is 2048 samples at 44.1 kHz, so one chunk is 1024 x 2048 =
2,097,152 samples = 47.55 s (paper section III).

Policy, for generation (:func:`plan_chunks`, :func:`split_chunks`, :func:`join_chunks`):

- **Shorter than one chunk:** the audio is padded with silence to a full chunk, so the model always sees the
  1024-frame context it was trained on (its global attention spans the whole chunk), and the output is cut back
  to the input's length. The valid length per chunk is the mask.
- **Longer:** chunks overlap by ``overlap`` samples (default 128 frames = 5.94 s); the last chunk is padded with
  silence. Chunks are generated independently, so across each overlap the outputs are joined with an
  equal-power (sine/cosine) crossfade, which keeps the loudness of two uncorrelated signals constant; a linear
  fade would dip by 3 dB in the middle.

For training data (:func:`training_chunk_starts`) the paper's policy holds: chunks without overlap, and a tail
shorter than one chunk is dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 44_100
HOP_LENGTH = 2048  # samples per latent frame: the VAE's strides 2 * 4 * 4 * 8 * 8
CHUNK_FRAMES = 1024
CHUNK_SAMPLES = CHUNK_FRAMES * HOP_LENGTH  # 2,097,152 samples = 47.55 s
DEFAULT_OVERLAP_FRAMES = 128  # 5.94 s of crossfade between generated chunks


@dataclass(frozen=True)
class ChunkPlan:
    """Where each chunk starts in a signal of ``total`` samples; chunk ``i`` covers ``starts[i] : +chunk``."""

    total: int
    chunk: int
    overlap: int
    starts: tuple[int, ...]

    def valid(self, i: int) -> int:
        """Samples of chunk ``i`` that hold input rather than padding (the mask)."""
        return min(self.chunk, self.total - self.starts[i])

    def __len__(self) -> int:
        return len(self.starts)


def plan_chunks(
    total_samples: int, chunk_samples: int = CHUNK_SAMPLES, overlap_samples: int = DEFAULT_OVERLAP_FRAMES * HOP_LENGTH
) -> ChunkPlan:
    """Overlapping chunks covering ``total_samples``: starts ``k * (chunk - overlap)`` until the end is covered."""
    if total_samples <= 0:
        raise ValueError(f"total_samples must be positive, got {total_samples}")
    if not 0 <= overlap_samples < chunk_samples:
        raise ValueError(f"overlap must lie in [0, chunk={chunk_samples}), got {overlap_samples}")
    hop = chunk_samples - overlap_samples
    n = 1 if total_samples <= chunk_samples else 1 + math.ceil((total_samples - chunk_samples) / hop)
    return ChunkPlan(total_samples, chunk_samples, overlap_samples, tuple(k * hop for k in range(n)))


def split_chunks(audio: np.ndarray, plan: ChunkPlan) -> np.ndarray:
    """(C, total) -> (n_chunks, C, chunk), each chunk padded with zeros (silence) past the input's end."""
    if audio.ndim != 2 or audio.shape[1] != plan.total:
        raise ValueError(f"audio must be (channels, {plan.total}), got {audio.shape}")
    out = np.zeros((len(plan), audio.shape[0], plan.chunk), dtype=audio.dtype)
    for i, start in enumerate(plan.starts):
        out[i, :, : plan.valid(i)] = audio[:, start : start + plan.valid(i)]
    return out


def equal_power_fades(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(fade_out, fade_in) over ``n`` samples with fade_out**2 + fade_in**2 = 1 at every sample."""
    theta = (np.arange(n, dtype=np.float64) + 0.5) / n * (np.pi / 2)
    return np.cos(theta), np.sin(theta)


def valid_frames(plan: ChunkPlan, hop: int = HOP_LENGTH) -> list[int]:
    """Per chunk, the latent frames that cover its input: :func:`join_chunks` keeps no audio past them."""
    return [-(-plan.valid(i) // hop) for i in range(len(plan))]


def join_chunks(chunks: np.ndarray, plan: ChunkPlan) -> np.ndarray:
    """(n_chunks, C, chunk) -> (C, total): chunks laid at their starts, equal-power crossfades across overlaps."""
    if chunks.ndim != 3 or chunks.shape[0] != len(plan) or chunks.shape[2] != plan.chunk:
        raise ValueError(f"chunks must be ({len(plan)}, channels, {plan.chunk}), got {chunks.shape}")
    out = np.zeros((chunks.shape[1], plan.total), dtype=np.float64)
    fade_out, fade_in = equal_power_fades(plan.overlap)
    for i, start in enumerate(plan.starts):
        piece = chunks[i, :, : plan.valid(i)].astype(np.float64)
        if i > 0 and plan.overlap:  # fade this chunk in over its head, the previous one out over the same span
            m = min(plan.overlap, piece.shape[1])
            out[:, start : start + m] *= fade_out[:m]
            piece[:, :m] *= fade_in[:m]
            out[:, start : start + m] += piece[:, :m]
            out[:, start + m : start + piece.shape[1]] = piece[:, m:]
        else:
            out[:, start : start + piece.shape[1]] = piece
    return out.astype(chunks.dtype)


def training_chunk_starts(total_samples: int, chunk_samples: int = CHUNK_SAMPLES) -> list[int]:
    """Non-overlapping chunk starts; a tail shorter than one chunk is dropped (the paper's data policy)."""
    if chunk_samples <= 0:  # range() would say "arg 3 must not be zero", or silently return [] when negative
        raise ValueError(f"chunk_samples must be positive, got {chunk_samples}")
    if total_samples < 0:
        raise ValueError(f"total_samples must be >= 0, got {total_samples}")
    return list(range(0, total_samples - chunk_samples + 1, chunk_samples))
