"""``python -m core.cli``: the same as the ``rea2seg`` console script."""

import sys

from core.cli import main

sys.exit(main())
