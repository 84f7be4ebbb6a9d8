"""lm-eval's "r1" model against a real generation service on 127.0.0.1, fully offline.

The served checkpoint is the engine tests' patterned teacher: greedy decoding continues the cycle
B C D E F G (one token each), so every expected answer here is worked out by hand from the prompt, e.g.
"BCDEFGBC" continues "DEFGBCDE..." and stopping at "B" leaves "DEFG". The service requires a bearer token,
so every call also shows that the token reaches it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import datasets
import huggingface_hub
import lm_eval
import pytest
from lm_eval.api.instance import Instance
from lm_eval.api.model import CacheHook
from lm_eval.api.registry import get_model, model_registry
from lm_eval.tasks import TaskManager

from r1.engine.torch_engine import TorchEngineConfig
from r1.engine.types import MAX_STOP_STRINGS
from r1.errors import InvalidArgument, Unavailable
from r1.model.tokenizer import BOS_TOKEN, R1_ZERO_SYSTEM
from services.common.config import ServerConfig
from services.common.harness import ServerThread
from services.evaluator.lm_eval_model import GenerationServiceLM, main
from services.generation.app import Config, EngineSection, build
from tests.engine.conftest import patterned_teacher_dir, tokenizer  # noqa: F401 (fixtures)
from tests.services.generation.conftest import one_torch_thread  # noqa: F401 (fixture)

TOKEN = "s3cret"
TASK = "r1_cycle"
# (prompt, answer): the first two are what the model continues with, up to the stop string "B"; the third
# is wrong on purpose, so exact_match is 2/3 and not a vacuous 0 or 1.
DOCS = [("BCDEFGBC", "DEFG"), ("EFGB", "CDEFG"), ("GBCD", "XYZ")]


@pytest.fixture(scope="module")
def server(patterned_teacher_dir) -> Iterator[ServerThread]:  # noqa: F811
    engine = TorchEngineConfig(model=str(patterned_teacher_dir), max_num_seqs=32, max_context_tokens=256,
                               threads=1)
    listen = ServerConfig(host="127.0.0.1", port=0, metrics_host="127.0.0.1", metrics_port=-1, grace_seconds=5,
                          auth_token=TOKEN)
    with ServerThread(build(Config(engine=EngineSection(torch=engine))), listen) as running:
        running.run(running.server.wait_ready(120), timeout=130)
        yield running


@pytest.fixture(scope="module")
def lm(server) -> Iterator[GenerationServiceLM]:
    model = GenerationServiceLM.create_from_arg_string(f"target={server.target},token={TOKEN},timeout=60")
    yield model
    model.close()


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No hub: the environment variables, and the flags datasets and huggingface_hub read them into."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.delenv("R1_TOKEN", raising=False)


def requests(*args: tuple[str, dict]) -> list[Instance]:
    return [Instance("generate_until", {}, arguments, idx=0) for arguments in args]


# ------------------------------------------------------------------------------------------ model_args


def test_model_args_come_from_lm_evals_argument_string(server):
    model = GenerationServiceLM.create_from_arg_string(
        f"target={server.target},token={TOKEN},timeout=30,concurrency=3,max_gen_toks=7,seed=5",
        {"batch_size": 1, "max_batch_size": None, "device": "cpu"})  # what simple_evaluate adds: ignored
    try:
        assert (model.concurrency, model.max_gen_toks, model.seed) == (3, 7, 5)
        assert model._client.timeout == 30.0
        assert model.model_info.architecture == "DeepseekV3ForCausalLM"
        assert model.get_model_info()["model_max_context_tokens"] == 256
    finally:
        model.close()


def test_the_model_is_registered_as_r1_beside_lm_evals_own():
    assert get_model("r1") is GenerationServiceLM
    assert "hf" in model_registry and "vllm" in model_registry  # registering first does not hide them


def test_a_missing_target_or_an_unknown_argument_is_refused_with_what_to_pass():
    with pytest.raises(ValueError, match="target=host:port"):
        GenerationServiceLM.create_from_arg_string("token=x")
    with pytest.raises(ValueError, match="unknown model_args pretrained; valid: target, token"):
        GenerationServiceLM.create_from_arg_string("target=127.0.0.1:1,pretrained=gpt2")
    with pytest.raises(ValueError, match="concurrency must be >= 1"):
        GenerationServiceLM.create_from_arg_string("target=127.0.0.1:1,concurrency=0")


def test_the_token_comes_from_the_argument_a_file_or_r1_token(server, tmp_path, monkeypatch):
    with pytest.raises(Unavailable, match="UNAUTHENTICATED"):
        GenerationServiceLM(target=server.target)
    (tmp_path / "token").write_text(TOKEN + "\n")
    GenerationServiceLM(target=server.target, token_file=str(tmp_path / "token")).close()
    monkeypatch.setenv("R1_TOKEN", TOKEN)
    GenerationServiceLM(target=server.target).close()


# ------------------------------------------------------------------------------------ generation kwargs


def test_generation_kwargs_map_to_sampling_params(lm):
    sampling, until = lm.sampling({"until": "\n\n", "do_sample": False, "temperature": 0.7})
    assert (sampling.temperature, sampling.stop, until, sampling.max_tokens) == (0.0, ("\n\n",), ("\n\n",), 256)
    sampling, _ = lm.sampling({"do_sample": True, "temperature": 0.6, "top_p": 0.95, "max_new_tokens": 9,
                               "seed": 3})
    assert (sampling.temperature, sampling.top_p, sampling.max_tokens, sampling.seed) == (0.6, 0.95, 9, 3)
    sampling, _ = lm.sampling({})  # lm-eval's default: greedy, until nothing
    assert (sampling.greedy, sampling.stop, sampling.seed) == (True, (), None)


def test_more_stop_strings_than_the_server_takes_are_applied_here(lm):
    stops = [f"<{i}>" for i in range(MAX_STOP_STRINGS)] + ["E"]
    sampling, until = lm.sampling({"until": stops})
    assert sampling.stop == tuple(stops[:MAX_STOP_STRINGS]) and until == tuple(stops)
    [text] = lm.generate_until(requests(("BCDEFGBC", {"until": stops, "max_gen_toks": 6})))
    assert text == "D"  # DEFGBC: the server never saw "E"; it is cut here


def test_unknown_or_bad_generation_kwargs_fail_before_anything_is_sent(lm):
    with pytest.raises(ValueError, match="generation kwargs num_beams are not supported"):
        lm.generate_until(requests(("BCD", {"until": ["B"]}), ("BCD", {"num_beams": 4})))
    with pytest.raises(ValueError, match="sampling.top_p: must be in"):
        lm.sampling({"do_sample": True, "temperature": 1.0, "top_p": 1.5})


# ------------------------------------------------------------------------------- against the service


def test_generate_until_stops_at_the_earliest_stop_string_and_keeps_the_order(server):
    model = GenerationServiceLM(target=server.target, token=TOKEN, concurrency=3, max_gen_toks=8)
    try:
        texts = model.generate_until(requests(
            ("BCDEFGBC", {"until": ["B"]}),          # DEFGBCDE -> DEFG
            ("BCD", {"until": ["G", "F"]}),           # EFGBCDEF -> E (F comes before G)
            ("EFGB", {"until": "\n"}),               # no stop: max_gen_toks tokens
            ("GBCDEFG", {"max_gen_toks": 3}),        # BCD
            ("BCDEFGBC", {"until": ["B"]}),          # the same as the first
        ))
    finally:
        model.close()
    assert texts == ["DEFG", "E", "CDEFGBCD", "BCD", "DEFG"]


def test_identical_requests_are_one_call_with_n_samples(lm, monkeypatch):
    calls = []
    generate = lm._client.generate
    monkeypatch.setattr(lm._client, "generate",
                        lambda prompt, **kw: calls.append((prompt, kw)) or generate(prompt, **kw))
    sampled = {"until": ["B"], "do_sample": True, "temperature": 1.0, "seed": 11, "max_gen_toks": 6}
    greedy = {"until": ["B"], "max_gen_toks": 6}
    texts = lm.generate_until(requests(("BCD", sampled), ("EFGB", greedy), ("BCD", sampled), ("BCD", sampled),
                                       ("EFGB", greedy)))
    assert sorted((prompt, kw["n"], kw["sampling"].seed) for prompt, kw in calls) == [("BCD", 3, 11),
                                                                                      ("EFGB", 1, None)]
    assert texts[1] == texts[4] == "CDEFG" and len(texts) == 5


def test_results_go_to_lm_evals_cache_hook(lm):
    saved = []

    class Hook:
        def add_partial(self, attr, req, res):
            saved.append((attr, req, res))

    lm.set_cache_hook(Hook())
    try:
        lm.generate_until(requests(("BCDEFGBC", {"until": ["B"]})))
    finally:
        lm.set_cache_hook(CacheHook(None))
    assert saved == [("generate_until", ("BCDEFGBC", {"until": ["B"]}), "DEFG")]


def test_think_end_token_keeps_the_answer_and_applies_stops_to_it_only(server):
    model = GenerationServiceLM(target=server.target, token=TOKEN, think_end_token="E")
    try:
        # DEFGBCDEFGBC: the last "E" ends the "reasoning"; the answer FGBC is then cut at "C" (which the server,
        # told only of EOS, did not stop at inside the reasoning)
        assert model.generate_until(requests(("BC", {"until": ["C"], "max_gen_toks": 12}))) == ["FGB"]
    finally:
        model.close()


# ------------------------------------------------------------------------------------- chat templates


def test_a_chat_template_needs_the_tokenizer_and_then_bos_is_not_doubled(lm, server,
                                                                         patterned_teacher_dir):  # noqa: F811
    with pytest.raises(ValueError, match="tokenizer=<checkpoint directory>"):
        lm.apply_chat_template([{"role": "user", "content": "hi"}])
    model = GenerationServiceLM(target=server.target, token=TOKEN, tokenizer=str(patterned_teacher_dir))
    try:
        prompt = model.apply_chat_template([{"role": "user", "content": "BCD"}])
        assert prompt == f"{BOS_TOKEN}{R1_ZERO_SYSTEM}\nUser: BCD\nAssistant: <think>"
        assert model.chat_template(True) == model._tokenizer.chat_template
        [job] = model._jobs([(prompt, {})])
        assert job.add_special_tokens is False
        [job] = model._jobs([("BCD", {})])
        assert job.add_special_tokens is True
        with pytest.raises(ValueError, match="named templates"):
            model.chat_template("tool_use")
    finally:
        model.close()


# ------------------------------------------------------------------------------- lm-eval end to end


def write_task(directory: Path, name: str = TASK, output_type: str = "generate_until") -> Path:
    data = directory / f"{name}.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "answer": a}) + "\n" for p, a in DOCS))
    if output_type == "generate_until":
        specific = ("doc_to_target: \"{{answer}}\"\n"
                    "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n"
                    "generation_kwargs:\n  until: [\"B\"]\n  do_sample: false\n  max_gen_toks: 8\n")
    else:
        specific = ("doc_to_choice: [\"DEFG\", \"XYZ\"]\ndoc_to_target: 0\n"
                    "metric_list:\n  - metric: acc\n")
    (directory / f"{name}.yaml").write_text(
        f"task: {name}\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n  cache_dir: {directory / 'hf-cache'}\n"
        f"test_split: test\noutput_type: {output_type}\n"
        "doc_to_text: \"{{prompt}}\"\n" + specific + "metadata:\n  version: 1.0\n")
    return directory


def tasks(directory: Path) -> TaskManager:
    """Only the tasks in `directory`: indexing lm-eval's thousands of built-in task files takes seconds."""
    return TaskManager(include_path=str(directory), include_defaults=False)


