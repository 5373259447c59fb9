"""Drive ``wrk`` (pinned to its own core) against a local HTTPS server and read its results as numbers.

A generated Lua script POSTs the payloads with ``Content-Type: application/json`` and prints one JSON line
in ``done()`` (requests, duration, latency percentiles, errors), so nothing is scraped from wrk's text.
Loopback (127.0.0.1) only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "wrk is not installed: apt-get update && apt-get install -y wrk (Debian/Ubuntu), then re-run"

_LUA = r"""
local bodies = {}
local paths = {}
local n = 0
local limit = %(limit)d
local count = 0
for line in io.lines("%(index)s") do
  local path, file = line:match("^(%%S+) (.+)$")
  local f = assert(io.open(file, "rb"))
  n = n + 1
  paths[n] = path
  bodies[n] = f:read("*a")
  f:close()
end
local i = 0
local headers = {["Content-Type"] = "application/json"%(extra)s}
request = function()
  i = i %% n + 1
  return wrk.format("POST", paths[i], headers, bodies[i])
end
%(response)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""

_STOP_AFTER = """
response = function(status, headers, body)
  count = count + 1
  if limit > 0 and count >= limit then wrk.thread:stop() end
end
"""


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    duration_us: int
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int
    connect: int
    read: int
    write: int
    status: int
    timeout: int

    @property
    def rps(self) -> float:
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0

    @property
    def errors(self) -> int:
        """Socket errors, timeouts and non-2xx/3xx answers."""
        return self.connect + self.read + self.write + self.status + self.timeout


def available() -> bool:
    return shutil.which("wrk") is not None


def run(
    base_url: str,
    requests: list[tuple[str, bytes]],
    *,
    connections: int,
    duration_s: float,
    stop_after: int = 0,
    close_connections: bool = False,
    core: int | None = 1,
    workdir: Path | None = None,
) -> WrkResult:
    """Run wrk with one thread for ``duration_s`` (or until ``stop_after`` responses), cycling ``requests``.

    ``requests`` are ``(path, body)`` pairs. ``close_connections`` sends ``Connection: close`` so every request
    pays a new TCP connection and TLS handshake.
    """
    if not base_url.startswith("https://127.0.0.1:"):
        raise ValueError("the benchmark only talks to 127.0.0.1")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        d = Path(tmp)
        index = d / "index.txt"
        lines = []
        for i, (path, body) in enumerate(requests):
            f = d / f"body{i}.json"
            f.write_bytes(body)
            lines.append(f"{path} {f}")
        index.write_text("\n".join(lines) + "\n")
        script = d / "post.lua"
        script.write_text(
            _LUA
            % {
                "index": index,
                "limit": stop_after,
                "extra": ', ["Connection"] = "close"' if close_connections else "",
                "response": _STOP_AFTER if stop_after else "",
            }
        )
        cmd = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
        ]
        if core is not None:
            cmd = ["taskset", "-c", str(core), *cmd]
        out = subprocess.run([*cmd, base_url], capture_output=True, text=True, check=True, timeout=duration_s + 60)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return WrkResult(**json.loads(line[len("WRKJSON ") :]))
    raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
