"""charts/vm-admission with the real helm: lint, render every values profile, validate strictly, and install what
the kustomize base (and its components) install, with the same webhook registrations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.packaging.test_manifests import KUBECTL, MANIFESTS, kustomize, needs_kubectl, one, validate_all
from tests.testkit.chart import CHART, RELEASE_NAMESPACE, chart_profile, helm, render_chart
from tests.testkit.tools import tool
from webhook.cli import build_parser
from webhook.config import Config, load_config, parse_config
from webhook.registration import Target, build_configurations

PROFILES = sorted(p.name.removesuffix("-values.yaml") for p in (CHART / "ci").glob("*-values.yaml"))
CERT_MANAGER_KINDS = {"Issuer", "Certificate"}
MONITORING_KINDS = {"ServiceMonitor", "PrometheusRule"}
WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
CLUSTER_VIEW_RULES = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["kubevirt.io"], "resources": ["kubevirts"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": ["k8s.cni.cncf.io"],
        "resources": ["network-attachment-definitions"],
        "verbs": ["get", "list", "watch"],
    },
]
AUDIT_RULES = [
    {
        "apiGroups": ["kubevirt.io"],
        "resources": ["virtualmachines", "virtualmachineinstances"],
        "verbs": ["list"],
    },
    {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["list"]},
    {"apiGroups": ["kubevirt.io"], "resources": ["kubevirts"], "verbs": ["list"]},
    {"apiGroups": ["k8s.cni.cncf.io"], "resources": ["network-attachment-definitions"], "verbs": ["list"]},
    {"apiGroups": ["wgpolicyk8s.io"], "resources": ["policyreports"], "verbs": ["list", "create", "patch"]},
]


def kinds(objs: list[dict[str, Any]]) -> list[str]:
    return sorted(o["kind"] for o in objs)


def named(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def webhook_registrations(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Both configurations with what legitimately differs between installs left out: labels, annotations
    (cert-manager's injection) and caBundle."""
    out = []
    for kind in WEBHOOK_KINDS:
        conf = one(objs, kind)
        hooks = []
        for hook in conf["webhooks"]:
            hook = {**hook, "clientConfig": {k: v for k, v in hook["clientConfig"].items() if k != "caBundle"}}
            hooks.append(hook)
        out.append(
            {"apiVersion": conf["apiVersion"], "kind": kind, "name": conf["metadata"]["name"], "webhooks": hooks}
        )
    return out


def kustomize_with(tmp_path: Path, resources: list[str], components: list[str]) -> list[dict[str, Any]]:
    """Render a kustomization of the user's own that uses manifests/ by relative path (as a checkout would)."""
    site = tmp_path / "site"
    site.mkdir()
    rel = os.path.relpath(MANIFESTS, site)
    (site / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [f"{rel}/{r}" for r in resources],
                "components": [f"{rel}/{c}" for c in components],
            }
        )
    )
    return kustomize(site)


# --- lint and schemas ------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_helm_lint_passes_strictly(profile: str) -> None:
    out = helm(
        "lint", str(CHART), "--strict", "--namespace", RELEASE_NAMESPACE, "--values", str(chart_profile(profile))
    )
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_renders_objects_the_kubernetes_schemas_accept(profile: str) -> None:
    objs = render_chart(profile)
    unknown = validate_all(objs)  # strict: unknown fields are errors
    assert unknown <= CERT_MANAGER_KINDS | MONITORING_KINDS, unknown
    for obj in objs:
        if obj["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding", *WEBHOOK_KINDS):
            assert obj["metadata"]["namespace"] == RELEASE_NAMESPACE, obj["metadata"]


def test_chart_version_and_tool_are_pinned() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    pyproject = (CHART.parent.parent / "pyproject.toml").read_text()
    assert f'version = "{chart["appVersion"]}"' in pyproject  # the image tag defaults to the package version
    assert "v3.22.0" in subprocess.run([tool("helm"), "version", "--short"], capture_output=True, text=True).stdout


