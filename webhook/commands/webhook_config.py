"""``vm-admission webhook-config``: print the Mutating- and ValidatingWebhookConfiguration for a running webhook
(docs/review-and-deploy.md). What they hold is :mod:`webhook.registration`, built from the admission table."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from webhook.config import ConfigError, load_config
from webhook.registration import (
    WebhookConfigError,
    build_configurations,
    parse_service,
    parse_url,
    read_ca_bundle,
    render,
)


def webhook_config_command(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """``vm-admission webhook-config``: print both configurations; exit 2 with a message on bad flags."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        target = parse_url(args.url) if args.url is not None else parse_service(args.service, args.port)
        ca_bundle = read_ca_bundle(args.ca_file)
        config = load_config(getattr(args, "config", None))
    except (WebhookConfigError, ConfigError) as exc:
        print(f"vm-admission webhook-config: {exc}", file=stderr)
        return 2
    stdout.write(render(build_configurations(target, ca_bundle, args.failure_policy, config)))
    return 0
