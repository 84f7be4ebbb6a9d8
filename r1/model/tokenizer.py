"""The teacher's tokenizer: a byte-level BPE with DeepSeek-V3's special tokens and the R1-Zero chat template.

`train_tokenizer(texts)` trains one with the `tokenizers` library and wraps it as a transformers
`PreTrainedTokenizerFast`; `save_tokenizer` / `load_tokenizer` write and read the Hugging Face files, so that
`AutoTokenizer.from_pretrained(directory)` (transformers, vLLM, SGLang) gets the same tokenizer back;
`default_corpus()` is a small built-in corpus, so a usable tokenizer needs no data at all.

Choices:
- Byte-level BPE over the full 256-byte alphabet (GPT-2's byte-to-unicode map, as DeepSeek-V3 uses): every
  string round-trips exactly, `decode(encode(s)) == s`, whatever the corpus saw. No normalizer, no unknown
  token, no prefix space.
- One pre-token per digit (`Digits(individual_digits=True)` before the ByteLevel split), so no merge ever
  spans two digits: "2024" is always the four tokens 2 0 2 4. Tiny models learn arithmetic far better when
  a number's tokens line up with its place values (Nogueira et al. 2021, "Investigating the Limitations of
  Transformers with Simple Arithmetic Tasks"; LLaMA splits digits for the same reason). DeepSeek-V3 itself
  groups up to three digits; at the teacher's size that costs more than it saves.
- Fixed ids, in this order, before the byte alphabet and the merges, so every checkpoint agrees on them
  whatever corpus trained its tokenizer (`FIXED_TOKENS`):
  0 `<｜begin▁of▁sentence｜>` (bos), 1 `<｜end▁of▁sentence｜>` (eos), 2 `<｜▁pad▁｜>` (pad),
  3 `<think>`, 4 `</think>`, 5 `<answer>`, 6 `</answer>`.
  The first three are special (dropped by `decode(..., skip_special_tokens=True)`); the four tags are plain
  added tokens, one id each, never split and never dropped, as in DeepSeek-R1, whose `<think>` survives
  decoding so that rewards and readers can see the reasoning.
- bos is prepended when encoding with special tokens (a TemplateProcessing post-processor, the template
  transformers builds for `add_bos_token=True`); eos is not appended: the chat template writes it after each
  assistant turn, and a prompt must not end with it.
- The chat template is the DeepSeek-R1-Zero frame (paper, table 1): bos, the system text (`R1_ZERO_SYSTEM`
  unless the conversation opens with a system message), "\\nUser: ..." per user turn, "\\nAssistant: ..."
  plus eos per assistant turn. The generation prompt ends with "\\nAssistant: <think>": the prompt opens
  the think block, as DeepSeek-R1's published template does (its prompt ends "<｜Assistant｜><think>\\n"),
  so that the model cannot skip thinking. An assistant turn is therefore written in full, from its own
  `<think>`. Unlike R1's template, past assistant turns keep their reasoning (our conversations are
  single-turn problems).
- `padding_side` is transformers' default ("right"); batched generation sets it to "left" itself.

Not done here: no tokenizer for students of another family (they bring their own), no slow (Python)
tokenizer, no hub downloads (a hub id is passed through to transformers for users who have a hub cache).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from r1.errors import InvalidArgument

BOS_TOKEN = "<｜begin▁of▁sentence｜>"
EOS_TOKEN = "<｜end▁of▁sentence｜>"
PAD_TOKEN = "<｜▁pad▁｜>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"

SPECIAL_TOKENS = (BOS_TOKEN, EOS_TOKEN, PAD_TOKEN)
TAG_TOKENS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
FIXED_TOKENS = SPECIAL_TOKENS + TAG_TOKENS  # ids 0..6, in this order
BYTE_ALPHABET_SIZE = 256
DEFAULT_VOCAB_SIZE = 2048
DEFAULT_MODEL_MAX_LENGTH = 4096

R1_ZERO_SYSTEM = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> "
    "tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>."
)
USER_PREFIX = "\nUser: "
ASSISTANT_PREFIX = "\nAssistant: "
GENERATION_PROMPT = ASSISTANT_PREFIX + THINK_OPEN

# The class name written into tokenizer_config.json: transformers 5 writes "TokenizersBackend", a name
# transformers 4.x (which vLLM and SGLang may pin) does not know; both versions load this one.
PORTABLE_TOKENIZER_CLASS = "PreTrainedTokenizerFast"


def _jinja_string(text: str) -> str:
    """`text` as a Jinja string literal (JSON's escapes are ones Jinja decodes)."""
    return json.dumps(text, ensure_ascii=True)


# The template's body; the texts it writes are bound by `set` lines built from the constants above, so that
# r1_zero_prompt and the template cannot drift apart. Whitespace control (`{%-`, `-}}`) keeps the layout
# out of the output.
_CHAT_TEMPLATE_BODY = """
{{- bos_token -}}
{%- if messages and messages[0]['role'] == 'system' -%}
    {{- messages[0]['content'] -}}
    {%- set turns = messages[1:] -%}
{%- else -%}
    {{- r1_zero_system -}}
    {%- set turns = messages -%}
{%- endif -%}
{%- for message in turns -%}
    {%- if message['role'] == 'user' -%}
        {{- user_prefix + message['content'] -}}
    {%- elif message['role'] == 'assistant' -%}
        {{- assistant_prefix + message['content'] + eos_token -}}
    {%- else -%}
        {{- raise_exception('role ' + message['role'] + ' is not supported here: the R1-Zero template takes '
                            'one optional leading system message, then user and assistant messages') -}}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- generation_prompt -}}
{%- endif -%}
"""
CHAT_TEMPLATE = "\n".join([
    f"{{%- set r1_zero_system = {_jinja_string(R1_ZERO_SYSTEM)} -%}}",
    f"{{%- set user_prefix = {_jinja_string(USER_PREFIX)} -%}}",
    f"{{%- set assistant_prefix = {_jinja_string(ASSISTANT_PREFIX)} -%}}",
    f"{{%- set generation_prompt = {_jinja_string(GENERATION_PROMPT)} -%}}",
]) + _CHAT_TEMPLATE_BODY


def r1_zero_prompt(question: str) -> str:
    """The R1-Zero prompt for one question, without bos: what the chat template renders for
    `[{"role": "user", "content": question}]` with `add_generation_prompt=True`, minus the leading bos.
    For callers that build prompts as text (reward tests, engines without chat templates)."""
    if not isinstance(question, str):
        raise InvalidArgument("question", f"must be a string, got {type(question).__name__}")
    return R1_ZERO_SYSTEM + USER_PREFIX + question + GENERATION_PROMPT


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    min_frequency: int = 2,
    *,
    model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
) -> PreTrainedTokenizerFast:
    """Train the byte-level BPE described in the module docstring on `texts`.

    vocab_size: the most tokens in the vocabulary, the 7 fixed tokens and the 256 bytes included; a small
        corpus may yield fewer merges, so size embeddings by `len(tokenizer)`, not by this number.
    min_frequency: a pair is merged only if it occurs at least this often.
    model_max_length: the longest sequence the model takes (transformers truncates and warns by it).
    Training is deterministic: the same texts and arguments give the same vocabulary and merges.
    """
    _check_int("vocab_size", vocab_size, minimum=len(FIXED_TOKENS) + BYTE_ALPHABET_SIZE + 1,
               why=f"it must exceed the {BYTE_ALPHABET_SIZE}-byte alphabet plus the {len(FIXED_TOKENS)} "
                   "fixed tokens, to leave room for at least one merge")
    _check_int("min_frequency", min_frequency, minimum=1, why="a pair must occur at least once to merge")
    _check_int("model_max_length", model_max_length, minimum=1, why="it is a sequence length")
    texts = _checked_texts(texts)
    backend = _untrained_backend()
    backend.train_from_iterator(texts, trainer=_trainer(vocab_size, min_frequency))
    backend = _with_plain_tags(backend)
    backend.post_processor = _bos_post_processor()
    return _wrap(backend, model_max_length)


