"""The ``vm-admission`` commands, one module per verb: :mod:`~webhook.commands.serve`,
:mod:`~webhook.commands.review`, :mod:`~webhook.commands.audit`, :mod:`~webhook.commands.certs` and
:mod:`~webhook.commands.webhook_config`. :mod:`webhook.cli` holds the parser and imports only the verb it runs.
"""
