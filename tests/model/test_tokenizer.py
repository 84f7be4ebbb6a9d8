"""The teacher's tokenizer: exact round trips, fixed ids, one token per digit, the R1-Zero template, reloads."""

from __future__ import annotations

import json

import huggingface_hub.constants
import pytest
from jinja2.exceptions import TemplateError
from transformers import AutoTokenizer

from r1.errors import InvalidArgument
from r1.model.tokenizer import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    BOS_TOKEN,
    EOS_TOKEN,
    FIXED_TOKENS,
    PAD_TOKEN,
    R1_ZERO_SYSTEM,
    THINK_CLOSE,
    THINK_OPEN,
    default_corpus,
    load_tokenizer,
    r1_zero_prompt,
    save_tokenizer,
    train_tokenizer,
)

TRICKY = [
    "",
    "plain ascii, with punctuation: a + b = c; (x)!",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\nand  double  spaces\n\n",
    "emoji 😀 👍🏽 family 👨‍👩‍👧 flag 🇫🇷",
    "数学问题：三加五等于八。",
    "combining marks: e\u0301 n\u0303 a\u030a, and precomposed é ñ å",
    "right to left: مرحبا بالعالم",
    "zero width\u200bspace, nbsp\u00a0here, bom \ufeff",
    "control \x00 \x07 \x1b[0m characters",
    "\\frac{1}{2} + \\sqrt{x^{2}} = \\boxed{42}",
    "<think> 12 + 30 = 42 </think> <answer> \\boxed{42} </answer>",
    "tags glued<think>x</think><answer>y</answer>z",
]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test may reach the hub: the env var for subprocesses, the constant for this process (read at import)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(default_corpus())


@pytest.fixture(scope="module")
def saved(tokenizer, tmp_path_factory):
    return save_tokenizer(tokenizer, tmp_path_factory.mktemp("tokenizer"))


# Round trips


@pytest.mark.parametrize("text", TRICKY)
def test_decode_inverts_encode_exactly(tokenizer, text):
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text


@pytest.mark.parametrize("text", TRICKY)
def test_skipping_special_tokens_recovers_the_text_after_bos(tokenizer, text):
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_text_never_seen_in_training_still_round_trips():
    tokenizer = train_tokenizer(["only ascii here"] * 3, vocab_size=300)
    text = "пример 例子 😀"
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


# Fixed ids, special and added tokens


