"""The trainer's view of a completion's log-probabilities is the sampler's: `completion_logprobs` on the
teacher equals what the torch engine reported while sampling, token for token."""

from __future__ import annotations

import pytest
import torch

from r1.model.checkpoint import load_pretrained
from r1.rl.logprobs import completion_logprobs
from tests.engine.conftest import request


def test_completion_logprobs_equal_the_engines_sampled_logprobs(make_engine, teacher_dir):
    engine = make_engine(model=str(teacher_dir))
    prompts = [[0, 17, 99, 250, 31], [0, 5, 6]]
    results = engine.collect(*(request(p, f"p{i}", n=2, temperature=1.0, max_tokens=4 + 3 * i, seed=i,
                                       ignore_eos=True) for i, p in enumerate(prompts)))
    rows = [(prompt, output) for prompt, outputs in zip(prompts, results) for output in outputs]
    model = load_pretrained(teacher_dir).eval()
    with torch.no_grad():
        logprobs, mask = completion_logprobs(model, [p for p, _ in rows], [o.token_ids for _, o in rows], pad_id=2)
    assert mask.sum(dim=1).tolist() == [4, 4, 7, 7]
    for row, (_, output) in enumerate(rows):
        assert logprobs[row, :len(output.token_ids)].tolist() == pytest.approx(list(output.logprobs), abs=1e-4)
    assert (logprobs[mask == 0] == 0).all()


def test_gradients_reach_the_policy_through_the_completion_tokens_only(teacher_dir):
    model = load_pretrained(teacher_dir).train()
    logprobs, mask = completion_logprobs(model, [[0, 5, 6, 7]], [[8, 9]], pad_id=2)
    logprobs.sum().backward()
    assert model.lm_head.weight.grad is not None and model.lm_head.weight.grad.abs().sum() > 0
