"""The benchmark's server: the webhook's own app with two extra routes, ``POST /bare`` and ``POST /decode``.

``/bare`` reads the body and returns a canned AdmissionReview response as large as the webhook's answer to
the launcher pod, through the same app, middleware, uvicorn and TLS settings as ``/mutate``. The ratio
webhook ÷ bare is thus the cost of the review alone. ``/decode`` also decodes the body with ``orjson.loads``
before answering the same bytes: the floor of any webhook that reads the object it reviews.

    python -m bench.bare_server --port 8443 --cert-dir /tmp/certs   # any ``vm-admission serve`` options
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from bench.inprocess import ours
from bench.payloads import payloads
from webhook.config import Config


def canned_response() -> bytes:
    """The webhook's own answer to the launcher pod: the bare endpoint returns these bytes."""
    pod = next(p for p in payloads() if p.name == "launcher-pod" and p.webhook == "mutate")
    return ours("mutate", Config())(pod.body)


def add_bare_route(app: Any) -> None:
    """Mount ``POST /bare`` and ``POST /decode``, declared like ``/mutate`` (so they pay FastAPI's routing too)."""
    body = canned_response()

    @app.post("/bare")  # type: ignore[untyped-decorator]
    async def bare(request: Request) -> Response:
        await request.body()
        return Response(body, media_type="application/json")

    @app.post("/decode")  # type: ignore[untyped-decorator]
    async def decode(request: Request) -> Response:
        orjson.loads(await request.body())  # the floor of any webhook that reads the object it reviews
        return Response(body, media_type="application/json")


def main(argv: Sequence[str] | None = None) -> int:
    """``vm-admission serve ARGS`` with ``/bare`` added to the app it builds (same settings, same stack)."""
    from webhook import server
    from webhook.cli import build_parser

    args = build_parser().parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    make_app = server.create_app

    def create_app_with_bare(state: server.AppState) -> Any:
        app = make_app(state)
        add_bare_route(app)
        return app

    server.create_app = create_app_with_bare  # serve_command looks create_app up at call time
    return server.serve_command(args)


if __name__ == "__main__":
    sys.exit(main())