def test_fixed_tokens_have_the_first_ids_in_the_documented_order(tokenizer):
    assert FIXED_TOKENS == (BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
    for expected_id, token in enumerate(FIXED_TOKENS):
        assert tokenizer.convert_tokens_to_ids(token) == expected_id
        assert tokenizer.encode(token, add_special_tokens=False) == [expected_id]
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (0, 1, 2)


def test_fixed_ids_do_not_depend_on_the_corpus(tokenizer):
    other = train_tokenizer(["a completely different corpus, with no tags at all"] * 5, vocab_size=300)
    assert [other.convert_tokens_to_ids(t) for t in FIXED_TOKENS] == list(range(len(FIXED_TOKENS)))


def test_the_deepseek_names_are_the_special_tokens(tokenizer):
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == (BOS_TOKEN, EOS_TOKEN, PAD_TOKEN)
    assert set(tokenizer.all_special_ids) == {0, 1, 2}
    decoder = tokenizer.added_tokens_decoder
    assert [decoder[i].special for i in range(7)] == [True, True, True, False, False, False, False]
    assert not any(decoder[i].normalized for i in range(7))


def test_skip_special_tokens_drops_bos_and_eos_but_keeps_the_tags(tokenizer):
    text = f"{THINK_OPEN} 2 + 2 = 4 {THINK_CLOSE} {ANSWER_OPEN} 4 {ANSWER_CLOSE}"
    ids = tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert tokenizer.decode(ids) == BOS_TOKEN + text + EOS_TOKEN


def test_tags_are_single_tokens_even_glued_to_text(tokenizer):
    ids = tokenizer.encode(f"a{THINK_OPEN}b{THINK_CLOSE}c", add_special_tokens=False)
    assert ids.count(tokenizer.convert_tokens_to_ids(THINK_OPEN)) == 1
    assert ids.count(tokenizer.convert_tokens_to_ids(THINK_CLOSE)) == 1


def test_bos_is_prepended_and_eos_is_not_appended(tokenizer):
    ids = tokenizer("x")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert ids.count(tokenizer.bos_token_id) == 1
    assert tokenizer.eos_token_id not in ids
    assert tokenizer("x", add_special_tokens=False)["input_ids"] == ids[1:]


# Digits


def test_each_digit_is_its_own_token(tokenizer):
    assert tokenizer.tokenize("1234567890") == list("1234567890")
    tokens = tokenizer.tokenize("In 2024, 17 + 25 = 42.")
    assert [t for t in tokens if any(c.isdigit() for c in t)] == list("2024172542")


def test_no_vocabulary_entry_joins_a_digit_to_anything(tokenizer):
    with_digits = [t for t in tokenizer.get_vocab() if any(c in "0123456789" for c in t)]
    assert sorted(with_digits) == list("0123456789")


# Training


def test_training_is_deterministic():
    first, second = train_tokenizer(default_corpus()), train_tokenizer(default_corpus())
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()


def test_vocab_size_bounds_the_vocabulary(tokenizer):
    assert len(train_tokenizer(default_corpus(), vocab_size=300)) == 300
    assert 7 + 256 < len(tokenizer) <= 2048


def test_model_max_length_is_configurable_and_survives_a_reload(tmp_path):
    tokenizer = train_tokenizer(default_corpus(), model_max_length=128)
    assert tokenizer.model_max_length == 128
    assert load_tokenizer(str(save_tokenizer(tokenizer, tmp_path))).model_max_length == 128


def test_default_corpus_is_deterministic_and_in_the_domain():
    corpus = default_corpus()
    assert corpus == default_corpus()
    assert 200 <= len(corpus) <= 1000
    assert all(isinstance(line, str) and line for line in corpus)
    assert R1_ZERO_SYSTEM in corpus
    joined = "\n".join(corpus)
    for fragment in ("\\frac{1}{2}", "\\boxed{", "\\times", "How many", THINK_OPEN, ANSWER_CLOSE, "12 + 35"):
        assert fragment in joined


# Chat template


def test_generation_prompt_is_bos_frame_question_and_open_think(tokenizer):
    text = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 2?"}], tokenize=False,
                                         add_generation_prompt=True)
    assert text == BOS_TOKEN + R1_ZERO_SYSTEM + "\nUser: What is 2 + 2?\nAssistant: <think>"


@pytest.mark.parametrize("question", ["What is 2 + 2?", "Simplify \\frac{6}{8}.", "数学 😀", ""])
def test_r1_zero_prompt_agrees_with_the_chat_template(tokenizer, question):
    messages = [{"role": "user", "content": question}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == tokenizer.bos_token + r1_zero_prompt(question)
    # The bos written by the template and the one the post-processor adds are the same single id.
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)["input_ids"]
    assert ids == tokenizer(r1_zero_prompt(question))["input_ids"]


