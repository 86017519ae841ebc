"""Shared fixtures: tiny and default configs; models get `randomize`d so their output depends on inputs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from samuel import SAMUeL, SAMUeLConfig
from samuel.model import fill_zero_init_layers as randomize
from samuel.numba_cache import librosa_with_kernels

# The controller imports this before it starts the xdist workers: librosa's import-time kernels are compiled into
# its numba cache by this one process, and each worker then loads them under the same lock (a cache filled by two
# workers at once crashed every later worker in peak_pick)
librosa_with_kernels()


@pytest.fixture
def tiny_config() -> SAMUeLConfig:
    return SAMUeLConfig.tiny()


@pytest.fixture
def tiny_model(tiny_config: SAMUeLConfig) -> SAMUeL:
    torch.manual_seed(0)
    return randomize(SAMUeL(tiny_config)).eval()


@pytest.fixture(scope="session")
def default_model() -> SAMUeL:
    torch.manual_seed(0)
    return randomize(SAMUeL(SAMUeLConfig())).eval()


@pytest.fixture(autouse=True, scope="session")
def _auto_precision_is_fp32() -> Iterator[None]:
    """"auto" precision is bf16 on CPUs with AVX512-BF16 or AMX and fp32 elsewhere; tests pin this machine's answer
    to "no native bf16", so that what they run does not depend on the CPU kind a session draws. Session-scoped, so
    that module-scoped fixtures see it too. Tests of the rule pass /proc/cpuinfo text, which reaches the real
    function."""
    import samuel.codec
    import samuel.generate

    real = samuel.generate.cpu_has_native_bf16
    real_layout = samuel.codec.resolve_conv_layout
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(samuel.generate, "cpu_has_native_bf16",
                      lambda cpuinfo=None: False if cpuinfo is None else real(cpuinfo))
        # the VAE's "auto" convolution layout (channels-last on AMX CPUs) is pinned to plain the same way
        patch.setattr(samuel.codec, "resolve_conv_layout",
                      lambda layout, device, cpuinfo=None: real_layout("plain" if layout == "auto" and cpuinfo is None
                                                                       else layout, device, cpuinfo))
        yield


@pytest.fixture(autouse=True)
def _warnings_keep_their_format() -> Iterator[None]:
    """The command lines' ``main`` sets a one-line warning format for the process (samuel.console); a test that
    calls one must not change the format the tests after it see."""
    import warnings

    before = warnings.formatwarning
    yield
    warnings.formatwarning = before
