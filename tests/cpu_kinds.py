"""Skips that depend on the CPU kind a session draws.

An AVX2-only CPU (a 2-core EPYC VM here) has no oneDNN bf16 kernels: torch runs bf16 convolutions and matmuls on
reference loops 75-190x slower than fp32, and one tiny-VAE bf16 test ran over 15 minutes there. Tests that push
audio through the VAE or the U-Net in bf16 skip on such a CPU and run on the AMX and AVX512-BF16 kinds; the rule that
makes bf16 safe to ask for there (a warning; ``auto`` never picks it) is tested everywhere (test_precision.py).
"""

from __future__ import annotations

import pytest

from samuel.generate import cpu_bf16_kernels_missing

BF16_KERNELS_MISSING = cpu_bf16_kernels_missing()

needs_bf16_kernels = pytest.mark.skipif(BF16_KERNELS_MISSING is not None,
                                        reason=f"bf16 through the VAE or U-Net: {BF16_KERNELS_MISSING}")
