"""Shared fixtures: tiny and default configs, and models whose zero-initialised layers are made non-trivial."""

from __future__ import annotations

import pytest
import torch

from samuel import SAMUeL, SAMUeLConfig


def randomize(model: torch.nn.Module, seed: int = 0, std: float = 0.05) -> torch.nn.Module:
    """Give the zero-initialised layers (output conv, FiLM, learned null) random values.

    A fresh SAMUeL predicts v = 0 by design; tests of behaviour need a model whose output depends on its inputs.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() and not p.any():
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    return model


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
