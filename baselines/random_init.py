"""Random weights drawn once: a transformers model built without torch's default initialisation first.

Constructing a transformers model runs every layer's own ``reset_parameters`` (torch's defaults: a uniform draw
per weight) and then, in ``post_init``, transformers' ``_init_weights``, which draws most of the same weights again
from its own distributions. On a CPU both draws run on one thread, and the first is thrown away: drawn once, a random
MusicGen-Large was built 1.4x faster (32 s against 45 s) and MusicGen-Melody 1.7x (docs/benchmarks.md, "Speed,
ninth pass"). :func:`torch_defaults_left_nan` skips the first draw and marks each tensor it would have drawn with
NaNs; what transformers' initialisation then does not reach keeps its mark, so it is found
(:func:`nonfinite_tensors`) instead of running on uninitialised memory. The weights are what ``from_pretrained``
gives a weight missing from a checkpoint: transformers' own draw.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class DoubleDrawWarning(UserWarning):
    """A model was built with both draws after all (:func:`built_with_one_draw`'s fallback)."""


@contextmanager
def torch_defaults_left_nan() -> Iterator[None]:
    """Inside, ``torch.nn.init``'s functions set their tensor's first and last elements to NaN instead of drawing,
    in every module of torch that binds them (transformers' ``initialization.TORCH_MODULES_TO_PATCH``).
    transformers' own initialisation keeps the real functions (it bound them at import), so ``post_init`` still
    draws its weights. Build under ``torch.no_grad()``."""
    from transformers.initialization import TORCH_INIT_FUNCTIONS, TORCH_MODULES_TO_PATCH

    def left_nan(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        # The first and the last element mark it: filling the rest would only touch memory the real draw writes
        # again. Two marks, because torch zeroes an embedding's padding row after its draw (a row at either end).
        if not tensor.numel():
            return tensor
        if tensor.is_contiguous():
            flat = tensor.view(-1)
            flat[0] = flat[-1] = math.nan
        else:
            tensor.fill_(math.nan)
        return tensor

    saved = []
    try:
        for module_name in TORCH_MODULES_TO_PATCH:
            module = sys.modules.get(module_name)
            for name in TORCH_INIT_FUNCTIONS:
                if module is not None and hasattr(module, name):
                    saved.append((module, name, getattr(module, name)))
                    setattr(module, name, left_nan)
        yield
    finally:
        for module, name, function in saved:
            setattr(module, name, function)


def nonfinite_tensors(model: Any) -> list[str]:
    """Names of ``model``'s floating parameters and buffers holding a NaN or an infinity (meta tensors hold
    nothing)."""
    import torch

    def finite(tensor: Any) -> bool:  # a sum reads the tensor once; isfinite().all() also writes a mask
        return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())  # an overflowed sum

    named = [*model.named_parameters(), *model.named_buffers()]
    return [name for name, tensor in named
            if tensor.is_floating_point() and not tensor.is_meta and not finite(tensor)]


def built_with_one_draw(construct: Callable[[], Any], finish: Callable[[Any], None] | None = None) -> Any:
    """``construct()`` (a transformers model, on the current default device and RNG) with torch's default draw
    skipped (:func:`torch_defaults_left_nan`), then ``finish(model)`` outside it (a part to draw as before). When a
    weight is left undrawn (:func:`nonfinite_tensors`), the RNG is put back and the model built again with both
    draws, as before (a :class:`DoubleDrawWarning` says so): never run on a NaN or uninitialised weight."""
    import torch

    state = torch.random.get_rng_state()
    with torch.no_grad():
        with torch_defaults_left_nan():
            model = construct()
        if finish is not None:
            finish(model)
        missed = nonfinite_tensors(model)
        if not missed:
            return model
        warnings.warn(f"{type(model).__name__}: transformers' initialisation left {len(missed)} tensors undrawn "
                      f"({', '.join(missed[:3])}...); built again with torch's default draw first (slower)",
                      DoubleDrawWarning, stacklevel=2)
        del model
        torch.random.set_rng_state(state)
        model = construct()
        if finish is not None:
            finish(model)
    return model
