"""The engine tests' checkpoints and engine fixture, shared here (the trainer reads what the engine sampled),
and a random teacher whose babble the language-consistency reward can tell apart."""

import pytest

from tests.engine.conftest import make_engine, teacher_dir, tokenizer  # noqa: F401


@pytest.fixture(scope="session")
def bilingual_teacher_dir(tmp_path_factory):
    """A random teacher answers nothing right. Its tokenizer knows Chinese as well as English, so its babble
    mixes the two scripts and the language-consistency term (R1's reasoning-RL reward) varies within a group:
    the advantages are not all zero and the update has a direction."""
    from r1.model.checkpoint import save_pretrained
    from r1.model.tokenizer import default_corpus, train_tokenizer
    from tests.engine.conftest import teacher

    tokenizer = train_tokenizer(default_corpus() + ["你好 世界 数学 问题 答案 我们 计算 结果"] * 50, vocab_size=420)
    return save_pretrained(teacher(tokenizer, seed=3), tmp_path_factory.mktemp("bilingual"), tokenizer=tokenizer)
