"""Classifier-free guidance for SAMUeL as a sampler ``model_fn`` (one batched forward per step)."""

from __future__ import annotations

import torch
from torch import Tensor

from samuel.diffusion import guided_v
from samuel.model import Condition, SAMUeL
from samuel.samplers import ModelFn
from samuel.time_major import TimeMajorSAMUeL

# The paper gives no guidance scale; 3.0 is what the authors' code uses at inference.
DEFAULT_GUIDANCE = 3.0


def guided_model_fn(model: SAMUeL, vocal: Tensor | None, guidance: float = DEFAULT_GUIDANCE, *,
                    denoiser: SAMUeL | TimeMajorSAMUeL | None = None) -> ModelFn:
    """``model_fn(x_t, t) -> v`` for the samplers, guided by ``vocal`` (B, 64, T).

    The vocal is encoded once per clip. With guidance != 1 the conditional and the unconditional (null
    condition) halves run as one forward over a 2B batch, and ``v = v_u + g (v_c - v_u)``.

    ``denoiser``: a :func:`samuel.model.low_precision_twin` of ``model`` that runs each step, or a
    :class:`samuel.time_major.TimeMajorSAMUeL` of one. The condition is still encoded by ``model`` (fp32) and cast
    once; ``x_t`` goes in and ``v`` comes out in fp32, so the sampler's arithmetic (and the guidance sum) stays
    fp32.
    """
    net = model if denoiser is None else denoiser
    dtype = net.dtype

    def step(x_t: Tensor, t: Tensor, condition: Condition) -> Tensor:
        return net.denoise(x_t.to(dtype), t, condition).to(x_t.dtype)

    if vocal is None or guidance == 1.0:
        conditions: dict[tuple[int, int], Condition] = {}

        def conditional(x_t: Tensor, t: Tensor) -> Tensor:
            key = (x_t.shape[0], x_t.shape[-1])  # the null condition takes its size from x_t
            if key not in conditions:
                conditions[key] = model.encode_condition(vocal, batch_size=key[0], frames=key[1]).to(dtype)
            return step(x_t, t, conditions[key])

        return conditional

    b = vocal.shape[0]
    keep = torch.cat([torch.ones(b, dtype=torch.bool), torch.zeros(b, dtype=torch.bool)]).to(vocal.device)
    condition = model.encode_condition(torch.cat([vocal, vocal]), keep).to(dtype)

    def guided(x_t: Tensor, t: Tensor) -> Tensor:
        v = step(torch.cat([x_t, x_t]), torch.cat([t, t]), condition)
        v_cond, v_uncond = v.chunk(2)
        return guided_v(v_cond, v_uncond, guidance)

    return guided
