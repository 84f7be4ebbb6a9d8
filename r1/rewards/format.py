"""The R1-Zero format reward: reasoning in one `<think>...</think>`, then the answer, nothing else.

DeepSeek-R1-Zero's template asks the model to put its reasoning between `<think>` and `</think>` and its
answer between `<answer>` and `</answer>`; math answers are also accepted as `\\boxed{...}` after the
thinking, as the R1 math prompt asks for. The reward is 1 when all of these hold, else 0 with the first
rule broken named in `detail`:
1. exactly one `<think>` and one `</think>`, in that order, with non-blank reasoning between them;
2. nothing but whitespace before `<think>` (or, with `think_prefilled`, the prompt already opened it and
   the response must not open another);
3. after `</think>`: either exactly one `<answer>...</answer>` with a non-blank answer and nothing but
   whitespace around it, or a final answer containing `\\boxed{...}`;
4. no tag of the template appears anywhere else.
A partial-credit variant (0.5 for the think block alone) is deliberately not offered: R1 uses 0/1.
"""

from __future__ import annotations

import re

from r1.rewards.verdict import RewardResult, Verdict

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_ANSWER_BLOCK = re.compile(r"\s*<answer>(.*?)</answer>\s*", re.DOTALL)


def _fail(reason: str) -> RewardResult:
    return RewardResult(0.0, Verdict.FORMAT_ERROR, reason)


def check_format(response: str, think_prefilled: bool = False) -> RewardResult:
    """1.0 and CORRECT when `response` follows the R1-Zero template, else 0.0 and FORMAT_ERROR."""
    text = "<think>" + response if think_prefilled else response
    counts = {tag: text.count(tag) for tag in _TAGS}
    if counts["<think>"] != 1 or counts["</think>"] != 1:
        return _fail(f"expected one <think> and one </think>, found {counts['<think>']} and {counts['</think>']}")
    opened, closed = text.index("<think>"), text.index("</think>")
    if opened > closed:
        return _fail("</think> comes before <think>")
    if text[:opened].strip():
        return _fail("text before <think>")
    if not text[opened + len("<think>"):closed].strip():
        return _fail("empty reasoning between <think> and </think>")
    rest = text[closed + len("</think>"):]
    if counts["<answer>"] or counts["</answer>"]:
        block = _ANSWER_BLOCK.fullmatch(rest)
        if counts["<answer>"] != 1 or counts["</answer>"] != 1 or block is None:
            return _fail("after </think>, expected exactly one <answer>...</answer> and nothing else")
        if not block.group(1).strip():
            return _fail("empty <answer>")
        return RewardResult(1.0, Verdict.CORRECT, "think + answer tags")
    if "\\boxed{" in rest:
        return RewardResult(1.0, Verdict.CORRECT, "think + boxed answer")
    return _fail("no <answer>...</answer> or \\boxed{} answer after </think>")