# --- the same install as the kustomize base --------------------------------------------------------------


@needs_kubectl
def test_default_install_has_the_kustomize_overlays_objects() -> None:
    chart = render_chart("default")
    overlay = kustomize(MANIFESTS / "overlays" / "cert-manager")
    assert kinds(chart) == kinds(overlay)
    # the same names, so either install can replace the other
    assert sorted((o["kind"], o["metadata"]["name"]) for o in chart if o["kind"] != "ConfigMap") == sorted(
        (o["kind"], o["metadata"]["name"]) for o in overlay if o["kind"] != "ConfigMap"
    )


@needs_kubectl
@pytest.mark.parametrize("profile", ["default", "generate", "provided"])
def test_helm_and_kustomize_render_the_same_webhook_registrations(profile: str) -> None:
    """matchConditions, rules, timeouts, failure policies, namespace exclusions, services: all equal."""
    chart = webhook_registrations(render_chart(profile))
    assert chart == webhook_registrations(kustomize(MANIFESTS))
    assert chart == webhook_registrations(kustomize(MANIFESTS / "overlays" / "cert-manager"))


@pytest.mark.parametrize("profile", PROFILES)
def test_chart_webhooks_are_what_webhook_config_generates_for_its_values(profile: str) -> None:
    """The pod filter follows config.cpuManager.nodeSelectorLabels and the failure policy the values."""
    values = yaml.safe_load(chart_profile(profile).read_text()) or {}
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    config = parse_config({**defaults["config"], **values.get("config", {})})
    policy = values.get("webhook", {}).get("failurePolicy") or None  # None: webhook-config's per-webhook default
    expected = build_configurations(Target(namespace=RELEASE_NAMESPACE, service="vm-admission"), None, policy, config)
    assert webhook_registrations(render_chart(profile)) == webhook_registrations(expected)


