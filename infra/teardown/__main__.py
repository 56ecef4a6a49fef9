"""``python -m infra.teardown``: the same as ``python -m infra teardown``."""

import sys

from infra.teardown.cli import main

sys.exit(main())
