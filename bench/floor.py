"""The Python floor: a raw ASGI app on uvicorn with httptools that decodes the review and answers with its uid.

No FastAPI, no edge checks, no rules, no metrics, no logging: ``orjson.loads`` of the body, then an allowed
AdmissionReview in the request's apiVersion. The same TLS context as ``vm-admission serve``
(:func:`webhook.certs.server_context`) and the same uvicorn settings (httptools, uvloop when installed).
Any webhook in Python that reads the object it reviews pays at least this.

    python -m bench.floor --port 9444 --cert-dir /tmp/certs     # certificates generated when missing
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import orjson
import uvicorn

from webhook import certs

_HEADERS = [(b"content-type", b"application/json")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":  # lifespan is off; nothing else reaches here
        return
    if scope["method"] == "GET":  # /healthz, for the bench's start-up check
        await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": b'{"status":"ok"}'})
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    doc = orjson.loads(body)
    out = orjson.dumps(
        {
            "apiVersion": doc["apiVersion"],
            "kind": "AdmissionReview",
            "response": {"uid": doc["request"]["uid"], "allowed": True},
        }
    )
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": out})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9444)
    parser.add_argument("--cert-dir", default="certs")
    args = parser.parse_args(argv)
    certs.ensure_certs(args.cert_dir)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        http="httptools",
        loop="auto",
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
    )
    config.load()
    config.ssl = certs.server_context(f"{args.cert_dir}/tls.crt", f"{args.cert_dir}/tls.key")
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
