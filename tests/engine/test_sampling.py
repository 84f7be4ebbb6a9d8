"""Sampling maths against values worked out by hand, and speculative acceptance against its promise: the
output is distributed as the target, whatever the draft."""

from __future__ import annotations

import math

import pytest
import torch

from r1.engine import sampling
from r1.engine.detokenizer import TextStream, held_back
from r1.engine.types import SamplingParams


def settings(**params) -> sampling.RowSettings:
    return sampling.row_settings([SamplingParams(**params)])


def test_penalties_follow_vllm():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    seen = torch.tensor([[True, True, False, False]])  # tokens 0 and 1 in the prompt or completion
    counts = torch.tensor([[0, 2, 0, 0]])  # token 1 twice in the completion
    out = sampling.apply_penalties(logits, seen, counts, torch.tensor([2.0]), torch.tensor([0.5]),
                                   torch.tensor([0.25]))
    # token 0: 2 / 2 = 1; token 1: -1 * 2 = -2, minus 0.25 * 2 and 0.5 -> -3; others unchanged
    assert out.tolist() == [[1.0, -3.0, 0.5, 3.0]]


def test_temperature_and_top_k():
    logits = torch.tensor([[math.log(1), math.log(2), math.log(3), math.log(4)]])
    probs = sampling.probabilities(logits, settings(temperature=1.0))
    assert probs[0].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4])
    probs = sampling.probabilities(logits, settings(temperature=1.0, top_k=2))
    assert probs[0].tolist() == pytest.approx([0, 0, 3 / 7, 4 / 7])
    probs = sampling.probabilities(logits, settings(temperature=0.5))  # squares, renormalised: 1, 4, 9, 16
    assert probs[0].tolist() == pytest.approx([1 / 30, 4 / 30, 9 / 30, 16 / 30])


def test_top_p_keeps_the_token_that_crosses_it():
    logits = torch.tensor([[math.log(0.1), math.log(0.2), math.log(0.3), math.log(0.4)]])
    assert sampling.probabilities(logits, settings(top_p=0.5))[0].tolist() == pytest.approx([0, 0, 3 / 7, 4 / 7])
    assert sampling.probabilities(logits, settings(top_p=0.4))[0].tolist() == pytest.approx([0, 0, 0, 1])
    assert sampling.probabilities(logits, settings(top_p=0.75))[0].tolist() == pytest.approx([0, 2 / 9, 3 / 9, 4 / 9])


def test_min_p_is_relative_to_the_top_token():
    logits = torch.tensor([[math.log(0.1), math.log(0.2), math.log(0.3), math.log(0.4)]])
    probs = sampling.probabilities(logits, settings(min_p=0.5))  # keep p >= 0.2
    assert probs[0].tolist() == pytest.approx([0, 2 / 9, 3 / 9, 4 / 9])


def test_greedy_rows_are_one_hot_and_mixed_batches_keep_their_own_settings():
    logits = torch.tensor([[0.0, 3.0, 1.0], [0.0, 3.0, 1.0]])
    rows = sampling.row_settings([SamplingParams(temperature=0), SamplingParams(temperature=1.0)])
    probs = sampling.probabilities(logits, rows)
    assert probs[0].tolist() == [0.0, 1.0, 0.0]
    assert probs[1].tolist() == pytest.approx(torch.tensor([0.0, 3.0, 1.0]).softmax(0).tolist())


def test_min_tokens_masks_stop_tokens():
    logits = torch.zeros(1, 4)
    banned = torch.tensor([[False, True, False, False]])
    assert sampling.mask_tokens(logits, banned)[0, 1] == float("-inf")


def test_accepting_drafts_preserves_the_target_distribution():
    """A draft q far from the target p: over many trials the first emitted token is distributed as p."""
    p = torch.tensor([[0.5, 0.3, 0.2, 0.0], [0.25, 0.25, 0.25, 0.25]])
    q = torch.tensor([[0.1, 0.1, 0.2, 0.6]])
    generator = torch.Generator().manual_seed(0)
    trials, counts, kept = 20_000, torch.zeros(4), 0
    for _ in range(trials):
        draft = torch.multinomial(q[0], 1, generator=generator)
        accepted, following = sampling.accept_drafts(draft, q, p, generator)
        first = int(draft) if accepted else following
        counts[first] += 1
        kept += accepted
    assert (counts / trials).tolist() == pytest.approx(p[0].tolist(), abs=0.015)
    # acceptance rate = sum min(p, q) = 0.1 + 0.1 + 0.2 + 0 = 0.4
    assert kept / trials == pytest.approx(0.4, abs=0.015)


def test_batched_greedy_acceptance_counts_the_leading_matches():
    drafts = torch.tensor([[5, 6, 7], [5, 9, 7], [1, 2, 3]])
    target = torch.tensor([[5, 6, 7, 8], [5, 6, 7, 8], [4, 2, 3, 0]])
    assert sampling.accept_greedy(drafts, target) == ([3, 1, 0], [8, 6, 4])


def test_greedy_acceptance_keeps_the_argmax_prefix():
    one_hot = lambda i: torch.nn.functional.one_hot(torch.tensor(i), 5).float()  # noqa: E731
    target = torch.stack([one_hot(1), one_hot(2), one_hot(4), one_hot(0)])  # argmax at 3 drafts + bonus
    drafts = torch.tensor([1, 2, 3])
    draft_probs = torch.stack([one_hot(1), one_hot(2), one_hot(3)])
    assert sampling.accept_drafts(drafts, draft_probs, target, torch.Generator()) == (2, 4)
    assert sampling.accept_drafts(torch.tensor([1, 2, 4]), torch.stack([one_hot(1), one_hot(2), one_hot(4)]),
                                  target, torch.Generator()) == (3, 0)


def test_text_stream_holds_back_a_possible_stop_string_and_cuts_at_it():
    pieces = {1: "The ans", 2: "wer is", 3: " 4", 4: "2.", 5: " END", 6: " more"}
    decode = lambda ids: "".join(pieces[i] for i in ids)  # noqa: E731
    stream = TextStream(decode, stop=("is 42",))
    out = [stream.feed([t]) for t in (1, 2, 3, 4)]
    assert stream.stopped == "is 42"
    assert "".join(out) == "The answer " == stream.text
    assert out[1] == "wer "  # "is" held back: it could begin the stop string


def test_text_stream_waits_for_a_whole_character():
    texts = {(1,): "caf", (1, 2): "caf\ufffd", (1, 2, 3): "café!"}  # "é" is two byte-level tokens
    stream = TextStream(lambda ids: texts[tuple(ids)])
    assert [stream.feed([1]), stream.feed([2]), stream.feed([3])] == ["caf", "", "é!"]


def test_held_back_is_the_longest_prefix_tail():
    assert held_back("abc </an", ("</answer>",)) == 4
    assert held_back("abc", ("</answer>",)) == 0
    assert held_back("x</answer", ("</answer>", "r")) == 8
