"""The engine tests' checkpoints and engine fixture, shared here (the trainer reads what the engine sampled)."""

from tests.engine.conftest import make_engine, teacher_dir, tokenizer  # noqa: F401