def _check_int(field: str, value: object, *, minimum: int, why: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(field, f"must be an integer, got {value!r}")
    if value < minimum:
        raise InvalidArgument(field, f"must be at least {minimum} ({why}), got {value}")


def _checked_texts(texts: Iterable[str]) -> Iterator[str]:
    """`texts`, refused up front when it is a single string or empty; items are checked as they stream."""
    if isinstance(texts, (str, bytes)):
        raise InvalidArgument("texts", "got a single string; pass an iterable of strings, e.g. [text]")
    try:
        iterator = iter(texts)
    except TypeError:
        raise InvalidArgument("texts", f"must be an iterable of strings, got {type(texts).__name__}") from None
    first = next(iterator, None)
    if first is None:
        raise InvalidArgument("texts", "is empty; pass at least one text, or use default_corpus()")
    return _strings_only(itertools.chain([first], iterator))


def _strings_only(texts: Iterator[object]) -> Iterator[str]:
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidArgument(f"texts[{index}]", f"must be a string, got {type(text).__name__}")
        yield text


def _untrained_backend() -> Tokenizer:
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    backend.decoder = decoders.ByteLevel()
    return backend


def _trainer(vocab_size: int, min_frequency: int) -> trainers.BpeTrainer:
    """The trainer's special tokens take the first ids in the order given: that is how the ids are fixed."""
    return trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[AddedToken(token, special=True, normalized=False) for token in FIXED_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )


def _with_plain_tags(backend: Tokenizer) -> Tokenizer:
    """The trainer marks every token it was given as special; the tags must not be (skip_special_tokens
    would drop them), so flip the flag in the serialized tokenizer, ids unchanged."""
    state = json.loads(backend.to_str())
    for added in state["added_tokens"]:
        if added["content"] in TAG_TOKENS:
            added["special"] = False
    return Tokenizer.from_str(json.dumps(state, ensure_ascii=False))


def _bos_post_processor() -> processors.TemplateProcessing:
    """bos before each sequence, no eos: the template transformers writes for add_bos_token=True."""
    bos_id = FIXED_TOKENS.index(BOS_TOKEN)
    return processors.TemplateProcessing(
        single=f"{BOS_TOKEN}:0 $A:0",
        pair=f"{BOS_TOKEN}:0 $A:0 {BOS_TOKEN}:1 $B:1",
        special_tokens=[(BOS_TOKEN, bos_id)],
    )


def _wrap(backend: Tokenizer, model_max_length: int) -> PreTrainedTokenizerFast:
    """clean_up_tokenization_spaces=False: the clean-up rewrites " ." to "." (transformers 5 ignores it for BPE
    with a warning; 4.x applies it and would break round trips)."""
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
        chat_template=CHAT_TEMPLATE,
    )


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, directory: str | os.PathLike) -> Path:
    """Write `tokenizer` to `directory` (created if missing) as Hugging Face files; return the directory.

    `save_pretrained` writes tokenizer.json, tokenizer_config.json and chat_template.jinja. Two additions so
    that transformers 4.x reads the directory too: tokenizer_config.json names `PreTrainedTokenizerFast`
    (see `PORTABLE_TOKENIZER_CLASS`), and special_tokens_map.json, which transformers 5 no longer writes, is
    written as 4.x wrote it.
    """
    if not isinstance(tokenizer, PreTrainedTokenizerBase):
        raise InvalidArgument("tokenizer", f"must be a transformers tokenizer, got {type(tokenizer).__name__}")
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise InvalidArgument("directory", f"{str(path)!r} is a file; pass a directory to write the tokenizer in")
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(path)
    _rewrite_json(path / "tokenizer_config.json", _portable_config)
    _write_json(path / "special_tokens_map.json", _special_tokens_map(tokenizer))
    return path