def test_lm_eval_scores_a_local_generate_until_task_through_the_service(server, tmp_path):
    results = lm_eval.simple_evaluate(model="r1", model_args=f"target={server.target},token={TOKEN}", tasks=[TASK],
                                      task_manager=tasks(write_task(tmp_path)),
                                      log_samples=True)
    assert results["results"][TASK]["exact_match,none"] == pytest.approx(2 / 3)
    assert results["n-samples"][TASK]["effective"] == len(DOCS)
    assert sorted(s["filtered_resps"][0] for s in results["samples"][TASK]) == ["CDEFG", "DEFG", "EFG"]
    assert results["config"]["model_architecture"] == "DeepseekV3ForCausalLM"


def test_lm_evals_command_line_runs_it_too(server, tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["--model", "r1", "--model_args", f"target={server.target},token={TOKEN}", "--tasks", TASK,
                   "--include_path", str(write_task(tmp_path)), "--output_path", str(out), "--limit", "2"])
    assert status == 0
    [path] = out.rglob("results_*.json")
    results = json.loads(path.read_text())
    assert results["results"][TASK]["exact_match,none"] == 1.0  # the first two docs: both right
    assert results["n-samples"][TASK]["effective"] == 2
    assert TASK in capsys.readouterr().out  # lm-eval's table


