"""The trainer's view of a completion's log-probabilities is the sampler's: `completion_logprobs` on the
teacher equals what the torch engine reported while sampling, token for token. Sharing prompt tokens between
rows (the teacher's common prefix; a student's prompt per group) changes neither the values nor the gradients
of the plain full-sequence pass."""

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


def test_the_shared_prompt_prefix_runs_once_with_equal_logprobs_and_gradients(teacher_dir):
    prompts = [[0, 11, 12, 13, 14, 20, 21], [0, 11, 12, 13, 14, 30], [0, 11, 12, 13, 14, 40, 41, 42]]
    completions = [[50, 51, 52], [60], [70, 71]]
    results = {}
    for share in (True, False):
        model = load_pretrained(teacher_dir).train()
        logprobs, mask = completion_logprobs(model, prompts, completions, pad_id=2, share_prefix=share)
        (logprobs * torch.arange(1, 4)[:, None]).sum().backward()  # a different weight per row
        results[share] = logprobs.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                                            if p.grad is not None}
    assert torch.allclose(results[True][0], results[False][0], atol=1e-5)
    assert results[True][1].keys() == results[False][1].keys()
    for name, grad in results[True][1].items():
        assert torch.allclose(grad, results[False][1][name], atol=1e-5), name


def test_shared_prefix_keeps_every_rows_last_prompt_token():
    from r1.rl.logprobs import shared_prefix

    assert shared_prefix([[1, 2, 3, 4], [1, 2, 3, 5, 6]]) == [1, 2, 3]
    assert shared_prefix([[1, 2, 3], [1, 2, 3, 4]]) == [1, 2]  # one token short of the shortest prompt
    assert shared_prefix([[7, 2], [1, 2]]) == []


def tiny_student(kind: str, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    sizes = dict(vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=256)
    if kind == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**sizes, tie_word_embeddings=True)).train()
    return LlamaForCausalLM(LlamaConfig(**sizes)).train()


FRAME = [0, 11, 12, 13, 14, 15]
LAYOUTS = {
    # GRPO's: groups of G rows per prompt, prompts of different lengths after a frame they all share
    "groups": ([FRAME + [20, 21, 22]] * 3 + [FRAME + [30]] * 3 + [FRAME + [40, 41, 42, 43, 44, 45]] * 2,
               [[50, 51, 52], [53], [54, 55, 56, 57, 58, 59], [60, 61], [62], [63, 64, 65, 66], [70, 71, 72], [73]]),
    "no common prefix": ([[5, 6, 7]] * 2 + [[9, 10]] * 2, [[50, 51], [52, 53, 54], [55], [56, 57]]),
    "one prompt": ([FRAME] * 3, [[50, 51, 52], [53], [54, 55]]),
    "every row its own prompt": ([FRAME + [20], FRAME + [30, 31], FRAME], [[50, 51], [52], [53, 54, 55]]),
}


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_students_run_each_prompt_once_with_equal_logprobs_logits_and_gradients(kind, layout):
    prompts, completions = LAYOUTS[layout]
    model = tiny_student(kind)
    weights = torch.arange(1, len(prompts) + 1, dtype=torch.float32)[:, None]  # a different weight per row
    results = {}
    for share in (True, False):
        model.zero_grad()
        logprobs, mask, logits = completion_logprobs(model, prompts, completions, pad_id=2, with_logits=True,
                                                     share_prefix=share)
        (logprobs * weights).sum().backward()
        results[share] = (logprobs.detach(), mask, logits.detach() * mask[..., None],
                          {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    (shared, mask, shared_logits, shared_grads), (plain, plain_mask, plain_logits, plain_grads) = results[True], \
        results[False]
    assert torch.equal(mask, plain_mask) and mask.sum(dim=1).tolist() == [len(c) for c in completions]
    assert torch.allclose(shared, plain, atol=1e-5) and (shared[mask == 0] == 0).all()
    assert torch.allclose(shared_logits, plain_logits, atol=1e-5)
    assert shared_grads.keys() == plain_grads.keys() == {n for n, _ in model.named_parameters()}
    for name, grad in shared_grads.items():
        assert torch.allclose(grad, plain_grads[name], rtol=1e-4, atol=1e-5), name


def test_students_share_prompts_with_the_models_attention_implementation():
    """The shared pass hands transformers 4-D additive masks: eager attention takes them as SDPA does."""
    prompts, completions = LAYOUTS["groups"]
    model = tiny_student("qwen2")
    with torch.no_grad():
        plain = completion_logprobs(model, prompts, completions, pad_id=2, share_prefix=False)[0]
        model.set_attn_implementation("eager")
        eager = completion_logprobs(model, prompts, completions, pad_id=2)[0]
    assert torch.allclose(eager, plain, atol=1e-5)
