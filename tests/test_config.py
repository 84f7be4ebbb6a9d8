"""Typed config: defaults < YAML < environment < flags; unknown keys and wrong types named."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from r1.config import env_overrides, field_paths, load_config, parse_override
from r1.errors import InvalidArgument
from services.common.config import ServerConfig, ServiceConfig


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Job:
    name: str = "job"
    steps: int = 10
    sampling: Sampling = field(default_factory=Sampling)


def test_defaults_then_yaml_then_env_then_flags(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("name: from-yaml\nsteps: 20\nsampling:\n  temperature: 0.6\n")
    config = load_config(Job, path, environ={"R1_STEPS": "30", "R1_SAMPLING__SEED": "7", "R1_OTHER": "x"},
                         overrides=["steps=40", "sampling.stop=[</answer>, END]"])
    assert config == Job(name="from-yaml", steps=40, sampling=Sampling(0.6, ("</answer>", "END"), 7))


def test_exponent_notation_is_a_number_even_where_yaml_reads_a_string(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("sampling:\n  temperature: 3e-3\n")  # YAML 1.1: a string, not a float
    assert load_config(Job, path).sampling.temperature == 0.003
    assert load_config(Job, overrides=["sampling.temperature=2E+1"]).sampling.temperature == 20.0


def test_base_overrides_sit_under_the_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("server:\n  host: 127.0.0.1\n")
    config = load_config(ServiceConfig, path, base_overrides=["server.port=50052", "server.host=0.0.0.0"],
                         environ={})
    assert (config.server.host, config.server.port) == ("127.0.0.1", 50052)


@pytest.mark.parametrize("overrides, field_name, message", [
    (["stpes=3"], "stpes", "unknown field; valid fields here: name, steps, sampling"),
    (["sampling.temprature=0.5"], "sampling.temprature", "unknown field"),
    (["steps=many"], "steps", "expected an integer, got 'many'"),
    (["steps=true"], "steps", "expected an integer"),
    (["sampling.temperature=hot"], "sampling.temperature", "expected a number"),
    (["sampling.stop=5"], "sampling.stop", "expected a list"),
    (["sampling=3"], "sampling", "expected a section"),
])
def test_bad_values_name_the_field(overrides, field_name, message):
    with pytest.raises(InvalidArgument) as e:
        load_config(Job, overrides=overrides, environ={})
    assert e.value.field == field_name
    assert message in e.value.message


def test_an_override_must_be_key_equals_value():
    with pytest.raises(InvalidArgument, match="key=value"):
        parse_override("steps")
    assert parse_override("a.b= 3 ") == ("a.b", 3)
    assert parse_override("name=") == ("name", "")


def test_missing_or_malformed_files_are_clear_errors(tmp_path):
    with pytest.raises(InvalidArgument, match="file not found"):
        load_config(Job, tmp_path / "nope.yaml", environ={})
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(InvalidArgument, match="mapping at the top level"):
        load_config(Job, tmp_path / "list.yaml", environ={})
    (tmp_path / "bad.yaml").write_text("steps: [1,\n")
    with pytest.raises(InvalidArgument, match="not valid YAML"):
        load_config(Job, tmp_path / "bad.yaml", environ={})


def test_env_keys_follow_the_double_underscore_convention():
    assert "server.tls.cert_file" in field_paths(ServiceConfig)
    pairs = env_overrides(ServiceConfig, {"R1_SERVER__TLS__CERT_FILE": "a.pem", "R1_SERVER__PORT": "1"})
    assert pairs == [("server.port", 1), ("server.tls.cert_file", "a.pem")]


@pytest.mark.parametrize("kwargs, field_name", [
    (dict(port=70000), "server.port"),
    (dict(metrics_port=-2), "server.metrics_port"),
    (dict(grace_seconds=-1), "server.grace_seconds"),
    (dict(auth_token_file="/nonexistent/token"), "server.auth_token_file"),
])
def test_server_config_checks_name_the_field(kwargs, field_name):
    with pytest.raises(InvalidArgument) as e:
        config = ServerConfig(**kwargs)
        config.check()
        config.token()
    assert e.value.field == field_name


def test_tls_needs_cert_and_key_together(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(InvalidArgument, match="set together"):
        load_config(ServiceConfig, overrides=[f"server.tls.cert_file={cert}"], environ={}).server.check()
