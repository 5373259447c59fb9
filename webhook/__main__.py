"""``python -m webhook``: the ``vm-admission`` command line (:mod:`webhook.cli`)."""

import sys

from webhook.cli import main

sys.exit(main())