def _portable_config(config: dict) -> dict:
    return {**config, "tokenizer_class": PORTABLE_TOKENIZER_CLASS}


def _special_tokens_map(tokenizer: PreTrainedTokenizerBase) -> dict[str, dict]:
    """{"bos_token": {"content": ..., "lstrip": ..., ...}, ...}: transformers 4.x's special_tokens_map.json."""
    added = {str(token): token for token in tokenizer.added_tokens_decoder.values()}
    out = {}
    for name in ("bos_token", "eos_token", "unk_token", "pad_token"):
        content = getattr(tokenizer, name)
        if content is None:
            continue
        token = added.get(content, AddedToken(content, special=True, normalized=False))
        out[name] = {"content": content, "lstrip": token.lstrip, "normalized": token.normalized,
                     "rstrip": token.rstrip, "single_word": token.single_word}
    return out


def _rewrite_json(path: Path, change) -> None:
    _write_json(path, change(json.loads(path.read_text(encoding="utf-8"))))


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def load_tokenizer(name_or_path: str | os.PathLike) -> PreTrainedTokenizerBase:
    """A tokenizer from a local directory (never touching the network) or, for anything that is not a
    local path, from the Hugging Face hub id it names, passed to transformers as is (for users with a hub
    cache; this library never downloads).

    A hub id is "name" or "owner/name"; a string that cannot be one (absolute, starting with "." or "~",
    or with more than one "/") is a local path, and a missing one is an InvalidArgument naming it.
    """
    name = os.fspath(name_or_path)
    if os.path.isdir(name):
        if not (Path(name) / "tokenizer.json").is_file():
            raise InvalidArgument("name_or_path", f"{name!r} has no tokenizer.json; write one with save_tokenizer")
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    if isinstance(name_or_path, os.PathLike) or _looks_like_a_path(name):
        raise InvalidArgument("name_or_path", f"no tokenizer directory at {name!r}; check the path, or pass a "
                                              "hub id such as 'owner/name'")
    return AutoTokenizer.from_pretrained(name)


def _looks_like_a_path(name: str) -> bool:
    """True when `name` cannot be a hub id. Hub ids contain at most one "/", which is also os.sep on POSIX,
    so one "/" alone does not make a path."""
    if name.startswith((".", "~")) or os.path.isabs(name) or name.count("/") > 1:
        return True
    separators = {os.sep, os.altsep} - {"/", None}
    return any(separator in name for separator in separators)


