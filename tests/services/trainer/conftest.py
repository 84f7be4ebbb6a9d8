from tests.rl.conftest import bilingual_teacher_dir  # noqa: F401
