"""``vm-admission certs``: generate a CA and serving certificate (docs/operations.md, "Certificates and rotation")."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from webhook.certs import ca_bundle, ensure_certs


def certs_command(args: argparse.Namespace) -> int:
    """``vm-admission certs``: generate into ``--out`` when missing and print the caBundle."""
    out = Path(args.out)
    try:
        generated = ensure_certs(out, args.dns_name)
        bundle = ca_bundle(out)
    except OSError as exc:
        print(f"vm-admission certs: {exc}", file=sys.stderr)
        return 2
    if not generated:
        print(f"{out}: tls.crt and tls.key exist; left unchanged", file=sys.stderr)
    print(bundle)
    return 0
