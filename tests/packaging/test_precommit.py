"""The pre-commit hook (.pre-commit-hooks.yaml), with the real pre-commit: ``try-repo`` on a scratch repository of
manifests, then a real ``git commit`` through an installed hook. pre-commit builds the hook's environment itself
(pip install of this repository from a commit of it, dependencies from PyPI): about a minute."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.testkit.paths import REPO
from tests.testkit.tools import require

EXAMPLES = REPO / "examples"
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"
GOOD = EXAMPLES / "cpu" / "vmi-dedicated.yaml"
BAD = EXAMPLES / "cpu" / "vmi-dedicated-fractional-cpu.yaml"
# what pip needs to install the package from a copy of the tree (compiled modules and caches left out)
PACKAGE_FILES = ["pyproject.toml", "setup.py", "README.md", ".pre-commit-hooks.yaml", "webhook"]


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    run = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, f"git {' '.join(args)}: {run.stdout}{run.stderr}"
    return run.stdout.strip()


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A git repository holding this working tree's package and hook definition at one commit."""
    if shutil.which("git") is None:
        require("git is not installed")
    if not PRE_COMMIT.exists():
        require("pre-commit is not installed (pip install -e '.[test]')")
    repo = tmp_path_factory.mktemp("hook-repo")
    for name in PACKAGE_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__", "build"))
        else:
            shutil.copy2(src, repo / name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "vm-admission")
    return repo, git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def manifests_repo(tmp_path: Path) -> Path:
    """A project with a good and a bad VMI, a CI workflow (not Kubernetes) and a README."""
    project = tmp_path / "project"
    (project / "vms").mkdir(parents=True)
    shutil.copy2(GOOD, project / "vms" / "good.yaml")
    shutil.copy2(BAD, project / "vms" / "bad.yaml")
    (project / "ci.yml").write_text("on: [push]\njobs: {test: {runs-on: x}}\n")
    (project / "README.md").write_text("# VMs\n")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    return project


def pre_commit(project: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The hook's own install of this repo: pure Python (the compiled default build takes minutes to build).
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never", "VM_ADMISSION_COMPILE": "0"}
    env.pop("PRE_COMMIT_ALLOW_NO_CONFIG", None)
    return subprocess.run([str(PRE_COMMIT), *args], cwd=project, capture_output=True, text=True, env=env, timeout=600)


def test_hook_definition_runs_review_on_manifests() -> None:
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert (hook["id"], hook["entry"], hook["language"]) == ("vm-admission-review", "vm-admission review", "python")
    files = re.compile(hook["files"])
    assert all(files.search(f) for f in ("a.yaml", "dir/b.yml", "c.json"))
    assert not any(files.search(f) for f in ("README.md", "x.yaml.txt"))
    exclude = re.compile(hook["exclude"])
    assert exclude.search("charts/x/templates/deployment.yaml") and not exclude.search("vms/good.yaml")


def test_try_repo_fails_on_the_bad_vmi_and_prints_its_causes(
    hook_repo: tuple[Path, str], pre_commit_home: Path, tmp_path: Path
) -> None:
    repo, _ = hook_repo
    project = manifests_repo(tmp_path)
    run = pre_commit(project, pre_commit_home, "try-repo", str(repo), "vm-admission-review", "--all-files")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "vm-admission review" in out and "Failed" in out
    assert "VirtualMachineInstance default/half-pinned: DENIED" in out
    assert "✗ vms/bad.yaml:14:9: spec.domain.resources.requests.cpu:" in out  # file:line:col of the field
    assert "VirtualMachineInstance databases/pinned-db: ADMITTED" in out
    assert "ci.yml: document 1 is not a Kubernetes object" in out  # passed over, not an error
    run = pre_commit(project, pre_commit_home, "try-repo", str(repo), "vm-admission-review", "--files", "vms/good.yaml")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Passed" in run.stdout


def test_an_installed_hook_blocks_the_commit_of_a_bad_vmi(
    hook_repo: tuple[Path, str], pre_commit_home: Path, tmp_path: Path
) -> None:
    repo, rev = hook_repo
    project = manifests_repo(tmp_path)
    config = {"repos": [{"repo": str(repo), "rev": rev, "hooks": [{"id": "vm-admission-review"}]}]}
    (project / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    git(project, "add", ".pre-commit-config.yaml")
    installed = pre_commit(project, pre_commit_home, "install")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(pre_commit_home),
        "PRE_COMMIT_COLOR": "never",
        "VM_ADMISSION_COMPILE": "0",
    }
    commit = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "vms"]
    run = subprocess.run(commit, cwd=project, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode != 0, run.stdout + run.stderr
    assert "✗ vms/bad.yaml:14:9: spec.domain.resources.requests.cpu:" in run.stdout + run.stderr
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True).returncode != 0  # no commit
    git(project, "rm", "-q", "--cached", "vms/bad.yaml")
    run = subprocess.run(commit, cwd=project, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert git(project, "ls-files").split() == [".pre-commit-config.yaml", "README.md", "ci.yml", "vms/good.yaml"]
