"""``vm-admission webhook-config``: print the Mutating- and ValidatingWebhookConfiguration for a running webhook
(docs/review-and-deploy.md).

What they hold, and for now the verb's body (``webhook_config_command``), are :mod:`webhook.registration`: the
function moves here once the admission-table rework of registration.py has merged (a pure rename keeps that
merge clean).
"""

from __future__ import annotations

from webhook.registration import webhook_config_command

__all__ = ["webhook_config_command"]
