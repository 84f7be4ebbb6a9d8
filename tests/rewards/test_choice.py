"""Multiple-choice extraction as simple-evals does it, with the decorations models produce."""

from __future__ import annotations

import pytest

from r1.rewards.choice import check_choice, extract_choice
from r1.rewards.verdict import Verdict


@pytest.mark.parametrize("response, letter", [
    ("Answer: C", "C"),
    ("answer:b", "B"),
    ("Answer: $D$", "D"),
    ("**Answer: **A**", "A"),
    ("Answer: (B)", "B"),
    ("Answer: \\text{C}", "C"),
    ("Answer：A", "A"),  # full-width colon
    ("So the final answer is $\\boxed{B}$.", "B"),
    ("The answer is (D).", "D"),
    ("Answer: A\n...wait, that is wrong.\nAnswer: C", "C"),  # the correction counts
    ("<think>Answer: A? no.</think>\nAnswer: B", "B"),  # thinking is ignored once closed
])
def test_extracts_the_letter(response, letter):
    assert extract_choice(response) == letter


@pytest.mark.parametrize("response", ["I think it is the second one.", "Answer: E", "Answer: 42", ""])
def test_no_valid_letter_is_no_answer(response):
    result = check_choice(response, "B")
    assert (result.verdict, result.reward) == (Verdict.NO_ANSWER, 0.0)


def test_letters_follow_the_number_of_choices():
    assert extract_choice("Answer: E", n_choices=5) == "E"
    assert check_choice("Answer: E", "E", choices=("1", "2", "3", "4", "5")).verdict == Verdict.CORRECT


def test_right_and_wrong():
    right = check_choice("Reasoning...\nAnswer: B", "B")
    assert (right.verdict, right.reward, right.extracted) == (Verdict.CORRECT, 1.0, "B")
    wrong = check_choice("Answer: A", "(B)")
    assert (wrong.verdict, wrong.reward, wrong.extracted) == (Verdict.WRONG, 0.0, "A")
    assert "expected B" in wrong.detail


@pytest.mark.parametrize("reference", ["", "AB", "Z", "7"])
def test_a_bad_reference_is_invalid_input(reference):
    assert check_choice("Answer: A", reference).verdict == Verdict.INVALID_INPUT
