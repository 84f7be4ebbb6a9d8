"""The GRPO workflow's mechanics on a tiny teacher, in-process: rollouts from the torch engine, rewards from the
verifier, a policy update, the new weights pushed to the engine as version + 1, metrics per step. Whether
it learns (R1-Zero in miniature) is the trainer issue's to show; this pins the plumbing."""

from __future__ import annotations

import pytest
import torch

from r1.data.synthetic import split
from r1.engine.torch_engine import TorchEngine, TorchEngineConfig
from r1.model.checkpoint import load_pretrained
from r1.model.tokenizer import load_tokenizer
from r1.rewards.spec import RewardSpec
from r1.rewards.verifier import Verifier, VerifierConfig
from r1.rl.grpo import EvalConfig, GRPOConfig, LocalGeneration, train


# A random teacher answers nothing right. Its tokenizer knows Chinese as well as English, so its babble mixes
# the two scripts and the language-consistency term (R1's reasoning-RL reward) varies within a group: the
# advantages are not all zero and the update has a direction.
SPEC = RewardSpec(accuracy=1.0, format=1.0, language=1.0, target_language="en")


@pytest.mark.parametrize("loss", ["grpo", "dapo", "dr_grpo"])
def test_a_grpo_step_updates_the_policy_and_pushes_it_to_the_engine(bilingual_teacher_dir, loss):
    teacher_dir = bilingual_teacher_dir
    train_set, heldout = split(["word"], 20, 4, seed=0, difficulty=1)
    model = load_pretrained(teacher_dir)
    reference = load_pretrained(teacher_dir).eval() if loss == "grpo" else None
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    generation = LocalGeneration(TorchEngine(TorchEngineConfig(model=str(teacher_dir), threads=1)))
    config = GRPOConfig(steps=2, prompts_per_step=2, group_size=4, max_tokens=16, lr=1e-2, temperature=1.5, loss=loss,
                        beta=0.04 if loss == "grpo" else 0.0)
    steps = []
    try:
        with Verifier(VerifierConfig(workers=1, math_workers=1)) as verifier:
            history = train(model, load_tokenizer(str(teacher_dir)), generation, verifier, train_set, heldout,
                            config, EvalConfig(problems=4, k=2, max_tokens=8), ref_model=reference,
                            on_step=steps.append, spec=SPEC)
        served = generation.engine.loaded.parameters["lm_head.weight"]
        assert generation.engine.info.weight_version == 2
        assert torch.equal(served, model.lm_head.weight.detach())  # the engine serves the trained policy
    finally:
        generation.close()
    assert [m.step for m in steps] == [1, 2] and [m.version for m in steps] == [1, 2]
    assert all(0 <= m.accuracy <= 1 and m.length_max <= 16 and set(m.seconds) == {"generation", "verify", "train",
                                                                                   "sync"} for m in steps)
    assert any(m.reward_std > 0 for m in steps)
    assert any(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters())
    assert 0 <= history["pass_at_1_before"] <= 1 and 0 <= history["pass_at_1_after"] <= 1
    assert [step for step, _ in history["evaluations"]] == [0, 2]


@pytest.mark.timeout(600)
def test_the_reward_rises_under_grpo(bilingual_teacher_dir):
    """The shorter version of R1-Zero in miniature: the same loop, on a teacher small enough for the suite,
    learns what its reward asks for (here the language-consistency term: answer in English, not Chinese)."""
    train_set, _ = split(["word"], 64, 0, seed=0, difficulty=1)
    model = load_pretrained(bilingual_teacher_dir)
    generation = LocalGeneration(TorchEngine(TorchEngineConfig(model=str(bilingual_teacher_dir), threads=1)))
    config = GRPOConfig(steps=24, prompts_per_step=4, group_size=8, max_tokens=16, lr=3e-3, temperature=1.0,
                        loss="dapo", seed=0)
    steps = []
    try:
        with Verifier(VerifierConfig(workers=1, math_workers=1)) as verifier:
            train(model, load_tokenizer(str(bilingual_teacher_dir)), generation, verifier, train_set, [], config,
                  EvalConfig(problems=0), on_step=steps.append, spec=SPEC)
    finally:
        generation.close()
    first = sum(m.reward_mean for m in steps[:4]) / 4
    last = sum(m.reward_mean for m in steps[-4:]) / 4
    assert last > first + 0.1, [round(m.reward_mean, 3) for m in steps]


