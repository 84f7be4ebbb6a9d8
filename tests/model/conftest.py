"""Tiny random DeepSeek-V3 models for the model tests."""

from __future__ import annotations

import pytest
import torch

from r1.model.config import preset
from r1.model.deepseek_v3 import DeepSeekV3ForCausalLM

VOCAB = 300


def random_model(seed: int = 0, **overrides) -> DeepSeekV3ForCausalLM:
    """The tiny preset with a small vocabulary and a random (non-zero) routing bias, in eval mode."""
    torch.manual_seed(seed)
    model = DeepSeekV3ForCausalLM(preset("tiny", vocab_size=VOCAB, **overrides)).eval()
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                buffer.normal_(0, 0.05)
    return model


@pytest.fixture(scope="module")
def model() -> DeepSeekV3ForCausalLM:
    return random_model()


@pytest.fixture
def tokens() -> torch.Tensor:
    return torch.randint(3, VOCAB, (2, 24), generator=torch.Generator().manual_seed(1))