def test_deployment_probes_anti_affinity_and_locked_down_pod() -> None:
    objs = render_chart("default")
    deploy = one(objs, "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert deploy["spec"]["replicas"] == 2
    term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= labels.items()
    assert (
        pod["automountServiceAccountToken"] is False
        and one(objs, "ServiceAccount")["automountServiceAccountToken"] is False
    )
    (container,) = pod["containers"]
    assert container["image"] == "vm-admission:0.1.0"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {k: container[k]["httpGet"]["path"] for k in ("startupProbe", "livenessProbe", "readinessProbe")} == {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    args = build_parser().parse_args(container["args"])
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_dir, _, config_file = args.config.rpartition("/")
    config_map = named(objs, "ConfigMap", volumes[mounts[config_dir]]["configMap"]["name"])
    assert parse_config(yaml.safe_load(config_map["data"][config_file])) == Config()  # the defaults, spelled out
    assert volumes[mounts[args.cert_dir]]["secret"]["secretName"] == "vm-admission-tls"
    service, pdb = one(objs, "Service"), one(objs, "PodDisruptionBudget")
    assert service["spec"]["selector"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items() and pdb["spec"]["minAvailable"] == 1
    namespace = one(objs, "Namespace")["metadata"]
    assert namespace["name"] == RELEASE_NAMESPACE
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_namespace_is_left_to_helm_install_by_default() -> None:
    assert "Namespace" not in kinds(render_chart(None))


# --- the cluster view ------------------------------------------------------------------------------------


def test_cluster_view_binds_read_only_rbac_and_mounts_the_token() -> None:
    objs = render_chart("cluster-view")
    config = parse_config(yaml.safe_load(named(objs, "ConfigMap", "vm-admission-config")["data"]["config.yaml"]))
    assert config.cluster.watch is True
    role = named(objs, "ClusterRole", "vm-admission-cluster-view")
    assert role["rules"] == CLUSTER_VIEW_RULES
    binding = named(objs, "ClusterRoleBinding", "vm-admission-cluster-view")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    sa = one(objs, "ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": RELEASE_NAMESPACE}
    ]
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    assert pod["automountServiceAccountToken"] is True and sa["automountServiceAccountToken"] is True
    assert not [o for o in render_chart("default") if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]


@needs_kubectl
def test_kustomize_cluster_view_component_grants_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    objs = kustomize_with(tmp_path, ["base"], ["components/cluster-view"])
    assert validate_all(objs) == set()
    assert named(objs, "ClusterRole", "vm-admission-cluster-view")["rules"] == CLUSTER_VIEW_RULES
    binding = named(objs, "ClusterRoleBinding", "vm-admission-cluster-view")
    sa = one(objs, "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "vm-admission", "namespace": "vm-admission"}]
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True and sa["automountServiceAccountToken"] is True
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    # the environment overrides the mounted file (webhook/config.py): with the base's config, the view is on
    config_map = next(o for o in objs if o["kind"] == "ConfigMap")
    config_file = tmp_path / "config.yaml"
    config_file.write_text(config_map["data"]["config.yaml"])
    assert load_config(str(config_file)).cluster.watch is False
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_config(str(config_file)).cluster.watch is True


# --- certificates, three ways ----------------------------------------------------------------------------


def test_cert_manager_issues_the_mounted_secret_and_injects_its_ca() -> None:
    objs = render_chart("default")
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    secret = next(v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v)
    (serving,) = [o for o in objs if o["kind"] == "Certificate" and o["spec"]["secretName"] == secret]
    assert "vm-admission.vm-admission.svc" in serving["spec"]["dnsNames"]
    for kind in WEBHOOK_KINDS:
        assert one(objs, kind)["metadata"]["annotations"] == {
            "cert-manager.io/inject-ca-from": f"{RELEASE_NAMESPACE}/{serving['metadata']['name']}"
        }


def test_generated_certificates_come_from_vm_admission_certs_in_hook_jobs() -> None:
    objs = render_chart("generate")
    assert not CERT_MANAGER_KINDS & set(kinds(objs))
    jobs = {o["metadata"]["annotations"]["helm.sh/hook"]: o for o in objs if o["kind"] == "Job"}
    assert set(jobs) == {"pre-install,pre-upgrade", "post-install,post-upgrade"}
    secret = "vm-admission-tls"
    pre = jobs["pre-install,pre-upgrade"]["spec"]["template"]["spec"]
    (container,) = pre["containers"]
    assert container["args"] == [
        "secret",
        RELEASE_NAMESPACE,
        secret,
        "vm-admission.vm-admission.svc",
        "vm-admission.vm-admission.svc.cluster.local",
    ]
    post = jobs["post-install,post-upgrade"]["spec"]["template"]["spec"]["containers"][0]
    assert post["args"] == ["inject", RELEASE_NAMESPACE, secret, "vm-admission"]
    script = named(objs, "ConfigMap", "vm-admission-certs")["data"]["install-certs.py"]
    assert '"vm-admission", "certs"' in script
    assert script == (CHART / "files" / "install-certs.py").read_text()
    compile(script, "install-certs.py", "exec")  # valid Python for the image's interpreter
    # the hook's ServiceAccount may touch only that Secret and the two webhook configurations
    (role,) = [o for o in objs if o["kind"] == "Role"]
    assert {tuple(r.get("resourceNames", [])) for r in role["rules"]} == {(), (secret,)}
    assert [r["verbs"] for r in role["rules"] if not r.get("resourceNames")] == [["create"]]
    cluster_role = named(objs, "ClusterRole", "vm-admission-certs")
    assert cluster_role["rules"] == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
            "resourceNames": ["vm-admission"],
            "verbs": ["get", "patch"],
        }
    ]
    # RBAC exists before the Jobs run
    for obj in objs:
        if obj["kind"] in ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ConfigMap"):
            hook = obj["metadata"].get("annotations", {}).get("helm.sh/hook")
            if obj["metadata"]["name"] == "vm-admission-certs":
                assert hook == "pre-install,pre-upgrade,post-install,post-upgrade"
                assert int(obj["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0


def test_provided_certificates_are_mounted_and_their_ca_is_in_every_webhook() -> None:
    values = yaml.safe_load(chart_profile("provided").read_text())["certificates"]["provided"]
    objs = render_chart("provided")
    assert not CERT_MANAGER_KINDS & set(kinds(objs)) and "Job" not in kinds(objs)
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    assert next(v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v) == values["secretName"]
    for kind in WEBHOOK_KINDS:
        conf = one(objs, kind)
        assert "annotations" not in conf["metadata"]
        assert {h["clientConfig"]["caBundle"] for h in conf["webhooks"]} == {values["caBundle"]}


def test_provided_mode_without_a_ca_bundle_fails_with_a_message() -> None:
    run = subprocess.run(
        [tool("helm"), "template", "vm-admission", str(CHART), "--set", "certificates.mode=provided"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "certificates.provided.caBundle is required" in run.stderr


# --- the audit CronJob -----------------------------------------------------------------------------------


def _audit_checks(objs: list[dict[str, Any]], schedule: str) -> None:
    cron = named(objs, "CronJob", "vm-admission-audit")
    assert cron["spec"]["schedule"] == schedule and cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "vm-admission audit -A --report" in " ".join(container["command"])
    assert container["image"] == "vm-admission:0.1.0"
    sa = named(objs, "ServiceAccount", pod["serviceAccountName"])
    role = named(objs, "ClusterRole", "vm-admission-audit")
    assert role["rules"] == AUDIT_RULES
    binding = named(objs, "ClusterRoleBinding", "vm-admission-audit")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "vm-admission"}
    ]
    assert pod["automountServiceAccountToken"] is True
    assert sa["metadata"]["name"] != "vm-admission"  # not the webhook's ServiceAccount


def test_audit_cron_job_runs_audit_report_with_its_own_least_privilege_account() -> None:
    _audit_checks(render_chart("audit"), "*/30 * * * *")
    assert "CronJob" not in kinds(render_chart("default"))


@needs_kubectl
def test_kustomize_audit_component_is_the_same(tmp_path: Path) -> None:
    objs = kustomize_with(tmp_path, ["base"], ["components/audit"])
    assert validate_all(objs) == set()
    _audit_checks(objs, "17 * * * *")
    assert one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"] == "vm-admission:0.1.0"


def test_kubectl_is_the_one_the_manifest_tests_use() -> None:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    assert Path(KUBECTL).name == "kubectl"


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("certificates.mode=certmanager", "/certificates/mode"),  # a typo would otherwise render no certificate
        ("webhook.failurePolicy=Sometimes", "/webhook/failurePolicy"),
        ("config.enforcement=strict", "/config/enforcement"),
    ],
)
def test_values_schema_rejects_what_would_install_a_broken_webhook(flag: str, message: str) -> None:
    run = subprocess.run(
        [tool("helm"), "template", "vm-admission", str(CHART), "--set", flag],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0 and message in run.stderr, run.stderr


def test_helm_template_and_kustomize_streams_review_on_stdin() -> None:
    """``helm template ... | vm-admission review -`` (and kustomize's): every document read, none a rule's."""
    stream = helm("template", "vm-admission", str(CHART), "-f", str(chart_profile("everything")))
    vm_admission = Path(sys.executable).parent / "vm-admission"
    run = subprocess.run([str(vm_admission), "review", "-"], input=stream, capture_output=True, text=True, timeout=60)
    count = len([d for d in yaml.safe_load_all(stream) if d])
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1] == f"{count} objects: {count} admitted, 0 denied"
    if KUBECTL is not None:
        built = subprocess.run([KUBECTL, "kustomize", str(MANIFESTS)], capture_output=True, text=True, check=True)
        run = subprocess.run([str(vm_admission), "review", "-"], input=built.stdout, capture_output=True, text=True)
        assert run.returncode == 0 and run.stdout.endswith(" admitted, 0 denied\n"), run.stdout + run.stderr
