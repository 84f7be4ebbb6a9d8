"""The chart's Grafana dashboard and Prometheus alert rules (helm/r1/files/), proven against a real Prometheus.

- The dashboard is well formed: a `datasource` variable, `${datasource}` on every panel and target, unique
  ids, no overlapping panels, and every metric it names is one the services register (read from their
  metric classes, so a renamed metric fails here).
- `promtool check rules` accepts the rules file, and `promtool test rules` shows each alert firing on series
  built for it and staying quiet on healthy ones.
- A Prometheus server of our own (127.0.0.1, a temporary TSDB, scrape and evaluation every second) parses
  every dashboard and rule expression; then (slow) it scrapes the four services `r1 up` starts, a workload
  runs (generations with MTP speculation, verifications of every kind, then a GRPO job on the trainer that
  samples from and is rewarded by those services and evaluates held-out pass@1 every second step), and,
  while the job still runs, every dashboard query must return a finite value (range queries over the run,
  instant ones now), the rules must evaluate without error and no alert may be pending or firing.

promtool and prometheus come from Debian's `prometheus` package (`apt-get install -y --no-install-recommends
prometheus`); without them those tests skip, saying so.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.engine.conftest import patterned_teacher_dir, tokenizer  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "helm" / "r1" / "files" / "grafana-dashboard.json"
RULES = ROOT / "helm" / "r1" / "files" / "prometheus-rules.yaml"
PROMTOOL, PROMETHEUS = shutil.which("promtool"), shutil.which("prometheus")
INSTALL = "apt-get install -y --no-install-recommends prometheus"
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason=f"promtool is not installed ({INSTALL})")
needs_prometheus = pytest.mark.skipif(PROMETHEUS is None, reason=f"prometheus is not installed ({INSTALL})")

# Grafana's variables, as the test queries them: short rate windows, the scrape interval is 1 s.
GRAFANA_VARIABLES = {"$__rate_interval": "30s", "$__interval": "5s", "$__range": "10m"}
# Panels that cannot have data in a short offline run, and why. None so far: keep it that way.
NO_DATA_EXPECTED: dict[str, str] = {}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(board: dict) -> list[dict]:
    return [p for p in board["panels"] if p["type"] != "row"]


def grafana(expr: str) -> str:
    """The expression as the test queries it, Grafana's variables replaced."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown variable in {expr}"
    return expr


def dashboard_queries(board: dict) -> list[tuple[str, str]]:
    """(panel title / refId, PromQL with Grafana's variables replaced)."""
    return [(f"{panel['title']} / {target['refId']}", grafana(target["expr"]))
            for panel in panels(board) for target in panel["targets"]]


