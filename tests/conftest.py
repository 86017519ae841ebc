"""Shared fixtures: tiny and default configs; models get `randomize`d so their output depends on inputs."""

from __future__ import annotations

import pytest
import torch

from samuel import SAMUeL, SAMUeLConfig
from samuel.model import fill_zero_init_layers as randomize


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
