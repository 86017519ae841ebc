"""Distributed set-up for runs under ``torchrun``: this process's rank, a barrier, and each rank's device.

Plain processes (no WORLD_SIZE, or 1) are rank 0 of 1 and every call here is then a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_dist() -> Dist:
    """Under torchrun (WORLD_SIZE > 1): a gloo process group, used for barriers only."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return Dist(dist.get_rank(), world)


def rank_device(device: str, env: dict[str, str] | None = None) -> str:
    """Under torchrun, plain ``cuda`` means this rank's own GPU, ``cuda:LOCAL_RANK``; an explicit index or the CPU
    is kept as given."""
    env = dict(os.environ) if env is None else env
    if device == "cuda" and int(env.get("WORLD_SIZE", "1")) > 1:
        return f"cuda:{int(env.get('LOCAL_RANK', '0'))}"
    return device


def usable_device(spec: str) -> str:
    """``spec`` (cpu, cuda, cuda:N, mps) when this machine can run on it, else ValueError saying why, so that a
    missing GPU is a usage error before any work (it surfaced as "AssertionError: Torch not compiled with CUDA
    enabled" in a model's load, or a pin_memory RuntimeError inside safetensors)."""
    import torch

    try:
        device = torch.device(spec)
    except (RuntimeError, ValueError):
        raise ValueError(f"{spec!r} is not a device (cpu, cuda, cuda:N, mps)") from None
    if device.type == "cpu":
        return spec
    if device.type == "cuda":
        if torch.version.cuda is None and torch.version.hip is None:
            raise ValueError(f"{spec}: this torch ({torch.__version__}) is built without CUDA; run on cpu, or install "
                             "a CUDA build of torch")
        count = torch.cuda.device_count()
        if count == 0:
            raise ValueError(f"{spec}: no CUDA device is visible (CUDA_VISIBLE_DEVICES="
                             f"{os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')})")
        if device.index is not None and device.index >= count:
            raise ValueError(f"{spec}: only {count} CUDA device(s) are visible (cuda:0 to cuda:{count - 1})")
        return spec
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"{spec}: MPS is not available on this machine")
        return spec
    raise ValueError(f"{spec}: only cpu, cuda and mps devices are supported")


def barrier(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()


def finish_dist(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
