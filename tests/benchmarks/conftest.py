"""Benchmark fixtures: the machine's fp32 matmul rate (measured in the same run) and a derived-figures summary."""

from __future__ import annotations

import platform
import time

import pytest
import torch

SUMMARY: list[str] = []


def measure_matmul_gflops(n: int = 2048, reps: int = 10, dtype: torch.dtype = torch.float32, warmup: int = 3
                          ) -> float:
    """Median GEMM rate (GFLOP/s) for n x n @ n x n in ``dtype`` on this machine, after warm-up."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=gen).to(dtype), torch.randn(n, n, generator=gen).to(dtype)
    for _ in range(warmup):
        a @ b
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    times.sort()
    return 2 * n**3 / times[len(times) // 2] / 1e9


@pytest.fixture(scope="session")
def matmul_gflops() -> float:
    rate = measure_matmul_gflops()
    SUMMARY.append(f"fp32 matmul rate (2048^3 GEMM, median of 10): {rate:.1f} GFLOP/s")
    return rate


@pytest.fixture(scope="session")
def matmul_rates(matmul_gflops: float) -> dict[str, float]:
    """The fp32 and bf16 GEMM rates of this run (GFLOP/s). Without oneDNN's bf16 kernels (an AVX2-only CPU) a
    2048^3 bf16 GEMM takes about 10 s on reference loops, so there it is timed at 1024^3, three times."""
    from samuel.generate import cpu_bf16_kernels_missing

    if cpu_bf16_kernels_missing() is not None:
        return {"fp32": matmul_gflops, "bf16": measure_matmul_gflops(1024, reps=3, dtype=torch.bfloat16, warmup=1)}
    return {"fp32": matmul_gflops, "bf16": measure_matmul_gflops(dtype=torch.bfloat16)}


@pytest.fixture(scope="session")
def gemm_rate():
    """The GEMM-rate measurement itself, for benchmarks that bracket each timing with it."""
    return measure_matmul_gflops


@pytest.fixture
def summary() -> list[str]:
    return SUMMARY


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if SUMMARY:
        terminalreporter.section("derived figures")
        terminalreporter.write_line(
            f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads"
        )
        for line in SUMMARY:
            terminalreporter.write_line(line)
