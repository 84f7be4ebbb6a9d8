"""SIGTERM on a real server process: in-flight calls finish, new ones are refused, the process exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from services.common.local import health_status
from services.protogen.verifier.v1 import verifier_pb2, verifier_pb2_grpc

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).with_name("fixture_service.py")


def start(tmp_path: Path, mode: str = "0") -> tuple[subprocess.Popen, str]:
    port_file = tmp_path / "ports.json"
    process = subprocess.Popen([sys.executable, str(SCRIPT), str(port_file), mode], cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while not port_file.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "server did not bind"
        time.sleep(0.05)
    return process, f"127.0.0.1:{json.loads(port_file.read_text())['port']}"


def call(target: str, item_id: str) -> verifier_pb2.VerifyResult:
    with grpc.insecure_channel(target) as channel:
        item = verifier_pb2.VerifyItem(id=item_id, math=verifier_pb2.MathItem(reference="1"))
        return verifier_pb2_grpc.VerifierStub(channel).Verify(verifier_pb2.VerifyRequest(item=item), timeout=20)


def test_sigterm_drains_in_flight_calls_refuses_new_ones_and_exits_zero(tmp_path):
    process, target = start(tmp_path)
    try:
        deadline = time.monotonic() + 30
        while health_status(target) != "SERVING":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        results: dict = {}

        def in_flight():
            try:
                results["slow"] = call(target, "sleep:2.5").id
            except grpc.RpcError as e:
                results["slow"] = e.code()

        caller = threading.Thread(target=in_flight)
        caller.start()
        time.sleep(0.7)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(grpc.RpcError) as refused:
            call(target, "late")
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        caller.join(20)
        assert results == {"slow": "sleep:2.5"}
        output, _ = process.communicate(timeout=20)
        assert process.returncode == 0, output
        assert "draining" in output and "stopped" in output
    finally:
        if process.poll() is None:
            process.kill()


def test_a_service_that_fails_to_start_never_serves_and_exits_nonzero(tmp_path):
    process, target = start(tmp_path, "fail")
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "failed to start" in output and "model file is corrupt" in output
