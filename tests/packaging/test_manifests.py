"""manifests/ (kustomize base and cert-manager overlay) and the Dockerfile: they render, validate and agree."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.testkit.paths import REPO
from webhook.cli import build_parser
from webhook.config import Config, parse_config
from webhook.registration import Target, build_configurations

MANIFESTS = REPO / "manifests"
K8S_VERSION = "1.30"
CERT_MANAGER_KINDS = {"Issuer", "Certificate"}
KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


def kustomize(path: Path) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    run = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return [d for d in yaml.safe_load_all(run.stdout) if d is not None]


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return kustomize(MANIFESTS)


@pytest.fixture(scope="module")
def overlay() -> list[dict[str, Any]]:
    return kustomize(MANIFESTS / "overlays" / "cert-manager")


def one(objs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objs if o["kind"] == kind]
    return found


def validate_all(objs: list[dict[str, Any]]) -> set[str]:
    """Strict schema validation of every kind kubernetes_validate knows; returns the kinds it does not know."""
    unknown = set()
    for obj in objs:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            unknown.add(obj["kind"])
    return unknown


# --- rendering and schemas -------------------------------------------------------------------------------


@needs_kubectl
def test_base_renders_and_validates(base: list[dict[str, Any]]) -> None:
    assert sorted(o["kind"] for o in base) == sorted(
        [
            "Namespace",
            "ServiceAccount",
            "ConfigMap",
            "Service",
            "Deployment",
            "PodDisruptionBudget",
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ]
    )
    assert validate_all(base) == set()
    namespaced = [o for o in base if o["kind"] not in ("Namespace",) and not o["kind"].endswith("Configuration")]
    assert {o["metadata"]["namespace"] for o in namespaced} == {"vm-admission"}


@needs_kubectl
def test_cert_manager_overlay_renders_and_validates(overlay: list[dict[str, Any]]) -> None:
    assert validate_all(overlay) == CERT_MANAGER_KINDS
    for obj in overlay:
        if obj["kind"] in CERT_MANAGER_KINDS:
            assert obj["apiVersion"] == "cert-manager.io/v1"
            assert obj["metadata"]["namespace"] == "vm-admission"


# --- the Deployment --------------------------------------------------------------------------------------


@needs_kubectl
def test_deployment_is_highly_available_and_locked_down(base: list[dict[str, Any]]) -> None:
    deploy = one(base, "Deployment")
    spec = deploy["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 2
    term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert "memory" in container["resources"]["limits"]


@needs_kubectl
def test_probes_and_ports(base: list[dict[str, Any]]) -> None:
    container = one(base, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == ("https", 8443)
    probes = {k: container[k]["httpGet"] for k in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert all(p["scheme"] == "HTTPS" and p["port"] == "https" for p in probes.values())
    service = one(base, "Service")
    (sport,) = service["spec"]["ports"]
    assert (sport["port"], sport["targetPort"]) == (443, "https")
    labels = one(base, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    pdb = one(base, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


@needs_kubectl
def test_container_args_are_a_valid_serve_command_with_mounted_files(base: list[dict[str, Any]]) -> None:
    pod = one(base, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = build_parser().parse_args(container["args"])
    assert (args.command, args.host, args.port) == ("serve", "0.0.0.0", 8443)
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts[args.cert_dir]]["secret"]["secretName"] == "vm-admission-tls"
    config_dir, _, config_file = args.config.rpartition("/")
    config_map = volumes[mounts[config_dir]]["configMap"]["name"]
    rendered = [o for o in base if o["kind"] == "ConfigMap" and o["metadata"]["name"] == config_map]
    assert rendered, f"the Deployment mounts ConfigMap {config_map}, which the base does not render"
    # the shipped config is valid and spells out the defaults
    assert parse_config(yaml.safe_load(rendered[0]["data"][config_file])) == Config()


# --- webhooks --------------------------------------------------------------------------------------------


def test_base_webhooks_are_what_webhook_config_generates() -> None:
    shipped = list(yaml.safe_load_all((MANIFESTS / "base" / "webhooks.yaml").read_text()))
    expected = build_configurations(Target(namespace="vm-admission", service="vm-admission"), None)
    assert shipped == expected, "regenerate manifests/base/webhooks.yaml (see its header)"


@needs_kubectl
def test_webhooks_call_the_rendered_service(base: list[dict[str, Any]]) -> None:
    service = one(base, "Service")
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        for hook in one(base, kind)["webhooks"]:
            ref = hook["clientConfig"]["service"]
            assert (ref["namespace"], ref["name"]) == (service["metadata"]["namespace"], service["metadata"]["name"])
            assert ref["port"] == service["spec"]["ports"][0]["port"]
            assert "caBundle" not in hook["clientConfig"]
            excluded = hook["namespaceSelector"]["matchExpressions"][0]["values"]
            assert service["metadata"]["namespace"] in excluded and "kube-system" in excluded


@needs_kubectl
def test_cert_manager_issues_the_mounted_secret_and_injects_its_ca(overlay: list[dict[str, Any]]) -> None:
    service = one(overlay, "Service")
    ns, name = service["metadata"]["namespace"], service["metadata"]["name"]
    certs = {o["metadata"]["name"]: o for o in overlay if o["kind"] == "Certificate"}
    issuers = {o["metadata"]["name"]: o for o in overlay if o["kind"] == "Issuer"}
    pod = one(overlay, "Deployment")["spec"]["template"]["spec"]
    secret = next(v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v)
    (serving,) = [c for c in certs.values() if c["spec"]["secretName"] == secret]
    assert f"{name}.{ns}.svc" in serving["spec"]["dnsNames"]
    # every issuer referenced exists, and the chain ends in the self-signed issuer
    issuer = issuers[serving["spec"]["issuerRef"]["name"]]
    while "selfSigned" not in issuer["spec"]:
        ca_cert = next(c for c in certs.values() if c["spec"]["secretName"] == issuer["spec"]["ca"]["secretName"])
        assert ca_cert["spec"]["isCA"] is True
        issuer = issuers[ca_cert["spec"]["issuerRef"]["name"]]
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        annotations = one(overlay, kind)["metadata"]["annotations"]
        assert annotations["cert-manager.io/inject-ca-from"] == f"{ns}/{serving['metadata']['name']}"


# --- the image -------------------------------------------------------------------------------------------


def _instruction(dockerfile: str, name: str) -> list[str]:
    return re.findall(rf"^{name}\s+(.+)$", dockerfile, flags=re.MULTILINE)


def test_dockerfile_runs_serve_as_non_root_on_8443() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    froms = _instruction(dockerfile, "FROM")
    assert len(froms) == 2 and froms[0].endswith(" AS builder")  # multi-stage
    (base_image,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, flags=re.MULTILINE)
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base_image)  # pinned tag, not a moving one
    assert _instruction(dockerfile, "USER") == ["65532:65532"]
    assert _instruction(dockerfile, "EXPOSE") == ["8443"]
    (entrypoint,) = _instruction(dockerfile, "ENTRYPOINT")
    assert json.loads(entrypoint) == ["vm-admission"]
    (cmd,) = _instruction(dockerfile, "CMD")
    args = build_parser().parse_args(json.loads(cmd))
    assert (args.command, args.host, args.port) == ("serve", "0.0.0.0", 8443)
    # the final stage installs our wheels only: no index, no source tree
    final = dockerfile.split("\nFROM ")[-1]
    assert "--no-index" in final and "COPY" not in final