class RecordingGeneration:
    """The in-process backend, noting the weight version it serves at each generate call."""

    def __init__(self, inner: LocalGeneration):
        self.inner, self.served_at_generate = inner, []

    def generate(self, prompt_ids, **kwargs):
        self.served_at_generate.append(self.inner.engine.info.weight_version)
        return self.inner.generate(prompt_ids, **kwargs)

    def update_weights(self, version, tensors):
        return self.inner.update_weights(version, tensors)

    def model_info(self):
        return self.inner.model_info()


def async_run(teacher_dir, checkpoints=None, should_stop=lambda: False):
    """Three async GRPO steps of two prompts (one generate call each, one at a time): (model, backend, metrics)."""
    train_set, _ = split(["word"], 20, 0, seed=0, difficulty=1)
    model = load_pretrained(teacher_dir)
    generation = RecordingGeneration(LocalGeneration(TorchEngine(TorchEngineConfig(model=str(teacher_dir),
                                                                                   threads=1))))
    config = GRPOConfig(steps=3, prompts_per_step=2, group_size=4, max_tokens=12, lr=1e-2, temperature=1.5,
                        dynamic_sampling=False, rollout_concurrency=1, async_rollouts=True)
    steps = []
    try:
        with Verifier(VerifierConfig(workers=1, math_workers=1)) as verifier:
            train(model, load_tokenizer(str(teacher_dir)), generation, verifier, train_set, [], config,
                  EvalConfig(problems=0), on_step=steps.append, spec=SPEC, checkpoints=checkpoints,
                  should_stop=should_stop)
        assert torch.equal(generation.inner.engine.loaded.parameters["lm_head.weight"], model.lm_head.weight.detach())
    finally:
        generation.inner.close()
    return model, generation, steps


def test_async_rollouts_sample_each_step_one_update_behind_and_repeat_exactly(bilingual_teacher_dir):
    model, generation, steps = async_run(bilingual_teacher_dir)
    # step 1 is sampled before any update; step 2 while step 1 trains (version 0 served); step 3 while step 2
    # trains (version 1); the last step drains the pipeline (nothing is sampled for a step 4)
    assert generation.served_at_generate == [0, 0, 0, 0, 1, 1]
    assert [m.version for m in steps] == [1, 2, 3]
    assert all("rollout_wait" in m.seconds for m in steps)
    assert all(m.values()["step_seconds"] == m.wall_seconds > 0 for m in steps)
    assert steps[0].clip_fraction == 0  # on-policy: the ratio is 1
    again, _, _ = async_run(bilingual_teacher_dir)
    assert all(torch.equal(p, q) for p, q in zip(model.state_dict().values(), again.state_dict().values()))


def test_a_stopped_async_run_gives_the_prefetched_prompts_back(bilingual_teacher_dir, tmp_path):
    from r1.rl.checkpoint import latest_checkpoint, load_state

    _, generation, steps = async_run(bilingual_teacher_dir, checkpoints=tmp_path, should_stop=lambda: True)
    assert len(steps) == 1 and generation.served_at_generate == [0, 0, 0, 0]  # step 2 was sampled, then dropped
    state = load_state(latest_checkpoint(tmp_path))
    assert state.step == 1  # and the cursor is past step 1's two prompts only:
    assert state.cursor == {"epoch": 0, "position": 2, "zero_variance": [], "skipped": 0}
