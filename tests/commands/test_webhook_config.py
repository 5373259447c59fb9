"""``vm-admission webhook-config``: schema-valid registrations whose match conditions send us what we review."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import celpy
import kubernetes_validate
import pytest
import yaml

from tests.testkit.paths import REPO
from webhook.certs import make_ca
from webhook.cli import main
from webhook.config import Config, parse_config
from webhook.engine import chain
from webhook.registration import Target, build_configurations

EXAMPLES = REPO / "examples"
RESOURCE = {"Pod": "pods", "VirtualMachineInstance": "virtualmachineinstances", "VirtualMachine": "virtualmachines"}
K8S_VERSION = "1.30"  # matchConditions are GA (beta and on by default since 1.28)


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.crt"
    path.write_bytes(make_ca("vm-admission test CA").cert_pem())
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["webhook-config", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def generated(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    docs = [d for d in yaml.safe_load_all(out) if d is not None]
    assert [d["kind"] for d in docs] == ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
    return docs


def hooks(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(d["kind"], h) for d in docs for h in d["webhooks"]]


# --- shape -----------------------------------------------------------------------------------------------


def test_service_configs_are_schema_valid_and_safe(capsys: pytest.CaptureFixture[str], ca_file: Path) -> None:
    docs = generated(capsys, "--service", "vm-admission/vm-admission", "--ca-file", str(ca_file))
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    pem = ca_file.read_bytes()
    for kind, hook in hooks(docs):
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["matchPolicy"] == "Equivalent"
        assert 1 <= hook["timeoutSeconds"] <= 5
        # Fail closed only where a user waits on the answer; pods and mutation fail open.
        closed = kind == "ValidatingWebhookConfiguration" and hook["rules"][0]["resources"] != ["pods"]
        assert hook["failurePolicy"] == ("Fail" if closed else "Ignore")
        assert re.fullmatch(r"[a-z-]+\.(mutate|validate)\.vm-admission\.io", hook["name"])
        phase = "mutate" if kind == "MutatingWebhookConfiguration" else "validate"
        assert hook["clientConfig"]["service"] == {
            "namespace": "vm-admission",
            "name": "vm-admission",
            "path": f"/{phase}",
            "port": 443,
        }
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == pem
        assert ("reinvocationPolicy" in hook) == (phase == "mutate")
        if phase == "mutate":
            assert hook["reinvocationPolicy"] == "IfNeeded"
        (expr,) = hook["namespaceSelector"]["matchExpressions"]
        assert expr["key"] == "kubernetes.io/metadata.name" and expr["operator"] == "NotIn"
        assert set(expr["values"]) == {"kube-system", "vm-admission"}


def test_rules_cover_pods_vmis_and_vm_updates(capsys: pytest.CaptureFixture[str], ca_file: Path) -> None:
    docs = generated(capsys, "--service", "ns/svc", "--ca-file", str(ca_file))
    for doc in docs:
        registered = {
            (g, r, op)
            for h in doc["webhooks"]
            for rule in h["rules"]
            for g in rule["apiGroups"]
            for r in rule["resources"]
            for op in rule["operations"]
        }
        pod_updates = ("", "pods", "UPDATE")  # validation only: pod network hotplug
        assert (pod_updates in registered) == (doc["kind"] == "ValidatingWebhookConfiguration")
        assert registered - {pod_updates} == {
            ("", "pods", "CREATE"),
            ("kubevirt.io", "virtualmachineinstances", "CREATE"),
            ("kubevirt.io", "virtualmachines", "CREATE"),
            ("kubevirt.io", "virtualmachines", "UPDATE"),
        }


def test_url_configs_call_mutate_and_validate(capsys: pytest.CaptureFixture[str], ca_file: Path) -> None:
    docs = generated(capsys, "--url", "https://10.0.0.5:8443/", "--ca-file", str(ca_file), "--failure-policy", "Ignore")
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    for kind, hook in hooks(docs):
        phase = "mutate" if kind == "MutatingWebhookConfiguration" else "validate"
        assert hook["clientConfig"]["url"] == f"https://10.0.0.5:8443/{phase}"
        assert "service" not in hook["clientConfig"]
        assert hook["failurePolicy"] == "Ignore"
        assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == ["kube-system"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--url", "http://10.0.0.5:8443"], "https://"),
        (["--url", "https://user@10.0.0.5:8443"], "user info"),
        (["--url", "https://10.0.0.5:8443/?x=1"], "query"),
        (["--service", "just-a-name"], "NAMESPACE/NAME"),
        (["--service", "ns/svc", "--port", "0"], "--port"),
    ],
)
def test_bad_flags_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str], ca_file: Path) -> None:
    code, out, err = run(capsys, *argv, "--ca-file", str(ca_file))
    assert (code, out) == (2, "")
    assert message in err


def test_ca_file_must_be_a_readable_pem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "--service", "ns/svc", "--ca-file", str(tmp_path / "nope.crt"))
    assert code == 2 and "cannot read" in err
    junk = tmp_path / "junk.crt"
    junk.write_text("not a certificate\n")
    code, _, err = run(capsys, "--service", "ns/svc", "--ca-file", str(junk))
    assert code == 2 and "not a PEM certificate" in err


def test_kubectl_accepts_the_output(capsys: pytest.CaptureFixture[str], ca_file: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    code, out, _ = run(capsys, "--service", "vm-admission/vm-admission", "--ca-file", str(ca_file))
    assert code == 0
    apply = subprocess.run(
        [kubectl, "apply", "--dry-run=client", "--validate=false", "-f", "-"],
        input=out,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if apply.returncode != 0 and re.search(r"connection refused|unable to recognize|no such host|server", apply.stderr):
        # client dry-run still asks an API server for discovery; without one, let kubectl read and map the
        # objects locally (it fails on anything that is not a well-formed, known kind)
        apply = subprocess.run(
            [kubectl, "annotate", "--local", "--dry-run=client", "-o", "name", "-f", "-", "checked=true"],
            input=out,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert apply.returncode == 0, apply.stderr
    assert "mutatingwebhookconfiguration.admissionregistration.k8s.io/vm-admission" in apply.stdout
    assert "validatingwebhookconfiguration.admissionregistration.k8s.io/vm-admission" in apply.stdout


# --- match conditions ------------------------------------------------------------------------------------


def _conditions(docs: list[dict[str, Any]], kind: str, phase: str, operation: str = "CREATE") -> list[dict[str, str]]:
    doc_kind = "MutatingWebhookConfiguration" if phase == "mutate" else "ValidatingWebhookConfiguration"
    (hook,) = [
        h
        for k, h in hooks(docs)
        if k == doc_kind and h["rules"][0]["resources"] == [RESOURCE[kind]] and operation in h["rules"][0]["operations"]
    ]
    conditions: list[dict[str, str]] = hook.get("matchConditions", [])
    return conditions


def called(conditions: list[dict[str, str]], obj: dict[str, Any], old: dict[str, Any] | None = None) -> bool:
    """Evaluate the conditions as the API server does: all true -> call; an error is a failure of the test."""
    env = celpy.Environment()
    activation = {
        "object": celpy.json_to_cel(obj),
        "oldObject": celpy.json_to_cel(old),
        "request": celpy.json_to_cel({"operation": "CREATE" if old is None else "UPDATE"}),
    }
    results = []
    for cond in conditions:
        result = env.program(env.compile(cond["expression"])).evaluate(activation)
        assert isinstance(result, celpy.celtypes.BoolType), (cond["name"], result)
        results.append(bool(result))
    return all(results)


def _example_objects() -> list[dict[str, Any]]:
    objs = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        objs.extend(
            d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict) and d.get("kind") in RESOURCE
        )
    return objs


EXTRA_OBJECTS: list[dict[str, Any]] = [
    # shapes the examples do not have: no annotations, no nodeSelector, no template metadata, legacy label
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {"containers": [{"name": "c"}]}},
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "b"},
        "spec": {"nodeSelector": {"cpumanager": "true"}, "containers": [{"name": "c", "image": "x"}]},
    },
    {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": "vm"},
        "spec": {"template": {"spec": {"domain": {"devices": {}}}}},
    },
    {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "metadata": {"name": "vmi"}, "spec": {}},
]


@pytest.fixture(scope="module")
def default_docs() -> list[dict[str, Any]]:
    return build_configurations(Target(namespace="vm-admission", service="vm-admission"), "Y2E=", "Fail")


@pytest.mark.parametrize(
    "obj", _example_objects() + EXTRA_OBJECTS, ids=lambda o: f"{o['kind']}/{o['metadata']['name']}"
)
def test_every_object_a_rule_acts_on_reaches_the_webhook(
    obj: dict[str, Any], default_docs: list[dict[str, Any]]
) -> None:
    result = chain(obj, Config())
    for phase, verdict in (("mutate", result.mutation), ("validate", result.validation)):
        acts = not verdict.allowed or bool(verdict.patch) or bool(verdict.warnings)
        if acts:
            assert called(_conditions(default_docs, obj["kind"], phase), obj), (phase, verdict)
        else:
            called(_conditions(default_docs, obj["kind"], phase), obj)  # evaluates without error either way


def test_pods_no_rule_concerns_are_not_sent(default_docs: list[dict[str, Any]]) -> None:
    for phase in ("mutate", "validate"):
        conditions = _conditions(default_docs, "Pod", phase)
        plain = {"metadata": {"name": "p", "labels": {"app": "web"}}, "spec": {"nodeSelector": {"disk": "ssd"}}}
        assert not called(conditions, plain)
        off = {"metadata": {"name": "p"}, "spec": {"nodeSelector": {"kubevirt.io/cpumanager": "false"}}}
        assert not called(conditions, off)
        mirror = {
            "metadata": {
                "name": "etcd-node1",
                "annotations": {"kubernetes.io/config.mirror": "abc", "vm-admission.io/guaranteed-qos": "true"},
            },
            "spec": {"nodeSelector": {"kubevirt.io/cpumanager": "true"}},
        }
        assert not called(conditions, mirror)
        pinned = {"metadata": {"name": "p"}, "spec": {"nodeSelector": {"kubevirt.io/cpumanager": "true"}}}
        assert called(conditions, pinned)


def test_pods_with_networks_are_sent_and_pod_updates_only_when_their_networks_change(
    default_docs: list[dict[str, Any]],
) -> None:
    key = "k8s.v1.cni.cncf.io/networks"
    with_networks = {"metadata": {"name": "p", "annotations": {key: "sriov-a"}}, "spec": {}}
    for phase in ("mutate", "validate"):
        assert called(_conditions(default_docs, "Pod", phase), with_networks)
    update = _conditions(default_docs, "Pod", "validate", "UPDATE")
    bare: dict[str, Any] = {"metadata": {"name": "p"}, "spec": {}}
    labelled = {"metadata": {"name": "p", "labels": {"a": "b"}, "annotations": {key: "sriov-a"}}, "spec": {}}
    other = {"metadata": {"name": "p", "annotations": {key: "sriov-a,sriov-b"}}, "spec": {}}
    blank = {"metadata": {"name": "p", "annotations": {key: ""}}, "spec": {}}
    assert called(update, with_networks, old=bare)  # added
    assert called(update, other, old=with_networks)  # changed
    assert called(update, bare, old=with_networks)  # removed
    assert not called(update, labelled, old=with_networks)  # any other update
    assert not called(update, bare, old=bare)
    assert not called(update, blank, old=bare)  # "" selects nothing, as no annotation
    mirror = {"metadata": {"name": "p", "annotations": {key: "x", "kubernetes.io/config.mirror": "m"}}, "spec": {}}
    assert not called(update, mirror, old=bare)
    with pytest.raises(ValueError):
        _conditions(default_docs, "Pod", "mutate", "UPDATE")  # never mutated on update


def test_vmis_and_vms_without_passthrough_skip_mutation_only(default_docs: list[dict[str, Any]]) -> None:
    vmi = {"metadata": {"name": "v"}, "spec": {"domain": {"devices": {}}}}
    assert not called(_conditions(default_docs, "VirtualMachineInstance", "mutate"), vmi)
    assert called(_conditions(default_docs, "VirtualMachineInstance", "validate"), vmi)  # every VMI is validated
    vm = {"metadata": {"name": "v"}, "spec": {"template": {"metadata": {"annotations": {"a": "b"}}, "spec": {}}}}
    assert not called(_conditions(default_docs, "VirtualMachine", "mutate"), vm)
    assert called(_conditions(default_docs, "VirtualMachine", "validate"), vm)


def test_configured_node_selector_labels_shape_the_pod_filter(
    capsys: pytest.CaptureFixture[str], ca_file: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text('cpuManager:\n  nodeSelectorLabels: {example.com/pinned: "yes"}\n')
    docs = generated(capsys, "--service", "ns/svc", "--ca-file", str(ca_file), "--config", str(config))
    conditions = _conditions(docs, "Pod", "mutate")
    assert called(conditions, {"metadata": {}, "spec": {"nodeSelector": {"example.com/pinned": "yes"}}})
    assert not called(conditions, {"metadata": {}, "spec": {"nodeSelector": {"kubevirt.io/cpumanager": "true"}}})
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"nodeSelector": {"example.com/pinned": "yes"}, "containers": [{"name": "c", "image": "x"}]},
    }
    assert chain(pod, parse_config(yaml.safe_load(config.read_text()))).mutation.patch  # the engine agrees


def test_every_selected_field_is_guarded_by_has(default_docs: list[dict[str, Any]]) -> None:
    """Selecting a missing field is an error in the API server's CEL (failurePolicy Fail would then reject the
    request): each ``has(object.a.b.c)`` must follow ``has(object.a.b)``, ``object.metadata`` aside (always set)."""
    for _, hook in hooks(default_docs):
        for cond in hook.get("matchConditions", []):
            expr = cond["expression"]
            assert "?." not in expr and ".?" not in expr  # optional syntax is not on in older API servers
            for m in re.finditer(r"has\((object(?:\.\w+)+)\)", expr):
                parts = m.group(1).split(".")
                for depth in range(2, len(parts)):
                    parent = ".".join(parts[:depth])
                    if parent == "object.metadata":
                        continue
                    assert f"has({parent})" in expr[: m.start()], (cond["name"], m.group(1))
            for m in re.finditer(r"(object(?:\.\w+)+)\[('[^']*')\]", expr):
                assert f"{m.group(2)} in {m.group(1)}" in expr[: m.start()], (cond["name"], m.group(0))


def test_vm_updates_are_sent_only_when_the_spec_changes(default_docs: list[dict[str, Any]]) -> None:
    vm = yaml.safe_load((EXAMPLES / "cpu" / "vm-dedicated-arm64-threads.yaml").read_text())
    assert not chain(vm, Config(), "UPDATE", vm).allowed  # our rules deny this VM, on UPDATE too
    relabelled = {**vm, "metadata": {**vm["metadata"], "labels": {"team": "ci"}, "finalizers": ["x/y"]}}
    deleting = {**vm, "metadata": {**vm["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    edited = {**vm, "spec": {**vm["spec"], "runStrategy": "Always"}}
    validate = _conditions(default_docs, "VirtualMachine", "validate")
    assert called(validate, vm)  # CREATE
    assert called(validate, edited, vm)
    assert not called(validate, relabelled, vm)  # label/finalizer updates of an existing VM are never blocked
    assert not called(validate, deleting, vm)
    mutate = _conditions(default_docs, "VirtualMachine", "mutate")
    declared = {
        **edited,
        "spec": {
            **edited["spec"],
            "template": {
                **edited["spec"]["template"],
                "metadata": {"annotations": {"vm-admission.io/passthrough": "10de:1eb8"}},
            },
        },
    }
    assert called(mutate, declared, vm)
    assert not called(mutate, declared, declared)
