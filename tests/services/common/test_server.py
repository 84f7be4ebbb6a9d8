"""The bootstrap against a real server on 127.0.0.1 port 0: health, reflection, metrics, auth, TLS, errors."""

from __future__ import annotations

import threading
import time
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from prometheus_client.parser import text_string_to_metric_families

from services.common.config import ServerConfig, TlsConfig
from services.common.harness import ServerThread
from services.protogen.verifier.v1 import verifier_pb2, verifier_pb2_grpc
from tests.services.common import certs
from tests.services.common.fixture_service import SERVICE_NAME, build

MATH = verifier_pb2.MathItem(reference="4")


def local_config(**overrides) -> ServerConfig:
    base = dict(host="127.0.0.1", port=0, metrics_host="127.0.0.1", metrics_port=0, grace_seconds=5)
    return ServerConfig(**{**base, **overrides})


def verify(channel, item_id: str = "ok", metadata=None, **item) -> verifier_pb2.VerifyResult:
    item = verifier_pb2.VerifyItem(id=item_id, response="\\boxed{4}", **({"math": MATH} | item))
    return verifier_pb2_grpc.VerifierStub(channel).Verify(verifier_pb2.VerifyRequest(item=item),
                                                           metadata=metadata, timeout=10)


def health(channel, service: str = "") -> str:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def scrape(metrics_port: int, until=lambda samples: True, timeout: float = 5.0) -> dict[str, dict[tuple, float]]:
    """Samples from the live endpoint, re-read until `until(samples)` holds: the server records a call
    after it has sent the call's status, so a scrape right after the reply may be a moment early."""
    deadline = time.monotonic() + timeout
    while not until(samples := _scrape_once(metrics_port)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return samples


def _scrape_once(metrics_port: int) -> dict[str, dict[tuple, float]]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


@pytest.fixture
def server():
    with ServerThread(build(), local_config()) as running:
        running.run(running.server.wait_ready(10))
        yield running


def test_health_turns_serving_only_after_the_service_is_ready():
    with ServerThread(build(start_delay=1.5), local_config()) as running, \
            grpc.insecure_channel(running.target) as channel:
        assert health(channel) == "NOT_SERVING"
        assert health(channel, SERVICE_NAME) == "NOT_SERVING"
        with pytest.raises(grpc.RpcError) as refused:  # the readiness gate answers while loading
            verify(channel)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "not ready" in refused.value.details()
        running.run(running.server.wait_ready(10))
        assert health(channel) == "SERVING"
        assert health(channel, SERVICE_NAME) == "SERVING"
        assert verify(channel).verdict == verifier_pb2.VERDICT_CORRECT


def test_health_of_an_unknown_service_is_not_found(server):
    with grpc.insecure_channel(server.target) as channel, pytest.raises(grpc.RpcError) as e:
        health(channel, "r1.nope.v1.Nope")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_service_health_and_reflection(server):
    with grpc.insecure_channel(server.target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {SERVICE_NAME, "grpc.health.v1.Health"} <= services
        described = database.FindFileContainingSymbol(SERVICE_NAME)
        assert "Verifier" in [s.name for s in described.service]


def test_metrics_count_calls_by_method_and_code(server):
    with grpc.insecure_channel(server.target) as channel:
        verify(channel)
        verify(channel)
        with pytest.raises(grpc.RpcError):
            verify(channel, "raise:NotFound")
    key = lambda code: (("code", code), ("method", "Verify"), ("service", SERVICE_NAME))  # noqa: E731
    samples = scrape(server.metrics_port, lambda s: key("NOT_FOUND") in s.get("r1_grpc_requests_total", {}))
    counts = samples["r1_grpc_requests_total"]
    assert counts[key("OK")] == 2
    assert counts[key("NOT_FOUND")] == 1
    latency = samples["r1_grpc_request_duration_seconds_count"]
    assert latency[(("method", "Verify"), ("service", SERVICE_NAME))] == 3
    assert samples["r1_grpc_requests_in_flight"][(("method", "Verify"), ("service", SERVICE_NAME))] == 0
    assert samples["r1_service_ready"][(("service", SERVICE_NAME),)] == 1


def test_streaming_calls_are_counted_and_map_errors_mid_stream(server):
    items = [verifier_pb2.VerifyItem(id="a", math=MATH), verifier_pb2.VerifyItem(id="b")]  # b has no kind
    with grpc.insecure_channel(server.target) as channel:
        stream = verifier_pb2_grpc.VerifierStub(channel).VerifyBatch(
            verifier_pb2.VerifyBatchRequest(items=items), timeout=10)
        first = next(stream)
        assert (first.index, first.id) == (0, "a")
        with pytest.raises(grpc.RpcError) as e:
            next(stream)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "items[1].kind" in e.value.details()
    key = (("code", "INVALID_ARGUMENT"), ("method", "VerifyBatch"), ("service", SERVICE_NAME))
    counts = scrape(server.metrics_port, lambda s: key in s.get("r1_grpc_requests_total", {}))
    assert counts["r1_grpc_requests_total"][key] == 1


def test_a_malformed_request_gets_invalid_argument_naming_the_field(server):
    with grpc.insecure_channel(server.target) as channel:
        with pytest.raises(grpc.RpcError) as e:
            verifier_pb2_grpc.VerifierStub(channel).Verify(
                verifier_pb2.VerifyRequest(item=verifier_pb2.VerifyItem(id="no-kind")), timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.value.details().startswith("item.kind: must be set to one of: math, choice, code")
        assert verify(channel).verdict == verifier_pb2.VERDICT_CORRECT  # and the server keeps serving


@pytest.mark.parametrize("error, code", [
    ("NotFound", grpc.StatusCode.NOT_FOUND),
    ("ResourceExhausted", grpc.StatusCode.RESOURCE_EXHAUSTED),
    ("DeadlineExceeded", grpc.StatusCode.DEADLINE_EXCEEDED),
    ("FailedPrecondition", grpc.StatusCode.FAILED_PRECONDITION),
    ("Unavailable", grpc.StatusCode.UNAVAILABLE),
])
def test_library_errors_map_to_status_codes(server, error, code):
    with grpc.insecure_channel(server.target) as channel, pytest.raises(grpc.RpcError) as e:
        verify(channel, f"raise:{error}")
    assert e.value.code() == code
    assert e.value.details() == "item.id" or "told to" in e.value.details()


def test_an_unexpected_exception_is_internal_and_does_not_leak_its_message(server):
    with grpc.insecure_channel(server.target) as channel, pytest.raises(grpc.RpcError) as e:
        verify(channel, "raise:bug")
    assert e.value.code() == grpc.StatusCode.INTERNAL
    assert "RuntimeError" in e.value.details() and "secret" not in e.value.details()


def test_oversized_messages_are_refused():
    with ServerThread(build(), local_config(max_message_bytes=1024)) as running, \
            grpc.insecure_channel(running.target) as channel:
        running.run(running.server.wait_ready(10))
        with pytest.raises(grpc.RpcError) as e:
            verify(channel, "x" * 4096)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert verify(channel).verdict == verifier_pb2.VERDICT_CORRECT


class TestTokenAuth:
    @pytest.fixture
    def secured(self):
        with ServerThread(build(), local_config(auth_token="s3cret")) as running:
            running.run(running.server.wait_ready(10))
            yield running

    @pytest.mark.parametrize("metadata, message", [
        (None, "missing credentials"),
        ((("authorization", "Bearer wrong"),), "invalid bearer token"),
        ((("authorization", "s3cret"),), "invalid bearer token"),
    ])
    def test_missing_or_wrong_token_is_unauthenticated(self, secured, metadata, message):
        with grpc.insecure_channel(secured.target) as channel, pytest.raises(grpc.RpcError) as e:
            verify(channel, metadata=metadata)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert message in e.value.details()

    def test_the_right_token_is_accepted_and_health_stays_open(self, secured):
        with grpc.insecure_channel(secured.target) as channel:
            assert verify(channel, metadata=(("authorization", "Bearer s3cret"),)).id == "ok"
            assert health(channel) == "SERVING"  # probes need no secret
        key = (("code", "OK"), ("method", "Verify"), ("service", SERVICE_NAME))
        counts = scrape(secured.metrics_port, lambda s: key in s.get("r1_grpc_requests_total", {}))
        assert counts["r1_grpc_requests_total"][key] == 1

    def test_the_token_can_come_from_a_file(self, tmp_path):
        (tmp_path / "token").write_text("from-file\n")
        with ServerThread(build(), local_config(auth_token_file=str(tmp_path / "token"))) as running, \
                grpc.insecure_channel(running.target) as channel:
            running.run(running.server.wait_ready(10))
            assert verify(channel, metadata=(("authorization", "Bearer from-file"),)).id == "ok"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    ca, ca_key, ca_cert = certs.make_ca()
    other_ca, other_key, other_cert = certs.make_ca("some other CA")
    files = {"ca": ca.cert,
             **{f"server.{k}": v for k, v in vars(certs.issue(ca_key, ca_cert, "server", server=True)).items()},
             **{f"client.{k}": v for k, v in vars(certs.issue(ca_key, ca_cert, "client", server=False)).items()},
             **{f"rogue.{k}": v for k, v in
                vars(certs.issue(other_key, other_cert, "rogue", server=False)).items()}}
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


class TestTls:
    def serve_tls(self, pki, mutual: bool) -> ServerThread:
        tls = TlsConfig(cert_file=str(pki / "server.cert"), key_file=str(pki / "server.key"),
                        client_ca_file=str(pki / "ca") if mutual else "")
        return ServerThread(build(), local_config(tls=tls))

    def test_tls_serves_clients_that_trust_the_ca(self, pki):
        with self.serve_tls(pki, mutual=False) as running:
            running.run(running.server.wait_ready(10))
            trusted = grpc.ssl_channel_credentials(root_certificates=(pki / "ca").read_bytes())
            with grpc.secure_channel(f"localhost:{running.port}", trusted) as channel:
                assert verify(channel).verdict == verifier_pb2.VERDICT_CORRECT
            with grpc.insecure_channel(running.target) as plain, pytest.raises(grpc.RpcError) as e:
                verify(plain)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE

    def test_mutual_tls_requires_a_client_certificate_from_the_ca(self, pki):
        with self.serve_tls(pki, mutual=True) as running:
            running.run(running.server.wait_ready(10))
            ca = (pki / "ca").read_bytes()
            good = grpc.ssl_channel_credentials(ca, (pki / "client.key").read_bytes(),
                                                (pki / "client.cert").read_bytes())
            with grpc.secure_channel(f"localhost:{running.port}", good) as channel:
                assert verify(channel).verdict == verifier_pb2.VERDICT_CORRECT
            rogue = grpc.ssl_channel_credentials(ca, (pki / "rogue.key").read_bytes(),
                                                 (pki / "rogue.cert").read_bytes())
            for credentials in (grpc.ssl_channel_credentials(ca), rogue):
                with grpc.secure_channel(f"localhost:{running.port}", credentials) as channel, \
                        pytest.raises(grpc.RpcError) as e:
                    verify(channel)
                assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_drain_lets_in_flight_calls_finish_and_runs_the_service_stop():
    stopped: list = []
    running = ServerThread(build(stopped=stopped), local_config()).__enter__()
    try:
        running.run(running.server.wait_ready(10))
        results: dict = {}
        with grpc.insecure_channel(running.target) as channel:
            caller = threading.Thread(target=lambda: results.update(slow=verify(channel, "sleep:1.0").id))
            caller.start()
            time.sleep(0.3)
            running.run(running.server.drain(grace=5))
            caller.join(10)
    finally:
        running.loop.call_soon_threadsafe(running.loop.stop)
    assert results == {"slow": "sleep:1.0"}
    assert stopped == [True]
