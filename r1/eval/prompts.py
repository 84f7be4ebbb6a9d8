"""What the model is asked: one user message per benchmark record, then a frame around it.

The user messages follow the protocols users compare against:
- "math": the DeepSeek-R1 instruction appended to the problem ("Please reason step by step, and put your
  final answer within \\boxed{}.").
- "gpqa": simple-evals' multiple-choice template: the question, the options as "A) ...", and the request to
  end with "Answer: $LETTER" (the letter the choice verifier reads).
- "code": a stdin/stdout problem asks for a complete Python 3 program; a function problem (HumanEval, MBPP)
  shows the header and docstring and asks for the whole function. Either way in one ```python block, which
  is what the code verifier extracts.
- "question": the bare question, for models trained on the R1-Zero frame (whose system text already says how
  to answer), as the tiny teacher's synthetic held-out set is asked in training.

The frame is chosen separately, because it belongs to the model, not the benchmark: "raw" sends the message
as it is (a base model, or a server that applies its own template), "r1-zero" wraps it in the DeepSeek-R1-Zero
template (table 1 of the paper, the tiny teacher's own frame), "chat" applies a tokenizer's chat template with
the generation prompt (the R1 protocol for chat models: pass the served model's tokenizer).
"""

from __future__ import annotations

from collections.abc import Callable

from r1.data.records import EvalRecord
from r1.errors import InvalidArgument
from r1.model.tokenizer import r1_zero_prompt

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
LETTERS = "ABCDEFGHIJ"
CODE_STDIN_INSTRUCTION = (
    "Write a complete Python 3 program that reads the input from standard input and prints the answer to "
    "standard output. Put the whole program in a single ```python code block."
)
CODE_FUNCTION_INSTRUCTION = (
    "Complete the following Python function. Reply with the whole function, its signature included, and any "
    "imports it needs, in a single ```python code block."
)


def math_message(record: EvalRecord) -> str:
    return f"{record.problem}\n{MATH_INSTRUCTION}"


def choice_message(record: EvalRecord) -> str:
    letters = LETTERS[:len(record.choices)]
    options = "\n".join(f"{letter}) {text}" for letter, text in zip(letters, record.choices))
    return ("Answer the following multiple choice question. The last line of your response should be of the "
            f"following format: 'Answer: $LETTER' (without quotes) where LETTER is one of {letters}. Think step "
            f"by step before answering.\n\n{record.problem}\n\n{options}")


def code_message(record: EvalRecord) -> str:
    if record.starter_code:
        return f"{CODE_FUNCTION_INSTRUCTION}\n\n```python\n{record.starter_code.rstrip()}\n```"
    return f"{record.problem.strip()}\n\n{CODE_STDIN_INSTRUCTION}"


def question_message(record: EvalRecord) -> str:
    return record.problem


MESSAGES: dict[str, Callable[[EvalRecord], str]] = {
    "math": math_message,
    "gpqa": choice_message,
    "code": code_message,
    "question": question_message,
}
FRAMES = ("raw", "r1-zero", "chat")


def message_builder(name: str) -> Callable[[EvalRecord], str]:
    if name not in MESSAGES:
        raise InvalidArgument("prompt", f"unknown prompt {name!r}; valid: {', '.join(MESSAGES)}")
    return MESSAGES[name]


def framed(message: str, frame: str, tokenizer=None) -> str:
    """The prompt text sent to the generation service."""
    if frame == "raw":
        return message
    if frame == "r1-zero":
        return r1_zero_prompt(message)
    if frame == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise InvalidArgument("frame", "'chat' needs a tokenizer with a chat template: pass --tokenizer "
                                           "(the served model's directory or hub id), or use --frame raw")
        return tokenizer.apply_chat_template([{"role": "user", "content": message}], tokenize=False,
                                             add_generation_prompt=True)
    raise InvalidArgument("frame", f"unknown frame {frame!r}; valid: {', '.join(FRAMES)}")
