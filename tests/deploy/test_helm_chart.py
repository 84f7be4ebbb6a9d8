"""The Helm chart (helm/r1), rendered and linted offline without a helm binary.

Tools (the `dev` extra): helm-python-sdk embeds Helm's own Go SDK (v4) as a shared library and calls it
through ctypes: `Chart.render` is `helm template`, `lint(strict=True)` is `helm lint --strict`, and
`Chart.validate_schema` checks values against values.schema.json, all without a cluster. kubernetes-validate
checks every rendered object against the Kubernetes OpenAPI schemas of a given version, strictly (unknown
fields fail). Its schemas have no CRDs, so ServiceMonitor, PrometheusRule and LeaderWorkerSet get the small
structural checks below, and the LeaderWorkerSet's pod templates are validated as real Pods.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (the dev extra) renders the chart")
kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate (the dev extra)")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "r1"
EXAMPLE = CHART / "examples" / "values-deepseek-r1-multinode.yaml"
K8S_VERSIONS = ["1.30.0", "1.33.0"]  # the chart's kubeVersion floor, and a current release
CRDS = {"ServiceMonitor", "PrometheusRule", "LeaderWorkerSet"}
SERVICES = {"generation": 50051, "verifier": 50052, "trainer": 50053, "exporter": 50054}

SCENARIOS: dict[str, dict] = {
    "default": {},
    "multinode-example": yaml.safe_load(EXAMPLE.read_text()),
    "vllm": {"generation": {"engine": "vllm", "parallel": {"tensor": 2, "expert": True},
                            "speculative": {"enabled": True, "numTokens": 2}}},
    "sglang": {"generation": {"engine": "sglang", "model": {"source": "hub", "hub": {"repoId": "org/model"}},
                              "speculative": {"enabled": True}}},
    "torch-mtp": {"generation": {"speculative": {"enabled": True, "numTokens": 2, "maxBatch": 4}}},
    "secured": {"auth": {"existingSecret": "r1-token"}, "tls": {"existingSecret": "r1-tls", "mutual": True},
                "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
                "verifier": {"sandbox": {"relaxForUserNamespaces": True}, "autoscaling": {"enabled": False}}},
    "degraded-hostpath": {"verifier": {"sandbox": {"mode": "degraded"}, "networkPolicy": {"allowDNS": True}},
                          "generation": {"model": {"source": "hostPath"}, "gpus": 1}, "trainer": {"gpus": 2}},
}


def render(values: dict) -> list[dict]:
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(copy.deepcopy(values), name="r1", namespace="ml")
    return [doc for path, text in sorted(manifests.items()) if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text) if doc]


def notes(values: dict) -> str:
    with helm.Chart.load(CHART) as chart:
        return chart.render(copy.deepcopy(values), name="r1", namespace="ml")["r1/templates/NOTES.txt"]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: render(values) for name, values in SCENARIOS.items()}


def kinds(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[dict], kind: str, component: str) -> dict:
    found = [o for o in kinds(objs, kind) if o["metadata"]["labels"].get("app.kubernetes.io/component") == component]
    assert len(found) == 1, f"{len(found)} {kind}s for {component}"
    return found[0]


def pod_templates(objs: list[dict]) -> list[tuple[str, dict]]:
    """(owner, pod template) of every workload, LeaderWorkerSet leader and worker templates included."""
    out = []
    for o in objs:
        name = f"{o['kind']}/{o['metadata']['name']}"
        if o["kind"] in ("Deployment", "StatefulSet"):
            out.append((name, o["spec"]["template"]))
        elif o["kind"] == "LeaderWorkerSet":
            lwt = o["spec"]["leaderWorkerTemplate"]
            out += [(name + "/leader", lwt["leaderTemplate"]), (name + "/worker", lwt["workerTemplate"])]
    return out


def containers(template: dict) -> list[dict]:
    spec = template["spec"]
    return spec.get("initContainers", []) + spec["containers"]


# ------------------------------------------------------------------------------------------- render, lint


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_renders_every_service(rendered, scenario):
    objs = rendered[scenario]
    for service in SERVICES:
        assert one(objs, "Service", service)
        assert one(objs, "ConfigMap", service)
    workload = "LeaderWorkerSet" if scenario == "multinode-example" else "Deployment"
    assert one(objs, workload, "generation")
    assert one(objs, "Deployment", "verifier")
    assert one(objs, "StatefulSet", "trainer")["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "checkpoints"
    assert one(objs, "StatefulSet", "exporter")["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "artefacts"
    assert "port-forward svc/r1-generation 50051 9101" in notes(SCENARIOS[scenario])


@pytest.mark.parametrize("values", [None, EXAMPLE], ids=["default", "multinode-example"])
def test_helm_lint_strict_is_clean(values):
    report = helm.lint(CHART, yaml.safe_load(values.read_text()) if values else None, strict=True,
                       namespace="ml", kube_version="v1.33.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # 1 = info ("icon is recommended")
    assert not problems and not report["errors"], report


def test_schema_rejects_a_wrong_type():
    with helm.Chart.load(CHART) as chart:
        with pytest.raises(helm.HelmValuesError) as e:
            chart.validate_schema({"verifier": {"replicas": "two"}})
        assert "/verifier/replicas" in str(e.value) and "want integer" in str(e.value)
        with pytest.raises(helm.HelmValuesError, match="/verifier/replicas"):
            chart.render({"verifier": {"replicas": "two"}}, name="r1")  # install/template refuse it too
        for bad, where in [({"generation": {"engine": "tgi"}}, "/generation/engine"),
                           ({"verifier": {"sandbox": {"mode": "off"}}}, "/verifier/sandbox/mode"),
                           ({"verifer": {}}, "verifer"),  # a typo in a top-level key
                           ({"generation": {"model": {"source": "hub"}}}, "/generation/model")]:  # no repoId
            with pytest.raises(helm.HelmValuesError, match=where):
                chart.validate_schema(bad)
        chart.validate_schema(yaml.safe_load(EXAMPLE.read_text()))


def test_multinode_needs_vllm():
    with pytest.raises(helm.HelmRenderError, match="multiNode.enabled needs generation.engine: vllm"):
        render({"generation": {"engine": "sglang", "multiNode": {"enabled": True}}})


# ------------------------------------------------------------------------------------------- validation


def check_crd(obj: dict, objs: list[dict], version: str) -> None:
    """The CRDs kubernetes-validate has no schema for: required structure, and their embedded pods."""
    assert obj["metadata"]["name"]
    spec = obj["spec"]
    if obj["kind"] == "ServiceMonitor":
        assert obj["apiVersion"] == "monitoring.coreos.com/v1"
        services = [s for s in kinds(objs, "Service")
                    if spec["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
        assert len(services) == 1, "a ServiceMonitor must select exactly one Service"
        assert {e["port"] for e in spec["endpoints"]} <= {p["name"] for p in services[0]["spec"]["ports"]}
    elif obj["kind"] == "PrometheusRule":
        assert obj["apiVersion"] == "monitoring.coreos.com/v1"
        assert spec["groups"]
        for group in spec["groups"]:
            assert group["name"] and group["rules"]
            for rule in group["rules"]:
                assert rule["expr"] and ("alert" in rule) != ("record" in rule), rule
    elif obj["kind"] == "LeaderWorkerSet":
        assert obj["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
        lwt = spec["leaderWorkerTemplate"]
        assert isinstance(lwt["size"], int) and lwt["size"] >= 2
        assert lwt["restartPolicy"] in ("RecreateGroupOnPodRestart", "None")
        assert spec["startupPolicy"] in ("LeaderCreated", "LeaderReady")
        for template in (lwt["leaderTemplate"], lwt["workerTemplate"]):
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": template["metadata"], "spec": template["spec"]}
            kubernetes_validate.validate(pod, version, strict=True)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_object_validates(rendered, scenario, version):
    objs = rendered[scenario]
    for obj in objs:
        if obj["kind"] in CRDS:
            check_crd(obj, objs, version)
        else:
            kubernetes_validate.validate(obj, version, strict=True)  # raises ValidationError naming the field


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rendered_configs_load_as_service_configs(rendered, scenario, tmp_path):
    """Each ConfigMap's config.yaml is what `r1 serve <service> --config` reads: unknown keys or wrong types
    would stop the service at start."""
    from r1.config import load_config
    from services.common.registry import service_module

    for service in SERVICES:
        path = tmp_path / f"{service}.yaml"
        path.write_text(one(rendered[scenario], "ConfigMap", service)["data"]["config.yaml"])
        config = load_config(service_module(service).Config, path, environ={})
        assert config.server.port == SERVICES[service]


# ------------------------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_grpc_probes_on_every_grpc_container(rendered, scenario):
    tls = bool(SCENARIOS[scenario].get("tls"))
    seen = 0
    for owner, template in pod_templates(rendered[scenario]):
        for c in containers(template):
            grpc_ports = [p["containerPort"] for p in c.get("ports", []) if p["name"] == "grpc"]
            if not grpc_ports:
                continue
            seen += 1
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if tls:  # kubelet's gRPC probes speak no TLS: an in-container health check over TLS
                    command = c[probe]["exec"]["command"]
                    assert "grpc_health" in command[-1] and f"127.0.0.1:{grpc_ports[0]}" in command[-1]
                else:
                    assert c[probe]["grpc"]["port"] == grpc_ports[0], f"{owner}/{c['name']} {probe}"
    assert seen == 4


def test_gpus_go_to_the_engine_container(rendered):
    default = one(rendered["default"], "Deployment", "generation")["spec"]["template"]
    assert "nvidia.com/gpu" not in json.dumps(default)  # torch on CPU by default
    pod = one(rendered["vllm"], "Deployment", "generation")["spec"]["template"]["spec"]
    engine = pod["initContainers"][0]
    assert engine["name"] == "vllm" and engine["restartPolicy"] == "Always"  # a native sidecar
    assert engine["resources"]["limits"]["nvidia.com/gpu"] == 2 == engine["resources"]["requests"]["nvidia.com/gpu"]
    assert "nvidia.com/gpu" not in json.dumps(pod["containers"][0]["resources"])
    assert "--tensor-parallel-size=2" in engine["args"] and "--enable-expert-parallel" in engine["args"]
    spec = json.loads(next(a for a in engine["args"] if a.startswith("--speculative-config="))
                      .split("=", 1)[1])
    assert spec == {"method": "mtp", "num_speculative_tokens": 2}
    assert "--host=127.0.0.1" in engine["args"]
    shm = next(v for v in pod["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"]["medium"] == "Memory" and shm["emptyDir"]["sizeLimit"]
    config = yaml.safe_load(one(rendered["vllm"], "ConfigMap", "generation")["data"]["config.yaml"])
    assert config["engine"]["backend"] == "vllm"
    assert config["engine"]["vllm"]["base_url"] == "http://127.0.0.1:8000"
    hostpath = one(rendered["degraded-hostpath"], "Deployment", "generation")["spec"]["template"]["spec"]
    assert hostpath["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1  # torch on a GPU
    trainer = one(rendered["degraded-hostpath"], "StatefulSet", "trainer")["spec"]["template"]["spec"]
    assert trainer["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 2


def test_torch_engine_speculation_settings(rendered, tmp_path):
    from r1.config import load_config
    from services.common.registry import service_module

    path = tmp_path / "generation.yaml"
    path.write_text(one(rendered["torch-mtp"], "ConfigMap", "generation")["data"]["config.yaml"])
    engine = load_config(service_module("generation").Config, path, environ={}).engine.torch
    assert (engine.spec_tokens, engine.spec_max_batch) == (2, 4)


def test_sglang_sidecar_flags(rendered):
    pod = one(rendered["sglang"], "Deployment", "generation")["spec"]["template"]["spec"]
    download, engine = pod["initContainers"]
    assert download["name"] == "download-model" and "org/model" in download["args"][0]
    assert engine["command"] == ["python3", "-m", "sglang.launch_server"]
    for flag in ("--speculative-algorithm=EAGLE", "--speculative-num-steps=1", "--speculative-num-draft-tokens=2"):
        assert flag in engine["args"]
    assert {"name": "SGLANG_RETURN_ORIGINAL_LOGPROB", "value": "1"} in engine["env"]
    assert "runAsUser" not in pod["securityContext"]  # the engine image keeps its user; ours is non-root
    assert pod["containers"][0]["securityContext"]["runAsUser"] == 10001


def test_multinode_example_is_a_leader_worker_set(rendered):
    objs = rendered["multinode-example"]
    lws = one(objs, "LeaderWorkerSet", "generation")["spec"]["leaderWorkerTemplate"]
    assert lws["size"] == 2
    leader, worker = lws["leaderTemplate"]["spec"], lws["workerTemplate"]["spec"]
    engine = leader["initContainers"][0]
    assert "--data-parallel-address=$(POD_IP)" in engine["args"]
    assert "--headless" in worker["containers"][0]["args"]
    for c in (engine, worker["containers"][0]):
        assert c["resources"]["limits"]["nvidia.com/gpu"] == 8  # tensor 8 x data 2 over 2 nodes
    assert one(objs, "Service", "generation")["spec"]["selector"]["app.kubernetes.io/component"] == "generation"
    assert lws["workerTemplate"]["metadata"]["labels"]["app.kubernetes.io/component"] == "generation-worker"


def test_verifier_network_policy_denies_all_egress(rendered):
    policy = one(rendered["default"], "NetworkPolicy", "verifier")["spec"]
    pod_labels = one(rendered["default"], "Deployment", "verifier")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["policyTypes"] == ["Egress"] and policy["egress"] == []
    dns = one(rendered["degraded-hostpath"], "NetworkPolicy", "verifier")["spec"]["egress"]
    assert [p["port"] for rule in dns for p in rule["ports"]] == [53, 53]


def test_verifier_security_and_sandbox(rendered):
    def verifier(scenario):
        pod = one(rendered[scenario], "Deployment", "verifier")["spec"]["template"]["spec"]
        config = yaml.safe_load(one(rendered[scenario], "ConfigMap", "verifier")["data"]["config.yaml"])
        return pod, pod["containers"][0]["securityContext"], config["verifier"]["sandbox"]

    pod, sc, sandbox = verifier("default")
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and sc["capabilities"]["drop"] == ["ALL"]
    assert {"name": "tmp", "mountPath": "/tmp"} in pod["containers"][0]["volumeMounts"]
    assert "userns" in sandbox["required_layers"] and "uid:nobody" not in sandbox["required_layers"]
    assert not sandbox["allow_degraded"]
    assert one(rendered["default"], "HorizontalPodAutoscaler", "verifier")["spec"]["metrics"][0]["resource"]["name"] == "cpu"

    pod, sc, _ = verifier("secured")  # relaxForUserNamespaces: what bwrap needs, nothing more
    assert sc["seccompProfile"] == {"type": "Unconfined"} and sc["procMount"] == "Unmasked"
    assert pod["hostUsers"] is False
    assert not sc["allowPrivilegeEscalation"] and sc["capabilities"]["drop"] == ["ALL"]
    assert not kinds(rendered["secured"], "HorizontalPodAutoscaler")

    _, _, sandbox = verifier("degraded-hostpath")
    assert sandbox["allow_degraded"] and sandbox["required_layers"] == ["process-group", "rlimits"]


def test_service_monitor_only_when_enabled_else_scrape_annotations(rendered):
    assert not kinds(rendered["default"], "ServiceMonitor")
    for _, template in pod_templates(rendered["default"]):
        a = template["metadata"]["annotations"]
        assert a["prometheus.io/scrape"] == "true" and a["prometheus.io/path"] == "/metrics"
        port = int(a["prometheus.io/port"])
        assert port in [p["containerPort"] for c in containers(template) for p in c.get("ports", [])]
    monitors = kinds(rendered["secured"], "ServiceMonitor")
    assert len(monitors) == 4 and all(m["spec"]["endpoints"][0]["port"] == "metrics" for m in monitors)
    for _, template in pod_templates(rendered["secured"]):
        assert "prometheus.io/scrape" not in template["metadata"]["annotations"]


def test_prometheus_rule_comes_from_the_rules_file(rendered):
    assert not kinds(rendered["default"], "PrometheusRule")
    (rule,) = kinds(rendered["secured"], "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())


def test_dashboard_config_map_has_the_sidecar_label(rendered):
    (dashboard,) = [o for o in kinds(rendered["default"], "ConfigMap") if o["metadata"]["name"].endswith("-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = dashboard["data"].values()
    assert json.loads(text) == json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
    custom = render({"grafanaDashboard": {"label": "dash", "labelValue": "yes", "namespace": "grafana"}})
    (dashboard,) = [o for o in kinds(custom, "ConfigMap") if o["metadata"]["name"].endswith("-dashboard")]
    assert dashboard["metadata"]["labels"]["dash"] == "yes" and dashboard["metadata"]["namespace"] == "grafana"


def test_auth_and_tls_come_from_secrets(rendered):
    objs = rendered["secured"]
    for service in SERVICES:
        config = yaml.safe_load(one(objs, "ConfigMap", service)["data"]["config.yaml"])["server"]
        assert config["auth_token_file"] == "/var/run/secrets/r1/auth/token"
        assert config["tls"] == {"cert_file": "/var/run/secrets/r1/tls/tls.crt",
                                 "key_file": "/var/run/secrets/r1/tls/tls.key",
                                 "client_ca_file": "/var/run/secrets/r1/tls/ca.crt"}
    volumes = one(objs, "Deployment", "verifier")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "auth", "secret": {"secretName": "r1-token"}} in volumes
    assert {"name": "tls", "secret": {"secretName": "r1-tls"}} in volumes


@pytest.mark.parametrize("mutual", [False, True], ids=["tls", "mutual-tls"])
def test_tls_probe_command_checks_a_real_service(tmp_path, mutual):
    """The exec probe the chart renders for TLS, run against `r1 serve exporter` with TLS on."""
    import datetime
    import ipaddress
    import os
    import socket
    import subprocess
    import sys
    import time

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from tests.services.common.certs import make_ca

    ca, ca_key, ca_cert = make_ca()
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "r1-exporter")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            # with mutual TLS the probe presents the pod's own certificate: issue it for both uses
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("r1-exporter.ml.svc"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    secrets = tmp_path / "tls"
    secrets.mkdir()
    (secrets / "ca.crt").write_bytes(ca.cert)
    (secrets / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (secrets / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                        serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    values = {"tls": {"existingSecret": "t", "mutual": mutual, "serverName": "r1-exporter.ml.svc"},
              "exporter": {"ports": {"grpc": port, "metrics": 9104}}}
    pod = one(render(values), "StatefulSet", "exporter")["spec"]["template"]["spec"]["containers"][0]
    command = [part.replace("/var/run/secrets/r1/tls/", f"{secrets}/") for part in pod["readinessProbe"]["exec"]["command"]]
    command[0] = sys.executable

    tls = [f"--set=server.tls.cert_file={secrets}/tls.crt", f"--set=server.tls.key_file={secrets}/tls.key"]
    if mutual:
        tls.append(f"--set=server.tls.client_ca_file={secrets}/ca.crt")
    port_file = tmp_path / "ports.json"
    server = subprocess.Popen([sys.executable, "-m", "r1.cli", "serve", "exporter", "--host", "127.0.0.1",
                               "--port", str(port), "--metrics-port", "-1", "--port-file", str(port_file), *tls],
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert server.poll() is None, server.communicate()[0]
            assert time.monotonic() < deadline, "the exporter did not start"
            time.sleep(0.1)
        probe = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert probe.returncode == 0, probe.stdout + probe.stderr
        wrong_name = [c.replace("r1-exporter.ml.svc", "other.example") for c in command]
        assert subprocess.run(wrong_name, capture_output=True, timeout=30).returncode != 0
    finally:
        server.terminate()
        server.wait(timeout=60)
