"""Keep large CPU tensors on the malloc heap while the VAE runs (issue 15).

glibc serves every allocation above its mmap threshold (128 KB, growing to at most 32 MB) with a fresh ``mmap`` and
returns it with ``munmap`` on free. The Oobleck VAE's audio-rate activations are 30-70 MB each, so every layer of
every tile mapped new pages and faulted them in: on 2 AMD EPYC cores a bf16 decode of 256 latent frames spent 4.7 s
of 19 s in the kernel (1.9 million minor page faults). With mmap off and trimming held back for the duration
(:func:`heap_allocations`), freed blocks are reused: no page faults, 11 s for the same decode (1.65x), peak RSS
2.5 GB instead of 1.95 GB; on exit the defaults come back and ``malloc_trim`` returns the free heap to the system,
so later models see the memory as available again.

Only for tiled work. Untiled, over a whole 47.55 s clip, the heap cannot reuse the freed blocks for the next
layers' differently sized ones and grows instead: an fp32 encode + decode of 47.55 s at 48 kHz peaked at 15.2 GiB
with it against 7.6 GiB without (channels-last layout; 19.4 GiB plain; an AMX Xeon), and ACE-Step's pipeline, which
runs its VAE untiled, was killed for memory on a 24 GiB machine. So SAMUeL's tiled codec uses it, and the Stable
Audio Open and ACE-Step adapters (diffusers' pipelines, untiled) do not.

Only glibc (Linux); elsewhere the context does nothing. ``SAMUEL_HEAP_ALLOCATIONS=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# mallopt(3) parameters and glibc's defaults (malloc/malloc.c)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536
HELD_TRIM_THRESHOLD = 1 << 30  # free memory stays in the heap while the context is open

_lock = threading.Lock()
_depth = 0
_libc: list[Any] = []  # [] until looked up; [None] where this is not glibc


def glibc() -> Any:
    """The process's glibc (ctypes), or None (another C library, or not Linux)."""
    if not _libc:
        handle = None
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            try:
                handle = ctypes.CDLL("libc.so.6")
                handle.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                handle.malloc_trim.argtypes = [ctypes.c_size_t]
            except (OSError, AttributeError):
                handle = None
        _libc.append(handle)
    return _libc[0]


def enabled() -> bool:
    return os.environ.get("SAMUEL_HEAP_ALLOCATIONS", "1") != "0" and glibc() is not None


@contextmanager
def heap_allocations() -> Iterator[bool]:
    """Inside: no mmap for large blocks and no trimming (see the module docstring); yields whether it applied.
    Nested and concurrent uses share one setting: the outermost exit restores glibc's defaults and trims."""
    global _depth
    libc = glibc() if enabled() else None
    if libc is None:
        yield False
        return
    with _lock:
        if _depth == 0:
            libc.mallopt(M_MMAP_MAX, 0)
            libc.mallopt(M_TRIM_THRESHOLD, HELD_TRIM_THRESHOLD)
        _depth += 1
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
                libc.malloc_trim(0)


def return_free_heap() -> bool:
    """``malloc_trim(0)``: give the heap's free memory back to the system, e.g. after a model's weights were
    replaced by copies in another layout (glibc keeps freed blocks below the top of the heap, and its mmap
    threshold has by then grown, so freed weights stay resident: 1.7 GiB for MusicGen-Medium's prepacked decoder).
    Not while :func:`heap_allocations` holds the heap; returns whether it trimmed."""
    libc = glibc()
    if libc is None:
        return False
    with _lock:
        if _depth:
            return False
        libc.malloc_trim(0)
    return True
