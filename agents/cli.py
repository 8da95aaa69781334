"""Command-line helpers shared by the project's scripts (train.py, agents.refine, agents.sweep, agents.reproduce)."""
from __future__ import annotations

import argparse
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump): ``PROG: error: ...``, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def require_ray(parser: OneLineParser) -> None:
    """Exit with a one-line error when Ray (the ``sweep`` extra) is missing."""
    try:
        import ray  # noqa: F401
    except ImportError:
        parser.error('Ray is not installed: pip install -e ".[sweep]" (or use --sequential)')
