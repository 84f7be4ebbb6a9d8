"""The user messages each protocol asks, and the frames around them."""

import pytest

from r1.data.records import EvalRecord
from r1.errors import InvalidArgument
from r1.eval.prompts import framed, message_builder
from r1.model.tokenizer import r1_zero_prompt
from tests.engine.conftest import tokenizer  # noqa: F401 (fixture)


def test_math_message_is_the_r1_instruction_after_the_problem():
    record = EvalRecord("1", "math500", "math", "What is $1+1$?", answer="2")
    assert message_builder("math")(record) == (
        "What is $1+1$?\nPlease reason step by step, and put your final answer within \\boxed{}.")


def test_gpqa_message_is_the_simple_evals_template_with_lettered_options():
    record = EvalRecord("g", "gpqa_diamond", "choice", "Which is a noble gas?", answer="C",
                        choices=("N2", "O2", "Ar", "Cl2"))
    text = message_builder("gpqa")(record)
    assert text.startswith("Answer the following multiple choice question. The last line of your response should "
                           "be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of "
                           "ABCD. Think step by step before answering.\n\nWhich is a noble gas?\n\n")
    assert text.endswith("A) N2\nB) O2\nC) Ar\nD) Cl2")


def test_code_messages_ask_for_a_program_or_the_whole_function():
    stdin = EvalRecord("c", "codeforces", "code", "Print the sum of two integers.")
    assert "reads the input from standard input" in message_builder("code")(stdin)
    function = EvalRecord("h", "humaneval", "code", "", starter_code="def add(a, b):\n    \"\"\"a + b\"\"\"\n")
    text = message_builder("code")(function)
    assert "```python\ndef add(a, b):" in text and "signature included" in text


def test_frames(tokenizer):  # noqa: F811
    assert framed("Q?", "raw") == "Q?"
    assert framed("Q?", "r1-zero") == r1_zero_prompt("Q?")
    assert framed("Q?", "chat", tokenizer) == tokenizer.bos_token + r1_zero_prompt("Q?")
    with pytest.raises(InvalidArgument, match="--tokenizer"):
        framed("Q?", "chat")
    with pytest.raises(InvalidArgument, match="valid: raw, r1-zero, chat"):
        framed("Q?", "fancy")
    with pytest.raises(InvalidArgument, match="valid: math, gpqa, code, question"):
        message_builder("essay")
