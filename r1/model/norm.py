"""RMSNorm as DeepSeek-V3 uses it: computed in float32, scaled by a learned weight, cast back.

Without gradients (decode) it runs as torch's fused `rms_norm`: one kernel instead of five, the same values
(the same float32 arithmetic; equal to the bit in the tests). Training keeps the explicit form, whose
backward torch differentiates op by op.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        if torch.is_grad_enabled():
            normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        else:
            normed = F.rms_norm(x32, (x32.shape[-1],), eps=self.eps)
        return self.weight * normed.to(x.dtype)