def rule_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load(RULES.read_text())
    return [(rule.get("alert") or rule["record"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def registered_series() -> set[str]:
    """Every series name the services can expose, from their own metric classes."""
    from prometheus_client import CollectorRegistry

    from services.common.metrics import RpcMetrics, ServiceMetrics
    from services.generation.metrics import GenerationMetrics
    from services.trainer.metrics import TrainerMetrics
    from services.verifier.metrics import VerifierMetrics

    registry = CollectorRegistry()
    RpcMetrics(registry)
    ServiceMetrics(registry, "any", "0")
    GenerationMetrics(registry)
    VerifierMetrics(registry)
    TrainerMetrics(registry).watch(dict)  # registers r1_eval_* too (EvalMetrics)
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count"),
                "info": ("_info",)}
    return {family.name + suffix for family in registry.collect() for suffix in suffixes[family.type]}


# ------------------------------------------------------------------------------------------ dashboard


def test_the_dashboard_has_a_datasource_variable_used_by_every_panel_and_target():
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41 and board["uid"] and board["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert set(variables) == {"datasource"}, "queries must not need a job or namespace variable"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and panel.get("description"), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert not re.search(r'\b(job|namespace|pod)\s*=~?\s*"', target["expr"]), (panel["title"], target["expr"])
    titles = {p["title"] for p in board["panels"] if p["type"] == "row"}
    assert {"Throughput", "Latency", "Queues", "Speculative decoding (MTP)", "RL (trainer jobs, per step)",
            "Weight sync", "Evaluation (pass@1)", "Verifier"} <= titles


def test_the_dashboard_panels_fit_the_grid_without_overlapping():
    boxes = [(p["title"], p["gridPos"]) for p in dashboard()["panels"]]
    for title, g in boxes:
        assert g["x"] >= 0 and g["w"] >= 1 and g["x"] + g["w"] <= 24 and g["h"] >= 1, title
    for i, (a, g) in enumerate(boxes):
        for b, h in boxes[i + 1:]:
            apart = (g["x"] + g["w"] <= h["x"] or h["x"] + h["w"] <= g["x"] or g["y"] + g["h"] <= h["y"]
                     or h["y"] + h["h"] <= g["y"])
            assert apart, f"{a!r} overlaps {b!r}"


def test_every_metric_the_dashboard_and_the_rules_name_is_one_the_services_register():
    known = registered_series()
    used = {}
    for where, expr in dashboard_queries(dashboard()) + rule_expressions():
        for name in re.findall(r"\br1_[a-z0-9_]+", expr):
            used.setdefault(name, where)
    assert used and {name: where for name, where in used.items() if name not in known} == {}
    assert {"r1_trainer_sync_seconds", "r1_eval_pass_at_1", "r1_spec_decode_accepted_tokens_by_position_total",
            "r1_verifier_isolation_layer", "r1_grpc_request_duration_seconds_bucket"} <= set(used)


# ------------------------------------------------------------------------------------------ promtool


@needs_promtool
def test_promtool_accepts_the_rules_file():
    done = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 4 rules found" in done.stdout


def annotations(alert: str, labels: dict, value: str) -> dict:
    """The alert's annotations rendered for `labels` and `value`, the value as its template formats it (the
    rules' templates use only `{{ $labels.NAME }}` and one formatting of `$value` each); a label missing from
    the alert fails here, where Prometheus would print an empty string."""
    rule = next(r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if r.get("alert") == alert)

    def render(text: str) -> str:
        text = re.sub(r"\{\{ [^}]*\$value[^}]* \}\}", value, text)
        text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)
        assert "{{" not in text, text
        return text

    return {key: render(text) for key, text in rule["annotations"].items()}


def expect(alert: str, at: str, *firing: tuple[dict, str]) -> dict:
    """promtool's alert test: exactly `firing` ((labels, rendered value) each) fire at `at`."""
    severity = next(r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]
                    if r.get("alert") == alert)["labels"]["severity"]
    return {"eval_time": at, "alertname": alert,
            "exp_alerts": [{"exp_labels": {"severity": severity, **labels},
                            "exp_annotations": annotations(alert, labels, value)} for labels, value in firing]}


ALERT_TESTS = {
    "rule_files": [str(RULES)],
    "evaluation_interval": "1m",
    "tests": [{
        "interval": "1m",
        "input_series": [
            # verifier: v1 near max_pending, v2 refusing items, v3 answering RESOURCE_EXHAUSTED; v4 healthy,
            # and generation's RESOURCE_EXHAUSTED is not the verifier's
            {"series": 'r1_verifier_queue_depth{job="r1-verifier",instance="v1"}', "values": "4000x12"},
            {"series": 'r1_verifier_rejected_items_total{job="r1-verifier",instance="v2"}', "values": "0+5x12"},
            {"series": 'r1_grpc_requests_total{job="r1-verifier",instance="v3",service="r1.verifier.v1.Verifier",'
                       'method="VerifyBatch",code="RESOURCE_EXHAUSTED"}', "values": "0+1x12"},
            {"series": 'r1_verifier_queue_depth{job="r1-verifier",instance="v4"}', "values": "10x12"},
            {"series": 'r1_verifier_rejected_items_total{job="r1-verifier",instance="v4"}', "values": "3x12"},
            {"series": 'r1_grpc_requests_total{job="r1-generation",instance="g1",service="r1.generation.v1.'
                       'Generation",method="Generate",code="RESOURCE_EXHAUSTED"}', "values": "0+1x12"},
            # generation: g1 unscrapable from minute 2, g2 up but never ready; the verifier's `up` is not
            # generation's, g3 is fine
            {"series": 'up{job="r1-generation",instance="g1"}', "values": "1 1 0x10"},
            {"series": 'up{job="r1-generation",instance="g2"}', "values": "1x12"},
            {"series": 'r1_service_ready{job="r1-generation",instance="g2",service="r1.generation.v1.Generation"}',
             "values": "0x12"},
            {"series": 'up{job="r1-verifier",instance="v1"}', "values": "0x12"},
            {"series": 'up{job="r1-generation",instance="g3"}', "values": "1x12"},
            {"series": 'r1_service_ready{job="r1-generation",instance="g3",service="r1.generation.v1.Generation"}',
             "values": "1x12"},
            # trainer: job "a" steps every minute, "b" is stuck at version 5, "c" started at minute 10
            {"series": 'r1_trainer_weight_version{job="r1-trainer",instance="t",job_id="a"}', "values": "1+1x40"},
            {"series": 'r1_trainer_weight_version{job="r1-trainer",instance="t",job_id="b"}', "values": "5x40"},
            {"series": 'r1_trainer_weight_version{job="r1-trainer",instance="t",job_id="c"}', "values": "_x10 3x30"},
            # evaluations: synthetic 30% (v0) -> 50% (v2, minute 10) -> 35% (v4, minute 20): dropped;
            # math500 only improves
            {"series": 'r1_eval_pass_at_1{job="r1-trainer",instance="t",benchmark="synthetic",model="job:a",'
                       'weight_version="0"}', "values": "0.30x40"},
            {"series": 'r1_eval_pass_at_1{job="r1-trainer",instance="t",benchmark="synthetic",model="job:a",'
                       'weight_version="2"}', "values": "_x10 0.50x30"},
            {"series": 'r1_eval_pass_at_1{job="r1-trainer",instance="t",benchmark="synthetic",model="job:a",'
                       'weight_version="4"}', "values": "_x20 0.35x20"},
            {"series": 'r1_eval_pass_at_1{job="r1-eval",instance="e",benchmark="math500",model="m",'
                       'weight_version="0"}', "values": "0.40x40"},
            {"series": 'r1_eval_pass_at_1{job="r1-eval",instance="e",benchmark="math500",model="m",'
                       'weight_version="1"}', "values": "_x10 0.60x30"},
        ],
        "alert_rule_test": [
            expect("R1VerifierQueueSaturated", "1m"),  # not yet: `for: 2m`
            expect("R1VerifierQueueSaturated", "8m", ({"job": "r1-verifier", "instance": "v1"}, "4000.00"),
                   ({"job": "r1-verifier", "instance": "v2"}, "0.08"),  # 5 items a minute
                   ({"job": "r1-verifier", "instance": "v3"}, "0.02")),
            expect("R1GenerationDown", "4m"),  # g2 pending since 0m, g1 since 2m: `for: 5m`
            expect("R1GenerationDown", "10m", ({"job": "r1-generation", "instance": "g1"}, "0"),
                   ({"job": "r1-generation", "instance": "g2", "service": "r1.generation.v1.Generation"}, "0")),
            expect("R1WeightSyncStalled", "12m"),
            expect("R1WeightSyncStalled", "25m", ({"job": "r1-trainer", "instance": "t", "job_id": "b"}, "5")),
            expect("R1PassAt1Dropped", "15m"),  # v2 is the best and the latest
            expect("R1PassAt1Dropped", "30m", ({"benchmark": "synthetic", "model": "job:a"}, "15%")),
        ],
    }],
}


@needs_promtool
def test_each_alert_fires_on_its_condition_and_not_on_healthy_series(tmp_path):
    tests = tmp_path / "alerts.test.yaml"
    tests.write_text(yaml.safe_dump(ALERT_TESTS, sort_keys=False))
    done = subprocess.run([PROMTOOL, "test", "rules", str(tests)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


# -------------------------------------------------------------------------------------- a real server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """A Prometheus server on 127.0.0.1 with a temporary TSDB, scraping the targets written to its file_sd
    file every second and evaluating the chart's rules every second."""

    def __init__(self, root: Path):
        self.root = root
        self.targets = root / "targets.json"
        self.targets.write_text("[]")
        config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                  "rule_files": [str(RULES)],
                  "scrape_configs": [{"job_name": "r1", "file_sd_configs": [{"files": [str(self.targets)],
                                                                              "refresh_interval": "1s"}]}]}
        (root / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(root / "prometheus.log", "w")
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, (root / "prometheus.log").read_text()[-3000:]
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{self.url}/-/ready", timeout=1).status == 200:
                    break
            assert time.monotonic() < deadline, "prometheus did not get ready in 30 s"
            time.sleep(0.1)

    def api(self, path: str, **params) -> dict:
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as e:  # 400 bad_data (a parse error), 422 execution errors
            return json.loads(e.read())

    def scrape(self, targets: dict[str, str]) -> None:
        """targets: job name -> host:port."""
        staged = self.targets.with_suffix(".tmp")  # replaced at once: the watcher never reads half a file
        staged.write_text(json.dumps([{"targets": [where], "labels": {"job": job}} for job, where in targets.items()]))
        staged.replace(self.targets)

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    if PROMETHEUS is None:
        pytest.skip(f"prometheus is not installed ({INSTALL})")
    server = Prometheus(tmp_path_factory.mktemp("prometheus"))
    yield server
    server.close()


@needs_prometheus
def test_the_server_parses_every_dashboard_and_rule_expression(prometheus):
    failures = {}
    for where, expr in dashboard_queries(dashboard()) + rule_expressions():
        answer = prometheus.api("query", query=expr)
        if answer["status"] != "success":
            failures[where] = f"{answer.get('errorType')}: {answer.get('error')}"
    assert failures == {}
    bad = prometheus.api("query", query="sum(rate(r1_grpc_requests_total[1m])")  # the check can fail
    assert (bad["status"], bad["errorType"]) == ("error", "bad_data")


# ----------------------------------------------------------------------------------------- end to end


@contextlib.contextmanager
def r1_up(workdir: Path, model: Path):
    """`r1 up` on free ports, serving `model` with one MTP draft token; yields its state file's contents."""
    state_file = workdir / "state.json"
    ports = [f"{name}.{kind}=0" for name in ("generation", "verifier", "trainer", "exporter")
             for kind in ("port", "metrics_port")]
    argv = [sys.executable, "-m", "r1.cli", "up", "--state-file", str(state_file),
            "--set", f"workdir={workdir / 'up'}", "--set", f"generation_model={model}",
            "--set", "generation.set=[engine.torch.spec_tokens=1]",
            "--set", f"trainer.set=[trainer.jobs_root={workdir / 'jobs'}]",
            *[x for item in ports for x in ("--set", item)]]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 180
        while not state_file.exists():
            assert process.poll() is None, process.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "r1 up wrote no state file in 180 s"
            time.sleep(0.2)
        yield json.loads(state_file.read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def wait_until(what: str, check, timeout: float, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"{what}: still not true after {timeout:.0f} s"
        time.sleep(every)
    return result


def workload(state: dict) -> None:
    """Concurrent generations (MTP on), then verifications of every kind (math, choice, code in the sandbox,
    format, language; right and wrong answers)."""
    from r1.engine.types import SamplingParams
    from r1.rewards.code import CodeRequest, IOTest
    from r1.rewards.items import ChoiceCheck, FormatCheck, Item, LanguageCheck, MathCheck
    from services.generation.client import GenerationClient
    from services.verifier.client import VerifierClient

    with GenerationClient(state["generation"]["target"], timeout=120) as client, ThreadPoolExecutor(4) as pool:
        outputs = list(pool.map(lambda i: client.generate(f"{i} + {i} =", n=2, sampling=SamplingParams(
            temperature=0.6, max_tokens=16, seed=i)), range(4)))
    assert [len(samples) for samples in outputs] == [2] * 4
    doubler = CodeRequest("python", "", io_tests=(IOTest("3", "6"), IOTest("10", "20")))
    items = [Item("so \\boxed{\\frac{1}{2}}", MathCheck("0.5")), Item("\\boxed{3}", MathCheck("4")),
             Item("Answer: C", ChoiceCheck("B")), Item("Answer: B", ChoiceCheck("B")),
             Item("```python\nprint(int(input()) * 2)\n```", doubler), Item("```python\nprint(1/0)\n```", doubler),
             Item("<think>2 and 2</think><answer>4</answer>", FormatCheck()),
             Item("<think>zwei plus zwei</think>", LanguageCheck("zh"))]
    with VerifierClient(state["verifier"]["target"], timeout=120) as client:
        assert len(list(client.verify_batch(items))) == len(items)
        client.verify(items[0])


# A GRPO job on the trainer, sampling from the generation service and rewarded by the verifier service, with
# a held-out evaluation every second step: it runs (its r1_trainer_* series exist only while it runs) until
# the test has checked the dashboard, then is cancelled.
JOB = {"grpo": {"steps": 500, "prompts_per_step": 2, "group_size": 4, "max_tokens": 8, "beta": 0.04,
                "dynamic_sampling": False},
       "eval": {"problems": 3, "k": 2, "max_tokens": 8, "every": 2}, "data": {"n_train": 20}}


def value(prometheus: Prometheus, expr: str) -> float:
    result = prometheus.api("query", query=expr)["data"]["result"]
    return float(result[0]["value"][1]) if result else float("nan")


def without_data(prometheus: Prometheus, started: float) -> dict[str, str]:
    """The dashboard queries that return no finite value: range queries over the run (what Grafana's time
    series panels ask), instant queries now (its tables)."""
    empty = {}
    for panel in panels(dashboard()):
        if panel["title"] in NO_DATA_EXPECTED:
            continue
        for target in panel["targets"]:
            where, expr = f"{panel['title']} / {target['refId']}", grafana(target["expr"])
            if target.get("instant"):
                answer = prometheus.api("query", query=expr)
                points = [s["value"] for s in answer["data"]["result"]] if answer["status"] == "success" else []
            else:
                answer = prometheus.api("query_range", query=expr, start=started, end=time.time(), step="1s")
                points = [p for s in answer["data"]["result"] for p in s["values"]] \
                    if answer["status"] == "success" else []
            if not any(math.isfinite(float(v)) for _, v in points):
                empty[where] = expr
    return empty


@needs_prometheus
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_every_dashboard_query_has_data_after_a_workload_on_the_four_services(prometheus, tmp_path,
                                                                             patterned_teacher_dir):  # noqa: F811
    from services.protogen.trainer.v1 import trainer_pb2 as pb
    from services.trainer.client import TrainerClient

    started = time.time()
    with r1_up(tmp_path, patterned_teacher_dir) as state, \
            TrainerClient(state["trainer"]["target"], timeout=30) as trainer:
        prometheus.scrape({f"r1-{name}": where["metrics"] for name, where in state.items()})
        wait_until("Prometheus scrapes the four services", lambda: len(
            [t for t in prometheus.api("targets")["data"]["activeTargets"] if t["health"] == "up"]) == 4, 30)
        workload(state)
        trainer.submit_job("grpo", JOB, ["synthetic"], str(patterned_teacher_dir), job_id="observed",
                           generation_target=state["generation"]["target"],
                           verifier_target=state["verifier"]["target"])
        try:
            # two evaluated weight versions (0 and 2) and a few steps, seen by Prometheus
            wait_until("the job's evaluations and steps are scraped", lambda: value(
                prometheus, 'count(r1_eval_pass_at_1{model="job:observed"})') >= 2 and value(
                prometheus, 'r1_trainer_step{job_id="observed"}') >= 3, timeout=120)
            assert trainer.get_job("observed").state == pb.JOB_STATE_RUNNING
            deadline = time.monotonic() + 20  # rate() windows may lag a scrape or two
            while (empty := without_data(prometheus, started)) and time.monotonic() < deadline:
                time.sleep(2)
            assert empty == {}, "dashboard queries without data"
            assert value(prometheus, "sum(rate(r1_spec_decode_draft_tokens_total[5m]))") > 0  # MTP was on
            assert value(prometheus, 'max(r1_generation_weight_version)') >= 2  # the job's syncs were served
            rules = [r for g in prometheus.api("rules")["data"]["groups"] for r in g["rules"]]
            assert len(rules) == 4 and all(r["health"] == "ok" and not r.get("lastError") for r in rules), rules
            assert [a["labels"]["alertname"] for a in prometheus.api("alerts")["data"]["alerts"]] == []
        finally:
            trainer.cancel_job("observed")
            wait_until("the job stops", lambda: trainer.get_job("observed").state == pb.JOB_STATE_CANCELLED, 60)
