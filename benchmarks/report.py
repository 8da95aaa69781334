"""Shared output of the benchmark scripts: the machine facts and an atomic JSON write."""
from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np


def machine() -> dict[str, str]:
    """Versions and machine, stored beside every measurement."""
    return {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine()}


def write_report(result: dict[str, Any], out: str | Path) -> Path:
    """Write ``result`` as JSON to ``out`` (temp file + rename) and say where."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(path)
    print(f"wrote {path}")
    return path
