"""README's Install section, run as written: the Helm commands (as ``helm template`` with the README's values
file) and the kustomize ones (``kubectl kustomize`` of the README's paths and kustomization) render objects the
Kubernetes schemas accept, with what the text promises."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.packaging.test_manifests import kustomize, needs_kubectl, one, validate_all
from tests.testkit.chart import CHART
from tests.testkit.paths import REPO
from tests.testkit.tools import tool

README = (REPO / "README.md").read_text(encoding="utf-8")
MANAGED_KINDS = {"Issuer", "Certificate", "ServiceMonitor", "PrometheusRule"}


def section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    m = re.compile(rf"^#{{1,{len(level)}}} ", flags=re.MULTILINE).search(text, start)
    return text[start : m.start() if m else len(text)]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def commands(block: str) -> list[list[str]]:
    """Shell commands of a block (``\\`` continuations joined), split like the shell would."""
    return [shlex.split(line, comments=True) for line in block.replace("\\\n", " ").splitlines() if line.strip()]


INSTALL = section(README, "## Install")
HELM = section(INSTALL, "### Helm")
KUSTOMIZE = section(INSTALL, "### kustomize")


def test_install_shows_helm_first_then_kustomize() -> None:
    assert INSTALL.index("### Helm") < INSTALL.index("### kustomize")


def test_readme_helm_commands_render_what_the_text_promises(tmp_path: Path) -> None:
    (sh,) = blocks(HELM, "sh")
    create, label, install = commands(sh)
    assert create[:3] == ["kubectl", "create", "namespace"]
    namespace = create[3]
    assert label[:4] == ["kubectl", "label", "namespace", namespace]
    assert install[:2] == ["helm", "install"]
    (values_text,) = blocks(HELM, "yaml")
    values_file = install[install.index("--values") + 1]
    (tmp_path / values_file).write_text(values_text)
    args = ["template", *install[2:]]
    args[args.index("--values") + 1] = str(tmp_path / values_file)
    release, chart = args[1], args[2]
    assert (REPO / chart).resolve() == CHART
    assert args[args.index("--namespace") + 1] == namespace
    run = subprocess.run([tool("helm"), *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    objs: list[dict[str, Any]] = [d for d in yaml.safe_load_all(run.stdout) if d]
    assert validate_all(objs) <= MANAGED_KINDS
    kinds = {o["kind"] for o in objs}
    assert {"CronJob", "ServiceMonitor", "PrometheusRule", "Certificate", "ClusterRoleBinding"} <= kinds
    assert "Namespace" not in kinds  # created by the kubectl commands above, as the text says
    # the namespace the README creates gets the label the chart (and the kustomize base) would give it
    rendered_ns = [
        d
        for d in yaml.safe_load_all(
            subprocess.run(
                [tool("helm"), "template", release, chart, "-n", namespace, "--set", "namespace.create=true"],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            ).stdout
        )
        if d and d["kind"] == "Namespace"
    ]
    key, _, value = label[4].partition("=")
    assert rendered_ns[0]["metadata"]["labels"][key] == value
    deploy = one(objs, "Deployment")
    assert deploy["metadata"]["namespace"] == namespace
    assert deploy["spec"]["template"]["spec"]["automountServiceAccountToken"] is True  # cluster.watch: true
    values = yaml.safe_load(values_text)
    assert one(objs, "CronJob")["spec"]["schedule"] == values["audit"]["schedule"]


@needs_kubectl
def test_readme_kustomize_commands_render(tmp_path: Path) -> None:
    (sh,) = blocks(KUSTOMIZE, "sh")
    ((*apply, path),) = commands(sh)
    assert apply == ["kubectl", "apply", "-k"]
    objs = kustomize(REPO / path)
    assert validate_all(objs) <= MANAGED_KINDS and "Certificate" in {o["kind"] for o in objs}


@needs_kubectl
def test_readme_kustomization_with_components_renders(tmp_path: Path) -> None:
    (kustomization,) = blocks(KUSTOMIZE, "yaml")
    site = tmp_path / "site"
    site.mkdir()
    (site / "kustomization.yaml").write_text(kustomization)
    (site / "vm-admission").symlink_to(REPO)  # "next to a checkout of this repository in vm-admission/"
    objs = kustomize(site)
    assert validate_all(objs) <= MANAGED_KINDS
    kinds = {o["kind"] for o in objs}
    assert {"CronJob", "ServiceMonitor", "PrometheusRule", "Certificate", "ClusterRoleBinding"} <= kinds


def test_readme_pre_commit_snippet_names_the_hook() -> None:
    (snippet,) = blocks(section(INSTALL, "### Monitoring and pre-commit"), "yaml")
    (repo,) = yaml.safe_load(snippet)["repos"]
    hooks = {h["id"] for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    assert {h["id"] for h in repo["hooks"]} <= hooks
