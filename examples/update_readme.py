"""Refresh the "What `review` prints" part of examples/README.md from the current `vm-admission review` output.

    python examples/update_readme.py          # rewrite the outputs
    python examples/update_readme.py --check  # exit 1 when they are out of date

The index (files, verdicts, descriptions) is written by hand: the verdicts are expectations, which
tests/commands/review/test_review.py checks. This script refuses to run when an example is missing from the index or
gets another verdict than the index says. Update examples listed in UPDATES are also shown as updates.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
README = EXAMPLES / "README.md"
HEADING = "## What `review` prints"
COMMAND = [sys.executable, "-m", "webhook.cli", "review"]
UPDATES = {  # new -> old, for `review --operation UPDATE --old OLD NEW`
    "network/vm-hotplug.yaml": "network/vm-multus-bridge.yaml",
    "network/vm-needs-restart.yaml": "network/vm-multus-bridge.yaml",
    "network/vm-slirp-only.yaml": "network/vm-slirp-only.yaml",
}
ROW = re.compile(r"^\|\s*\[([^\]]+\.(?:ya?ml|json))\]\([^)]*\)\s*\|\s*(admitted|denied)\b")


def review(*args: str) -> tuple[int, str]:
    run = subprocess.run([*COMMAND, *args], cwd=EXAMPLES.parent, capture_output=True, text=True, check=False)
    if run.returncode not in (0, 1):
        raise SystemExit(f"vm-admission review {' '.join(args)}: exit {run.returncode}: {run.stderr}")
    return run.returncode, run.stdout.rstrip()


def render(index: dict[str, str]) -> list[str]:
    lines = [HEADING, ""]
    directory = ""
    for rel, verdict in index.items():
        if rel.split("/")[0] != directory:
            directory = rel.split("/")[0]
            lines += [f"### {directory}/", ""]
        code, out = review(f"examples/{rel}")
        if code != {"admitted": 0, "denied": 1}[verdict]:
            raise SystemExit(f"{rel}: the index says {verdict} but review exits {code}: fix the rule or the index")
        lines += [f"#### {rel}", "", "```console", f"$ vm-admission review examples/{rel}", out]
        if rel in UPDATES:
            old = UPDATES[rel]
            _, upd = review("--operation", "UPDATE", "--old", f"examples/{old}", f"examples/{rel}")
            lines += [f"$ vm-admission review --operation UPDATE --old examples/{old} examples/{rel}", upd]
        lines += ["```", ""]
    return lines


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    head = text.split(HEADING)[0].rstrip("\n").splitlines()
    index = {m.group(1): m.group(2) for m in map(ROW.match, head) if m}
    files = sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
    missing = [f for f in files if f not in index]
    if missing:
        raise SystemExit(f"add these examples to the index in {README.name}, with their expected verdict: {missing}")
    new = "\n".join([*head, "", *render(index)]).rstrip() + "\n"
    if "--check" in argv:
        if new != text:
            print(f"{README} is out of date: run python examples/update_readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
