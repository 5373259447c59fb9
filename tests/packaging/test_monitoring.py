"""manifests/monitoring (kustomize component) and the chart's monitoring.enabled: a ServiceMonitor, the alerts and
the Grafana dashboard. The PromQL is checked by the real promtool (``check rules``; ``test rules`` fires each
alert on made-up series), and every metric a rule or a panel reads is one a running server exports."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.packaging.test_chart import kustomize_with
from tests.packaging.test_manifests import MANIFESTS, needs_kubectl, one, validate_all
from tests.testkit.chart import CHART, render_chart
from tests.testkit.server import ServerProcess
from tests.testkit.tools import tool
from webhook.registration import TIMEOUT_SECONDS

MONITORING = MANIFESTS / "monitoring"
RULES = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
DASHBOARD = json.loads((MONITORING / "dashboard.json").read_text())


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def alert_exprs() -> dict[str, str]:
    return {r["alert"]: r["expr"] for g in RULES["spec"]["groups"] for r in g["rules"]}


def panel_exprs() -> list[str]:
    """Every PromQL of the dashboard (targets and the namespace variable), Grafana's variables given values."""
    exprs = [t["expr"] for p in DASHBOARD["panels"] for t in p["targets"]]
    for var in DASHBOARD["templating"]["list"]:
        query = var.get("query")
        if isinstance(query, dict):
            m = re.fullmatch(r"label_values\((.+), *\w+\)", query["query"])
            assert m, query
            exprs.append(m.group(1))
    return [e.replace("$__rate_interval", "5m").replace("$namespace", ".*") for e in exprs]


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(vm_admission_[a-z_]+)\b", expr))


# --- the same in both installs ---------------------------------------------------------------------------