def default_corpus() -> list[str]:
    """A few hundred deterministic lines in the teacher's domain: the R1-Zero frame and prompts, numbers,
    arithmetic, LaTeX, math word problems and R1-format completions. Enough for a usable tokenizer with no
    data at all; not a substitute for training on the real task mix."""
    return [
        *_frame_lines(),
        *_number_lines(),
        *_arithmetic_lines(),
        *_latex_lines(),
        *_word_problem_lines(),
        *_completion_lines(),
    ]


def _operands(count: int) -> list[tuple[int, int]]:
    """`count` pairs of small positive integers from fixed linear congruences (no random module)."""
    return [((17 * i + 3) % 97 + 1, (29 * i + 5) % 89 + 1) for i in range(count)]


def _frame_lines() -> list[str]:
    return [R1_ZERO_SYSTEM, *(r1_zero_prompt(q) for q in _QUESTIONS)]


_QUESTIONS = (
    "What is 12 + 35?",
    "Compute 7 \\times 8.",
    "Simplify \\frac{6}{8}.",
    "Solve for x: 2x + 3 = 11.",
    "What is the remainder when 100 is divided by 7?",
    "How many minutes are there in 3 hours?",
    "Find the area of a rectangle with length 5 and width 4.",
    "What is the sum of the first 10 positive integers?",
)


def _number_lines() -> list[str]:
    numbers = [0, 1, 2, 10, 42, 100, 256, 1000, 2024, 65536, 1000000, -3, -17, 3.14, 0.5, 1e-3]
    decimals = [f"{a}.{b:02d}" for a, b in _operands(12)]
    sums = [f"{a}, {b}, {a + b}" for a, b in _operands(20)]
    return [" ".join(str(n) for n in numbers), ", ".join(decimals), *sums]


def _arithmetic_lines() -> list[str]:
    lines = []
    for a, b in _operands(40):
        lines += [f"{a} + {b} = {a + b}", f"{a} - {b} = {a - b}", f"{a} \\times {b} = {a * b}",
                  f"{a * b} \\div {b} = {a}", f"({a} + {b}) \\cdot 2 = {2 * (a + b)}"]
    return lines


def _latex_lines() -> list[str]:
    fixed = [
        "\\frac{1}{2} + \\frac{1}{3} = \\frac{5}{6}", "\\boxed{42}", "\\boxed{\\frac{3}{4}}", "\\sqrt{16} = 4",
        "x^{2} + 2x + 1 = (x + 1)^{2}", "\\left( \\frac{a}{b} \\right)^{2} = \\frac{a^{2}}{b^{2}}",
        "\\pi r^{2}", "2 \\pi r", "a \\le b", "a \\ge b", "a \\neq b", "\\dfrac{7}{9}", "5 \\text{ cm}",
        "25\\%", "$x = 3$", "\\[ y = mx + c \\]", "\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}", "\\log_{2} 8 = 3",
        "\\binom{5}{2} = 10", "3! = 6", "\\angle ABC = 90^\\circ", "\\triangle ABC", "\\{1, 2, 3\\}",
    ]
    fractions = [f"\\frac{{{a % 9 + 1}}}{{{b % 11 + 2}}}" for a, b in _operands(20)]
    return fixed + fractions + [f"\\boxed{{{a * b}}}" for a, b in _operands(10)]


_NAMES = ("Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry")
_ITEMS = ("apples", "books", "marbles", "pencils", "cookies", "stickers", "coins", "cards")
_WORD_PROBLEMS = (
    "{name} has {a} {item} and buys {b} more. How many {item} does {name} have now?",
    "{name} had {s} {item} and gave away {b}. How many {item} are left?",
    "There are {a} boxes with {b} {item} in each box. How many {item} are there in total?",
    "{name} shares {p} {item} equally among {b} friends. How many {item} does each friend get?",
    "A store sells {item} for {a} dollars each. What is the cost of {b} {item}?",
    "{name} reads {a} pages a day. How many pages does {name} read in {b} days?",
)


def _word_problem_lines() -> list[str]:
    lines = []
    for i, (a, b) in enumerate(_operands(72)):
        template = _WORD_PROBLEMS[i % len(_WORD_PROBLEMS)]
        lines.append(template.format(name=_NAMES[i % len(_NAMES)], item=_ITEMS[(i // 3) % len(_ITEMS)],
                                     a=a, b=b, s=a + b, p=a * b))
    return lines


def _completion_lines() -> list[str]:
    return [
        f"{THINK_OPEN} We add {a} and {b}: {a} + {b} = {a + b}. {THINK_CLOSE} "
        f"{ANSWER_OPEN} \\boxed{{{a + b}}} {ANSWER_CLOSE}"
        for a, b in _operands(30)
    ]
