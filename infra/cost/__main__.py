"""``python -m infra.cost``: the same as ``python -m infra cost``."""

import sys

from infra.cost.cli import main

sys.exit(main())
