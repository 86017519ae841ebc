"""Where a number came from: package versions (read from installed metadata, nothing imported to read them), the
git commit and dirty flag of this checkout, the CPU model and the exact command."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

RUN_PACKAGES = ("samuel-bench", "torch", "numpy", "transformers", "diffusers", "huggingface-hub", "jukebox-infer",
                "soundfile", "soxr", "scipy", "torchsde")


def package_versions(dists: Iterable[str]) -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in dists:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux; platform.processor() is empty there)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (``cpuinfo``: that text, for tests); empty where it cannot be
    read (not Linux)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return frozenset()
    return frozenset(flag for line in cpuinfo.splitlines() if line.startswith("flags")
                     for flag in line.split(":", 1)[-1].split())


def usable_cores() -> int:
    """The cores this process may run on (its affinity on Linux, else all of them)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def git_state() -> dict[str, Any]:
    """The commit of this checkout and whether tracked files differ from it (None outside a git checkout)."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": dirty if commit else None}


def device_facts(device: str) -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {"requested": device, "cpu": cpu_name(), "cpu_count": os.cpu_count(),
                             "torch_threads": torch.get_num_threads()}
    if device.startswith("cuda") and torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return facts


def provenance(device: str, seed: int, argv: list[str] | None = None,
               packages: Iterable[str] = RUN_PACKAGES) -> dict[str, Any]:
    """Versions, git commit and dirty flag, device, threads, seed and the exact command."""
    return {"command": " ".join(argv if argv is not None else sys.argv), "versions": package_versions(packages),
            "git": git_state(), "device": device_facts(device), "seed": seed, "platform": platform.platform(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