def test_a_system_message_replaces_the_frame_and_assistant_turns_end_with_eos(tokenizer):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "1 + 1?"},
        {"role": "assistant", "content": "<think> 1 + 1 = 2 </think> <answer> 2 </answer>"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text == (BOS_TOKEN + "Be brief.\nUser: 1 + 1?\nAssistant: <think> 1 + 1 = 2 </think> "
                    "<answer> 2 </answer>" + EOS_TOKEN)


def test_an_unknown_role_is_refused_by_the_template(tokenizer):
    with pytest.raises(TemplateError, match="role tool is not supported"):
        tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


# Save and load


def test_save_writes_the_hugging_face_files(saved):
    names = {path.name for path in saved.iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} <= names
    config = json.loads((saved / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    special = json.loads((saved / "special_tokens_map.json").read_text())
    assert {name: entry["content"] for name, entry in special.items()} == {
        "bos_token": BOS_TOKEN, "eos_token": EOS_TOKEN, "pad_token": PAD_TOKEN}


@pytest.mark.parametrize("load", [lambda d: AutoTokenizer.from_pretrained(d, local_files_only=True),
                                  lambda d: load_tokenizer(str(d))], ids=["AutoTokenizer", "load_tokenizer"])
def test_a_reloaded_tokenizer_encodes_and_renders_identically(tokenizer, saved, load):
    reloaded = load(saved)
    assert reloaded.get_vocab() == tokenizer.get_vocab()
    assert reloaded.all_special_ids == tokenizer.all_special_ids
    for text in TRICKY:
        assert reloaded(text)["input_ids"] == tokenizer(text)["input_ids"]
        assert reloaded.decode(reloaded(text)["input_ids"], skip_special_tokens=True) == text
    conversation = [{"role": "user", "content": "What is 3 + 4?"},
                    {"role": "assistant", "content": "<think> 7 </think> <answer> 7 </answer>"},
                    {"role": "user", "content": "And 3 + 5?"}]
    for prompt in (True, False):
        assert (reloaded.apply_chat_template(conversation, tokenize=False, add_generation_prompt=prompt)
                == tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=prompt))


def test_a_hub_id_is_passed_through_to_transformers(monkeypatch):
    calls = []
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", lambda *args, **kwargs: calls.append((args, kwargs)))
    load_tokenizer("deepseek-ai/DeepSeek-R1")
    load_tokenizer("gpt2")
    assert calls == [(("deepseek-ai/DeepSeek-R1",), {}), (("gpt2",), {})]


# Bad arguments


@pytest.mark.parametrize("path", ["./missing-tokenizer", "../missing", "/nonexistent/tokenizer", "a/b/c", "~/tok"])
def test_a_missing_local_path_names_the_path(path):
    with pytest.raises(InvalidArgument) as caught:
        load_tokenizer(path)
    assert caught.value.field == "name_or_path"
    assert path in caught.value.message


def test_a_directory_without_a_tokenizer_is_refused(tmp_path):
    with pytest.raises(InvalidArgument, match="no tokenizer.json") as caught:
        load_tokenizer(str(tmp_path))
    assert caught.value.field == "name_or_path"


@pytest.mark.parametrize(("kwargs", "field", "hint"), [
    ({"texts": []}, "texts", "is empty"),
    ({"texts": iter(())}, "texts", "is empty"),
    ({"texts": "one long string"}, "texts", "single string"),
    ({"texts": ["fine", 3]}, "texts[1]", "must be a string"),
    ({"texts": 7}, "texts", "iterable"),
    ({"vocab_size": 263}, "vocab_size", "at least 264"),
    ({"vocab_size": "2048"}, "vocab_size", "integer"),
    ({"vocab_size": True}, "vocab_size", "integer"),
    ({"min_frequency": 0}, "min_frequency", "at least 1"),
    ({"model_max_length": 0}, "model_max_length", "at least 1"),
])
def test_bad_training_arguments_name_the_field(kwargs, field, hint):
    arguments = {"texts": ["some text"], **kwargs}
    with pytest.raises(InvalidArgument, match=hint) as caught:
        train_tokenizer(**arguments)
    assert caught.value.field == field


def test_saving_over_a_file_or_saving_a_non_tokenizer_is_refused(tokenizer, tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(InvalidArgument) as caught:
        save_tokenizer(tokenizer, a_file)
    assert caught.value.field == "directory"
    with pytest.raises(InvalidArgument) as caught:
        save_tokenizer("not a tokenizer", tmp_path / "out")
    assert caught.value.field == "tokenizer"


def test_r1_zero_prompt_refuses_a_non_string():
    with pytest.raises(InvalidArgument) as caught:
        r1_zero_prompt(42)
    assert caught.value.field == "question"
