"""``python -m core.cli``: the same as the ``rea2seg`` console script."""

from core.cli import console

console()