def test_a_loglikelihood_task_fails_saying_why_and_what_to_use(server, tmp_path):
    with pytest.raises(NotImplementedError, match="never of prompt tokens.*use a generate_until task"):
        lm_eval.simple_evaluate(model="r1", model_args=f"target={server.target},token={TOKEN}", tasks=["r1_choice"],
                                task_manager=tasks(write_task(tmp_path, "r1_choice", "multiple_choice")))


def test_apply_chat_template_renders_prompts_with_the_served_models_template(server, tmp_path,
                                                                              patterned_teacher_dir):  # noqa: F811
    results = lm_eval.simple_evaluate(
        model="r1", model_args=f"target={server.target},token={TOKEN},tokenizer={patterned_teacher_dir}",
        tasks=[TASK], task_manager=tasks(write_task(tmp_path)), apply_chat_template=True, log_samples=True,
        limit=1)
    [sample] = results["samples"][TASK]
    [(prompt, _)] = sample["arguments"]
    assert prompt == f"{BOS_TOKEN}{R1_ZERO_SYSTEM}\nUser: BCDEFGBC\nAssistant: <think>"


def test_a_request_the_service_refuses_fails_the_run_naming_it(lm):
    too_long = "BCDEFG" * 50  # 300 tokens and BOS: more than the 256-token context window
    with pytest.raises(InvalidArgument, match="the context window is 256") as caught:
        lm.generate_until(requests(("BCD", {"max_gen_toks": 2}), (too_long, {"max_gen_toks": 2})))
    assert any("lm-eval request 1" in note for note in caught.value.__notes__)