def test_chart_ships_the_same_rules_and_dashboard() -> None:
    objs = render_chart("monitoring")
    assert one(objs, "PrometheusRule")["spec"] == RULES["spec"]
    assert yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text()) == RULES["spec"]
    dashboard = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "vm-admission-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["vm-admission.json"]) == DASHBOARD
    assert (CHART / "files" / "dashboard.json").read_text() == (MONITORING / "dashboard.json").read_text()
    monitor = one(objs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"  # monitoring.labels, for Prometheus' selector
    _scrapes_the_webhook(objs)
    assert not {"ServiceMonitor", "PrometheusRule"} & {o["kind"] for o in render_chart("default")}


def _scrapes_the_webhook(objs: list[dict[str, Any]]) -> None:
    """The ServiceMonitor selects the Service, scrapes its https port and trusts the CA of the mounted Secret."""
    monitor, service = one(objs, "ServiceMonitor"), one(objs, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert (endpoint["scheme"], endpoint["path"]) == ("https", "/metrics")
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    secret = next(v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v)
    assert endpoint["tlsConfig"]["ca"]["secret"] == {"name": secret, "key": "ca.crt"}
    ns, name = service["metadata"]["namespace"], service["metadata"]["name"]
    assert endpoint["tlsConfig"]["serverName"] == f"{name}.{ns}.svc"


@needs_kubectl
def test_kustomize_monitoring_component_renders_and_scrapes_the_webhook(tmp_path: Path) -> None:
    objs = kustomize_with(tmp_path, ["overlays/cert-manager"], ["monitoring"])
    assert validate_all(objs) == {"Issuer", "Certificate", "ServiceMonitor", "PrometheusRule"}
    _scrapes_the_webhook(objs)
    dashboard = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "vm-admission-dashboard")
    assert json.loads(dashboard["data"]["vm-admission.json"]) == DASHBOARD
    assert one(objs, "PrometheusRule")["spec"] == RULES["spec"]


# --- PromQL, checked by promtool -------------------------------------------------------------------------


def test_alert_rules_pass_promtool_check_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(RULES["spec"]))
    run = promtool("check", "rules", "--lint=all", "--lint-fatal", str(path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"SUCCESS: {len(alert_exprs())} rules found" in run.stdout


def test_dashboard_expressions_parse_with_promtool(tmp_path: Path) -> None:
    """Each panel's PromQL as a recording rule: ``promtool check rules`` parses every one."""
    exprs = panel_exprs()
    rules = [{"record": f"dashboard:expr_{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run = promtool("check", "rules", str(path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in run.stdout


def test_the_latency_alert_fires_past_half_the_webhook_timeout() -> None:
    expr = alert_exprs()["VmAdmissionSlowReviews"]
    assert re.search(r"\)\s*>\s*([\d.]+)\s*$", expr).group(1) == str(TIMEOUT_SECONDS / 2)  # type: ignore[union-attr]


UNIT_TESTS = """
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'vm_admission_cert_expiry_seconds{namespace="vm-admission",pod="a"}'
        values: '590000-60x40'          # 6.8 days left and counting down
      - series: 'vm_admission_cert_expiry_seconds{namespace="vm-admission",pod="b"}'
        values: '2592000-60x40'         # 30 days: fine
      - series: 'vm_admission_cluster_synced{namespace="vm-admission",pod="a"}'
        values: '1x5 0x30'
      - series: 'vm_admission_cluster_synced{namespace="vm-admission",pod="b"}'
        values: '1x40'
      - series: 'vm_admission_cluster_synced{namespace="vm-admission",pod="c"}'
        values: '0x40'                  # the view is off there: never an alert
      - series: 'vm_admission_cluster_view_enabled{namespace="vm-admission",pod="a"}'
        values: '1x40'
      - series: 'vm_admission_cluster_view_enabled{namespace="vm-admission",pod="b"}'
        values: '1x40'
      - series: 'vm_admission_cluster_view_enabled{namespace="vm-admission",pod="c"}'
        values: '0x40'
      - series: 'vm_admission_requests_total{namespace="vm-admission",webhook="validate",kind="Pod",verdict="allowed"}'
        values: '0+100x40'
      - series: 'vm_admission_errors_total{namespace="vm-admission",reason="internal"}'
        values: '0+10x40'
      - series: 'vm_admission_request_duration_seconds_bucket{namespace="vm-admission",webhook="validate",le="0.5"}'
        values: '0+90x40'
      - series: 'vm_admission_request_duration_seconds_bucket{namespace="vm-admission",webhook="validate",le="2.5"}'
        values: '0+95x40'               # 5% over 2.5 s: p99 between 2.5 and 5
      - series: 'vm_admission_request_duration_seconds_bucket{namespace="vm-admission",webhook="validate",le="5"}'
        values: '0+100x40'
      - series: 'vm_admission_request_duration_seconds_bucket{namespace="vm-admission",webhook="validate",le="+Inf"}'
        values: '0+100x40'
      - series: 'vm_admission_request_duration_seconds_bucket{namespace="vm-admission",webhook="mutate",le="0.5"}'
        values: '0+100x40'              # all fast
      - series: 'vm_admission_request_duration_seconds_bucket{namespace="vm-admission",webhook="mutate",le="+Inf"}'
        values: '0+100x40'
    alert_rule_test:
      - eval_time: 30m
        alertname: VmAdmissionCertificateExpiringSoon
        exp_alerts:
          - exp_labels: {severity: warning, namespace: vm-admission, pod: a}
      - eval_time: 10m
        alertname: VmAdmissionClusterViewNotSynced
        exp_alerts: []                  # not yet for 10m
      - eval_time: 30m
        alertname: VmAdmissionClusterViewNotSynced
        exp_alerts:
          - exp_labels: {severity: warning, namespace: vm-admission, pod: a}
      - eval_time: 30m
        alertname: VmAdmissionErrors
        exp_alerts:
          - exp_labels: {severity: warning, namespace: vm-admission}
      - eval_time: 30m
        alertname: VmAdmissionSlowReviews
        exp_alerts:
          - exp_labels: {severity: warning, namespace: vm-admission, webhook: validate}
  - interval: 1m
    input_series:
      # 1 a minute for 6 h, then 40 a minute
      - series: 'vm_admission_denials_total{namespace="vm-admission",webhook="validate",rule="cpu.memory-required"}'
        values: '0+1x360 360+40x30'
      - series: 'vm_admission_denials_total{namespace="vm-admission",webhook="validate",rule="qos.not-guaranteed"}'
        values: '0+5x390'               # steady
    alert_rule_test:
      - eval_time: 355m
        alertname: VmAdmissionDenialsSpike
        exp_alerts: []
      - eval_time: 385m
        alertname: VmAdmissionDenialsSpike
        exp_alerts:
          - exp_labels: {severity: info, namespace: vm-admission, webhook: validate, rule: cpu.memory-required}
"""


def test_alerts_fire_on_the_series_they_are_for(tmp_path: Path) -> None:
    """``promtool test rules``: each alert fires for the bad series only, after its ``for``. The annotations
    (checked by ``check rules`` above) are left out of this copy so the cases compare labels."""
    spec = copy.deepcopy(RULES["spec"])
    for group in spec["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "tests.yaml").write_text(UNIT_TESTS)
    tested = set(re.findall(r"alertname: (\w+)", UNIT_TESTS))
    assert tested == set(alert_exprs()), "give every alert a promtool unit test"
    run = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


# --- every metric used is exported -----------------------------------------------------------------------


def exported_metrics(server: ServerProcess) -> set[str]:
    """Sample names a server's /metrics has or will have: from ``# TYPE`` lines (histograms give _bucket, _sum,
    _count; counters their _total) and from the samples themselves."""
    text = server.get("/metrics").text
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            elif kind == "counter":
                names.add(name if name.endswith("_total") else f"{name}_total")
            else:
                names.add(name)
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_every_metric_a_rule_or_panel_reads_is_exported(https_server: ServerProcess) -> None:
    used: dict[str, set[str]] = {}
    for alert, expr in alert_exprs().items():
        for name in metric_names(expr):
            used.setdefault(name, set()).add(f"alert {alert}")
    for expr in panel_exprs():
        for name in metric_names(expr):
            used.setdefault(name, set()).add("dashboard")
    assert len(used) >= 6
    exported = exported_metrics(https_server)
    assert "vm_admission_requests_total" in exported and "vm_admission_request_duration_seconds_bucket" in exported
    missing = {name: sorted(where) for name, where in used.items() if name not in exported}
    assert not missing, f"rules/panels read metrics the webhook does not export: {missing}"


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("vm_admission_requests_total", {"webhook", "kind", "operation", "verdict"}),
        ("vm_admission_request_duration_seconds_bucket", {"webhook", "le"}),
        ("vm_admission_requests_in_flight", {"webhook"}),
        ("vm_admission_errors_total", {"reason"}),
    ],
)
def test_the_labels_panels_group_by_exist(https_server: ServerProcess, name: str, labels: set[str]) -> None:
    """``by (...)`` labels of the rules and panels are on the samples (Prometheus adds namespace and pod)."""
    used: set[str] = set()
    for expr in [*alert_exprs().values(), *panel_exprs()]:
        for m in re.finditer(r"by \(([^)]*)\)\s*\((?:rate|increase)?\(?\s*" + name + r"\b", expr):
            used |= {label.strip() for label in m.group(1).split(",")}
    assert used, f"no rule or panel groups {name} by a label"
    assert used - {"namespace", "pod"} <= labels, (name, used)
    assert https_server.post("/validate", {"not": "a review"}).status_code == 400  # a sample for errors_total
    text = https_server.get("/metrics").text
    if name != "vm_admission_errors_total":
        return
    sample = next(line for line in text.splitlines() if line.startswith(name + "{"))
    assert set(re.findall(r'(\w+)="', sample)) == labels
