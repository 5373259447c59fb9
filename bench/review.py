"""``vm-admission review`` at scale: ``python -m bench.review [--documents 10000] [--outputs text,sarif]``.

Writes one multi-document YAML stream of N mixed documents (bench/payloads.py's objects in turn: the ~8.3 KB
virt-launcher pod, an unrelated pod, a dedicated-CPU VMI, a VM; each with its own name), then runs
``vm-admission review FILE -o OUTPUT --schema off|strict`` as a subprocess per case, in turns, and reports
documents/s and the process's peak RSS (``VmHWM`` from its own /proc/self/status, read just before it exits).
The schema on/off ratio is the cost of ``--schema strict`` over the rules alone (the issue's bound: at most
2x). ``--small N`` adds a run of N documents per case: peak RSS at N and at the full count shows whether memory
stays flat as the document count grows (the review streams: one object at a time).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.audit import MEASURED_MAIN  # the CLI, measuring its own peak RSS and time
from bench.payloads import OBJECTS

REPO = Path(__file__).resolve().parent.parent
KINDS = ("launcher-pod", "unrelated-pod", "dedicated-vmi", "vm")


def stream(n: int) -> str:
    """N documents, the payload objects in turn, each renamed so that every object is its own."""
    texts = {}
    for kind in KINDS:
        obj = OBJECTS[kind]()
        meta = obj.setdefault("metadata", {})
        meta.pop("generateName", None)
        meta["name"] = "NAME-PLACEHOLDER"
        texts[kind] = yaml.dump(obj, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)
    return "---\n".join(
        texts[KINDS[i % len(KINDS)]].replace("NAME-PLACEHOLDER", f"{KINDS[i % len(KINDS)]}-{i}") for i in range(n)
    )


def measure(path: Path, output: str, schema: str) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-c", MEASURED_MAIN, "review", str(path), "-o", output, "--schema", schema],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=1800,
        check=False,
    )
    line = next((x for x in reversed(run.stderr.splitlines()) if x.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"review did not finish: {run.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(line[len("BENCH ") :])
    if result["rc"] not in (0, 1):
        raise SystemExit(f"review exited {result['rc']}: {run.stderr[-2000:]}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000, help="also run this many documents (0: skip)")
    parser.add_argument("--outputs", default="text,sarif")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line too")
    args = parser.parse_args(argv)
    outputs = [o for o in args.outputs.split(",") if o]
    counts = [n for n in (args.small, args.documents) if n]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        for n in counts:
            path = Path(tmp) / f"stream-{n}.yaml"
            path.write_text(stream(n), encoding="utf-8")
            size = path.stat().st_size
            for output in outputs:
                for schema in ("off", "strict"):
                    started = time.monotonic()
                    r = measure(path, output, schema)
                    rows.append(
                        {
                            "documents": n,
                            "bytes": size,
                            "output": output,
                            "schema": schema,
                            "seconds": r["seconds"],
                            "wall": time.monotonic() - started,
                            "docs_per_s": n / r["seconds"],
                            "peak_rss_mib": r["vmhwm_kib"] / 1024,
                        }
                    )
    print(f"vm-admission review, {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    print(f"{'documents':>9}  {'output':<6}  {'schema':<6}  {'seconds':>7}  {'docs/s':>7}  {'peak RSS MiB':>12}")
    for r in rows:
        print(
            f"{r['documents']:>9}  {r['output']:<6}  {r['schema']:<6}  {r['seconds']:>7.2f}  {r['docs_per_s']:>7.0f}  "
            f"{r['peak_rss_mib']:>12.1f}"
        )
    for n in counts:
        for output in outputs:
            off = next(r for r in rows if (r["documents"], r["output"], r["schema"]) == (n, output, "off"))
            on = next(r for r in rows if (r["documents"], r["output"], r["schema"]) == (n, output, "strict"))
            print(f"schema cost, {n} documents, -o {output}: {on['seconds'] / off['seconds']:.2f}x the rules alone")
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
