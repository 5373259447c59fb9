"""``vm-admission serve``: the HTTPS admission webhook on uvicorn (docs/operations.md, "Serving").

The app, its state and the graceful shutdown are :mod:`webhook.server`; this module reads the flags, loads
certificates and config, and runs uvicorn with the TLS context the server reloads.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from webhook import build
from webhook.config import ConfigError
from webhook.server import WebhookServer, build_state, create_app, log, setup_logging


def serve_command(args: argparse.Namespace) -> int:
    """``vm-admission serve``: exit 0 after a graceful shutdown, 2 on bad config or certificates."""
    setup_logging(args.log_level)
    try:
        state = build_state(args)
    except ConfigError as exc:
        print(f"vm-admission serve: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # unreadable cert dir, a broken pair, a bad client CA
        print(f"vm-admission serve: cannot load certificates from {args.cert_dir}: {exc}", file=sys.stderr)
        return 2
    assert state.certs is not None
    config = uvicorn.Config(
        create_app(state),
        host=args.host,
        port=args.port,
        http="httptools",  # the C parser (uvicorn[standard]); h11 and its protocol were ~1/3 of a request's samples
        loop="auto",
        interface="asgi3",  # said, not detected: the app is a compiled class (webhook.endpoint.Front)
        lifespan="on",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        limit_concurrency=int(getattr(args, "limit_concurrency", 1000)),
        timeout_keep_alive=int(getattr(args, "keep_alive", 30)),
        timeout_graceful_shutdown=int(getattr(args, "graceful_timeout", 20)),
    )
    config.load()
    config.ssl = state.certs.context  # our context (TLS policy, reloadable), not one built from file names
    server = WebhookServer(config, state, float(getattr(args, "shutdown_delay", 5.0)))
    log.info(
        "serving",
        extra={
            "fields": {
                "url": f"https://{args.host}:{args.port}",
                "certDir": args.cert_dir,
                "config": args.config,
                "build": build.flavor(),
            }
        },
    )
    server.run()
    log.info("stopped")
    return 0
