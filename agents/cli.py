"""Command-line helpers shared by the project's scripts (train.py, agents.refine, agents.sweep, agents.reproduce)."""
from __future__ import annotations

import argparse
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump): ``PROG: error: ...``, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")
