"""Baseline results cached on disk per (task, test layout, planner, code version).

A planner's episode on a test layout is deterministic: the same code, env keywords and layout seed
give the same record. Each record is stored as ``<cache>/<task>-<settings hash>/<planner>/<code
version>/<seed>.json`` (written atomically, one per layout, so a killed benchmark keeps every
layout it finished). The code version hashes the source of ``secure_env`` and ``baselines``: a
change to the physics or to a planner replans, adding an algorithm to a benchmark never does.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from agents.benchmark.suite import Task


@lru_cache(maxsize=1)
def code_version() -> str:
    """A 12-hex hash of every ``.py`` file of the ``secure_env`` and ``baselines`` packages."""
    import baselines
    import secure_env

    h = hashlib.sha1()
    for pkg in (secure_env, baselines):
        root = Path(pkg.__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root.parent)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def task_key(task: Task) -> str:
    """``<task>-<hash of env id and env keywords>``: a task renamed or re-keyed never reuses plans."""
    text = json.dumps([task.env_id, dict(task.env_kwargs)], sort_keys=True, default=str)
    return f"{task.name}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def plan_path(cache: Path, task: Task, planner: str, seed: int) -> Path:
    return Path(cache) / task_key(task) / planner / code_version() / f"{int(seed)}.json"


def write_json(path: Path, obj: Any) -> None:
    """Strict JSON (NaN/inf -> null, as the scoreboard writes it), written through a temp file and a
    rename (:func:`agents.runs.atomic_write_text`)."""
    from agents.evaluation import _finite, _json_default
    from agents.runs import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(_finite(obj), indent=1, allow_nan=False, default=_json_default))


def read_record(path: Path) -> dict[str, Any] | None:
    """A cached record, or None when absent or unreadable (then it is planned again)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "seed" in record else None


def baseline_records(task: Task, planner: str, seeds: list[int], cache: Path) -> dict[str, Any]:
    """Every ``seeds`` layout's record of ``planner`` on ``task``, from the cache where present,
    planned and cached otherwise. Returns ``{"records": [...], "computed": n, "reused": n}``."""
    from agents.evaluation import baseline_policies, run_policy

    cls = baseline_policies(task.env_id)[planner]
    records, computed, reused = [], 0, 0
    for seed in seeds:
        path = plan_path(cache, task, planner, seed)
        record = read_record(path)
        if record is None:
            record = run_policy(cls, task.env_id, [int(seed)], **dict(task.env_kwargs)).records[0]
            write_json(path, record)
            computed += 1
        else:
            reused += 1
        records.append(record)
    return {"records": records, "computed": computed, "reused": reused}
