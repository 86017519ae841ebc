"""Random weights drawn once: a transformers model built without torch's default initialisation first.

Constructing a transformers model runs every layer's own ``reset_parameters`` (torch's defaults: a uniform draw
per weight) and then, in ``post_init``, transformers' ``_init_weights``, which draws most of the same weights again
from its own distributions. On a CPU both draws run on one thread, and the first is thrown away: drawn once, a random
MusicGen-Large was built 1.4x faster (32 s against 45 s) and MusicGen-Melody 1.7x (docs/benchmarks.md, "Speed,
ninth pass"). :func:`torch_defaults_left_nan` skips the first draw and marks each tensor it would have drawn with
a NaN; what transformers' initialisation then does not reach keeps its mark, so it is found
(:func:`nonfinite_tensors`) instead of running on uninitialised memory. The weights are what ``from_pretrained``
gives a weight missing from a checkpoint: transformers' own draw.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def torch_defaults_left_nan() -> Iterator[None]:
    """Inside, ``torch.nn.init``'s functions set their tensor's first element to NaN instead of drawing, in every
    module of torch that binds them (transformers' ``initialization.TORCH_MODULES_TO_PATCH``). transformers' own
    initialisation keeps the real functions (it bound them at import), so ``post_init`` still draws its weights.
    Build under ``torch.no_grad()``."""
    from transformers.initialization import TORCH_INIT_FUNCTIONS, TORCH_MODULES_TO_PATCH

    def left_nan(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        if tensor.numel():  # one NaN marks it: filling the rest would only touch memory the real draw writes again
            tensor.as_strided((1,), (1,)).fill_(math.nan)
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
    draws, as before: never run on a NaN or uninitialised weight."""
    import torch

    state = torch.random.get_rng_state()
    with torch.no_grad():
        with torch_defaults_left_nan():
            model = construct()
        if finish is not None:
            finish(model)
        if not nonfinite_tensors(model):
            return model
        del model
        torch.random.set_rng_state(state)
        model = construct()
        if finish is not None:
            finish(model)
    return model
