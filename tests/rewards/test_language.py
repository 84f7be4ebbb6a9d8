"""Language consistency: the share of chain-of-thought words in the target language, worked by hand."""

from __future__ import annotations

import pytest

from r1.errors import InvalidArgument
from r1.rewards.language import check_language, language_consistency, words_by_script
from r1.rewards.verdict import Verdict


def test_words_are_runs_of_one_script_and_cjk_characters_count_singly():
    assert words_by_script("we compute 我们 x^2 + 3 = 7") == ["LATIN", "LATIN", "CJK", "CJK", "LATIN"]
    assert words_by_script("3 + 4 = 7 !!") == []


@pytest.mark.parametrize("cot, language, share", [
    ("<think>first add the numbers then divide</think><answer>3</answer>", "en", 1.0),
    # so, we, need, the, sum: 5 Latin words; 我们需要: 4 Chinese words
    ("<think>so we need 我们需要 the sum</think>", "en", 5 / 9),
    ("<think>so we need 我们需要 the sum</think>", "zh", 4 / 9),
    ("<think>所以答案是 x = 5</think>", "zh", 5 / 6),  # 5 ideographs, 1 Latin letter 'x'
    ("<think>2 + 2 = 4</think>", "en", 1.0),  # no words: nothing inconsistent
    ("no think block at all, the whole response counts", "en-US", 1.0),
    ("<think>Итак, ответ</think>", "ru", 1.0),
    ("<think>Итак, answer</think>", "ru", 0.5),
])
def test_share_of_target_language_words(cot, language, share):
    assert language_consistency(cot, language) == pytest.approx(share)


def test_verdict_follows_the_threshold():
    mixed = "<think>so we need 我们需要 the sum</think>"
    assert check_language(mixed, "en", pass_threshold=0.5).verdict == Verdict.CORRECT
    result = check_language(mixed, "en", pass_threshold=0.6)
    assert (result.verdict, result.reward) == (Verdict.WRONG, pytest.approx(5 / 9))
    assert "56% of 9 words" in result.detail


def test_unknown_language_is_invalid_input():
    assert check_language("<think>hi</think>", "klingon").verdict == Verdict.INVALID_INPUT
    with pytest.raises(InvalidArgument, match="supported: "):
        language_consistency("hi", "xx")
