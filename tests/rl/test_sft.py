"""The SFT stage through TRL's SFTTrainer, on a tiny DeepSeek-V3 teacher and a tiny Qwen2 student built here."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from r1.data.synthetic import generate
from r1.errors import InvalidArgument
from r1.model.checkpoint import load_pretrained
from r1.model.config import preset
from r1.model.deepseek_v3 import DeepSeekV3ForCausalLM
from r1.rl.sft import (SFTStageConfig, TeacherForSFT, build_trainer, load_records, prepare_records, problem_records,
                       train_sft, trainable)

STEPS = 6


def qwen2_student(tokenizer, seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=1024, bos_token_id=0, eos_token_id=1, pad_token_id=2,
        tie_word_embeddings=True))


def llama_student(tokenizer, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=1024, bos_token_id=0, eos_token_id=1, pad_token_id=2))


def tiny_teacher(tokenizer, seed: int = 0) -> DeepSeekV3ForCausalLM:
    torch.manual_seed(seed)
    return DeepSeekV3ForCausalLM(preset("tiny", vocab_size=len(tokenizer)))


@pytest.fixture(scope="module")
def records():
    return problem_records(generate("arithmetic", 8, seed=0, difficulty=1))


def config(**overrides) -> SFTStageConfig:
    return SFTStageConfig(**{"max_steps": STEPS, "batch_size": 4, "lr": 3e-3, "max_seq_len": 512, **overrides})


def collated(trainer, rows: int = 2) -> dict[str, torch.Tensor]:
    return trainer.data_collator([trainer.train_dataset[i] for i in range(rows)])


def prompt_length(tokenizer, question: str) -> int:
    return len(tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                             tokenize=True, return_dict=True)["input_ids"])


def rows_unshuffled(trainer, records):
    """Row i of the prepared dataset is record i (TRL keeps the order without packing or shuffling)."""
    return [records[i] for i in range(len(trainer.train_dataset))]


# ------------------------------------------------------------------------------------------------ data


def test_labels_mask_the_prompt_and_keep_the_completion(tokenizer, records, tmp_path):
    trainer = build_trainer(qwen2_student(tokenizer), tokenizer, records, config(), tmp_path)
    batch = collated(trainer)
    for row, record in enumerate(rows_unshuffled(trainer, records)[:2]):
        prompt = prompt_length(tokenizer, record["prompt"])
        length = int(batch["attention_mask"][row].sum())
        labels, ids = batch["labels"][row], batch["input_ids"][row]
        assert (labels[:prompt] == -100).all()
        assert torch.equal(labels[prompt:length], ids[prompt:length])
        assert (labels[length:] == -100).all()
        completion = tokenizer.decode(ids[prompt:length])
        assert completion == record["completion"].removeprefix("<think>") + tokenizer.eos_token


def test_whole_sequence_loss_when_completion_only_is_off(tokenizer, records, tmp_path):
    trainer = build_trainer(qwen2_student(tokenizer), tokenizer, records, config(completion_only_loss=False), tmp_path)
    batch = collated(trainer)
    real = batch["attention_mask"].bool()
    assert torch.equal(batch["labels"][real], batch["input_ids"][real])


def test_conversations_train_on_their_last_assistant_turn(tokenizer, tmp_path):
    messages = [{"role": "user", "content": "What is 1 + 1?"},
                {"role": "assistant", "content": "<think>\n1 + 1 = 2\n</think>\n<answer>2</answer>"},
                {"role": "user", "content": "And 2 + 2?"},
                {"role": "assistant", "content": "<think>\n2 + 2 = 4\n</think>\n<answer>4</answer>"}]
    trainer = build_trainer(qwen2_student(tokenizer), tokenizer, [{"messages": messages}], config(), tmp_path)
    batch = collated(trainer, rows=1)
    trained = batch["input_ids"][0][batch["labels"][0] != -100]
    assert tokenizer.decode(trained) == "\n2 + 2 = 4\n</think>\n<answer>4</answer>" + tokenizer.eos_token


# ------------------------------------------------------------------------------------------------ training


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], prefix: str = "") -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix))


def test_teacher_sft_lowers_the_loss_and_saves_a_checkpoint_that_loads_back(tokenizer, records, tmp_path):
    model = tiny_teacher(tokenizer).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = train_sft(model, tokenizer, records, config(), tmp_path / "out")
    assert history["steps"] == STEPS and len(history["losses"]) == STEPS and not history["stopped"]
    assert history["final_loss"] < 0.8 * history["losses"][0]
    after = model.state_dict()
    assert changed(before, after, "model.layers.")
    assert not changed(before, after, "mtp.")  # TRL's loss is the main model's: MTP keeps its weights
    assert changed(before, after, "model.layers.1.mlp.gate.e_score_correction_bias")  # routing bias stepped
    loaded = load_pretrained(tmp_path / "out")
    assert set(loaded.state_dict()) == set(after)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in after.items())
    assert (tmp_path / "out" / "tokenizer.json").is_file()
    assert not model.training  # the caller's mode is restored


@pytest.mark.parametrize("make", [qwen2_student, llama_student], ids=["qwen2", "llama"])
def test_student_sft_lowers_the_loss_and_saves_a_model_transformers_loads(make, tokenizer, records, tmp_path):
    model = make(tokenizer)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = train_sft(model, tokenizer, records, config(max_steps=12), tmp_path / "out")
    assert history["final_loss"] < 0.8 * history["losses"][0]
    assert changed(before, model.state_dict())
    assert "forward" not in model.__dict__  # TRL's fused-head patch is undone
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert type(loaded) is type(model)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


def test_checkpoints_every_save_steps(tokenizer, records, tmp_path):
    model = tiny_teacher(tokenizer)
    train_sft(model, tokenizer, records, config(max_steps=4, save_steps=2), tmp_path)
    for step in (2, 4):
        assert load_pretrained(tmp_path / f"checkpoint-{step}").config == model.config
        assert (tmp_path / f"checkpoint-{step}" / "optimizer.pt").is_file()
    assert load_pretrained(tmp_path).config == model.config


# ------------------------------------------------------------------------------------------------ packing


def test_packing_flattens_the_batch_without_padding(tokenizer, records, tmp_path):
    trainer = build_trainer(qwen2_student(tokenizer), tokenizer, records, config(packing=True, max_seq_len=1024),
                            tmp_path)
    rows = len(trainer.train_dataset)
    assert rows < len(records)
    batch = collated(trainer, rows)
    assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch
    assert not (batch["input_ids"] == tokenizer.pad_token_id).any()
    assert int((batch["position_ids"] == 0).sum()) == len(records)  # one start per packed sequence
    assert int((batch["labels"] != -100).sum()) > 0


def packed_and_alone(forward_packed, forward_alone):
    torch.manual_seed(0)
    first, second = torch.randint(3, 300, (1, 7)), torch.randint(3, 300, (1, 5))
    positions = torch.cat([torch.arange(7), torch.arange(5)])[None]
    with torch.no_grad():
        packed = forward_packed(torch.cat([first, second], dim=1), positions)
        return packed, torch.cat([forward_alone(first), forward_alone(second)], dim=1)


def test_packed_sequences_do_not_see_each_other(tokenizer):
    teacher = tiny_teacher(tokenizer).eval()
    adapter = TeacherForSFT(teacher)
    packed, alone = packed_and_alone(lambda ids, pos: adapter(ids, position_ids=pos).logits,
                                     lambda ids: teacher(ids).logits)
    torch.testing.assert_close(packed, alone)
    student = qwen2_student(tokenizer).eval()
    packed, alone = packed_and_alone(lambda ids, pos: student(input_ids=ids, position_ids=pos, use_cache=False).logits,
                                     lambda ids: student(input_ids=ids).logits)
    torch.testing.assert_close(packed, alone)


def test_adapter_masks_right_padding(tokenizer):
    teacher = tiny_teacher(tokenizer).eval()
    ids = torch.randint(3, 300, (1, 5))
    padded = torch.cat([ids, torch.full((1, 3), tokenizer.pad_token_id)], dim=1)
    with torch.no_grad():
        out = TeacherForSFT(teacher)(padded, attention_mask=torch.tensor([[1] * 5 + [0] * 3])).logits
        torch.testing.assert_close(out[:, :5], teacher(ids).logits)


@pytest.mark.parametrize("make", [tiny_teacher, qwen2_student], ids=["teacher", "student"])
def test_packed_training_runs_and_learns(make, tokenizer, records, tmp_path):
    history = train_sft(make(tokenizer), tokenizer, records, config(packing=True, max_seq_len=1024, batch_size=1,
                                                                    max_steps=4), tmp_path)
    assert history["steps"] == 4
    assert history["final_loss"] < history["losses"][0]


# ------------------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize("field, value", [
    ("epochs", 0), ("epochs", 1.5), ("max_steps", -1), ("batch_size", 0), ("lr", 0.0), ("lr", float("nan")),
    ("warmup_steps", -2), ("warmup_ratio", 1.0), ("lr_scheduler", "cosine_with_restarts"), ("weight_decay", -0.1),
    ("grad_clip", -1.0), ("max_seq_len", 1), ("packing", "yes"), ("completion_only_loss", 1), ("save_steps", -5),
    ("bias_update_speed", -1e-3), ("seed", True),
])
def test_bad_config_fields_are_refused_by_name(field, value):
    with pytest.raises(InvalidArgument) as error:
        SFTStageConfig(**{field: value})
    assert error.value.field == field


def test_warmup_steps_and_ratio_together_are_refused():
    with pytest.raises(InvalidArgument, match="not both"):
        SFTStageConfig(warmup_steps=10, warmup_ratio=0.1)


@pytest.mark.parametrize("record, field", [
    ({"prompt": "q", "completion": ""}, "records[1].completion"),
    ({"prompt": 3, "completion": "a"}, "records[1].prompt"),
    ({"prompt": "q", "completions": "a"}, "records[1].completions"),
    ({"prompt": "q"}, "records[1].completion"),
    ({"messages": [], "prompt": "q"}, "records[1].messages"),
    ({"messages": [{"role": "user", "content": "q"}]}, "records[1].messages"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "a"}]}, "records[1].messages[1].role"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "user", "content": "a"}]}, "records[1].messages[1].role"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant"}]}, "records[1].messages[1]"),
    ("just text", "records[1]"),
])
def test_bad_records_are_refused_naming_the_record_and_key(record, field):
    with pytest.raises(InvalidArgument) as error:
        prepare_records([{"prompt": "q", "completion": "a"}, record])
    assert error.value.field == field


def test_bad_jsonl_lines_are_refused_naming_the_line_and_key(tmp_path):
    path = tmp_path / "sft.jsonl"
    good = {"id": "x", "prompt": "q", "completion": "a"}
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({"messages": [{"role": "user", "content": "q"},
                                                                         {"role": "system", "content": "a"}]}) + "\n")
    with pytest.raises(InvalidArgument, match=r"line 3: messages\[1\]\.role: the last message"):
        load_records(path)
    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(InvalidArgument, match="line 2: not valid JSON"):
        load_records(path)
    path.write_text(json.dumps(good) + "\n")
    assert load_records(path) == [good]


def test_a_model_of_another_kind_is_refused():
    with pytest.raises(InvalidArgument) as error:
        trainable(torch.nn.Linear(2, 2))
    assert error.value.field == "model"


# ------------------------------------------------------------------------------------------------ hooks


def test_on_step_gets_each_steps_metrics_and_should_stop_ends_training(tokenizer, records, tmp_path):
    seen: list[tuple[int, dict[str, float]]] = []
    checks = []

    def should_stop() -> bool:  # checked once after each step: true on the third
        checks.append(1)
        return len(checks) >= 3

    history = train_sft(qwen2_student(tokenizer), tokenizer, records, config(max_steps=20), tmp_path,
                        on_step=lambda step, values: seen.append((step, values)), should_stop=should_stop)
    assert history["stopped"] and history["steps"] == 3
    assert [step for step, _ in seen] == [1, 2, 3]
    for _, values in seen:
        assert {"loss", "learning_rate", "grad_norm", "tokens_per_second"} <= set(values)
        assert values["tokens_per_second"] > 0 and all(isinstance(v, float) for v in values.values())
    assert history["losses"] == [values["loss"] for _, values in seen]
    assert (tmp_path / "config.json").is_file()  # the model as trained so far is saved
