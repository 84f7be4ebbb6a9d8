"""Real generation services on 127.0.0.1 (in-process server threads) over tiny checkpoints built here.

The checkpoints are the engine tests' (`tests/engine/conftest.py`): a random tiny DeepSeek-V3 teacher and one
whose main model and MTP module learnt a repeating pattern, so speculative drafts get accepted. torch runs
single-threaded: the tests share two cores with other work, where intra-op threads only contend.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc
import pytest
import torch

from r1.engine.torch_engine import TorchEngineConfig
from services.common.harness import ServerThread
from services.generation.app import Config, EngineSection, build
from services.generation.client import GenerationClient
from services.protogen.generation.v1 import generation_pb2_grpc
from tests.engine.conftest import patterned_teacher_dir, teacher_dir, tokenizer  # noqa: F401 (fixtures)

CONTEXT = 256


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@contextlib.contextmanager
def running_generation(model, max_update_bytes: int = 0, **engine) -> Iterator[ServerThread]:
    settings = dict(model=str(model), max_num_seqs=32, max_context_tokens=CONTEXT, threads=1) | engine
    config = Config(engine=EngineSection(torch=TorchEngineConfig(**settings)), max_update_bytes=max_update_bytes)
    with ServerThread(build(config)) as server:
        server.run(server.server.wait_ready(120), timeout=130)
        yield server


@pytest.fixture(scope="module")
def server(teacher_dir) -> Iterator[ServerThread]:  # noqa: F811
    with running_generation(teacher_dir) as server:
        yield server


@pytest.fixture
def client(server: ServerThread) -> Iterator[GenerationClient]:
    with GenerationClient(server.target, timeout=120) as client:
        yield client


@pytest.fixture
def stub(server: ServerThread) -> Iterator[generation_pb2_grpc.GenerationStub]:
    with grpc.insecure_channel(server.target) as channel:
        yield generation_pb2_grpc.GenerationStub(channel)
