"""`r1 up`: the four services as local processes, health SERVING, a state file, a clean drain on SIGTERM;
bad configs refused with the field named."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from r1.errors import InvalidArgument
from services.common.local import health_status
from services.up import load_up_config
from tests.engine.conftest import teacher_dir, tokenizer  # noqa: F401 (fixtures)


@pytest.mark.timeout(300)
def test_up_starts_all_four_writes_its_state_and_drains_on_sigterm(tmp_path, teacher_dir):  # noqa: F811
    state_file = tmp_path / "state.json"
    ports = [f"{name}.{kind}=0" for name in ("generation", "verifier", "trainer", "exporter")
             for kind in ("port", "metrics_port")]
    argv = [sys.executable, "-m", "r1.cli", "up", "--state-file", str(state_file),
            "--set", f"workdir={tmp_path / 'up'}", "--set", f"generation_model={teacher_dir}",
            "--set", f"trainer.set=[trainer.jobs_root={tmp_path / 'jobs'}]",
            *[x for item in ports for x in ("--set", item)]]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 240
        while not state_file.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        state = json.loads(state_file.read_text())
        assert set(state) == {"generation", "verifier", "trainer", "exporter"}
        for where in state.values():
            assert health_status(where["target"]) == "SERVING"
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    assert out.count("SERVING") == 4 and "'generation': 0, 'verifier': 0, 'trainer': 0, 'exporter': 0" in out


@pytest.mark.parametrize("overrides, field", [
    (["verifier.port=70000"], "verifier.port"),
    (["generation.config=/nonexistent.yaml"], "generation.config"),
    (["trainer.set=[no-equals-sign]"], "trainer.set"),
    (["generation.enabled=false", "verifier.enabled=false", "trainer.enabled=false", "exporter.enabled=false"],
     "services"),
    (["verifer.port=1"], "verifer"),
])
def test_bad_configs_name_the_field(overrides, field):
    with pytest.raises(InvalidArgument) as caught:
        load_up_config(None, overrides)
    assert caught.value.field.startswith(field)
