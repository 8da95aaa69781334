"""The benchmark protocol: learning agents against the papers' optimisers on the same unseen layouts.

    python -m agents.benchmark --suite leaderboard --preset standard [--out DIR] [--address ADDR]
                               [--num-cpus N] [--sequential] [--algo package.module:Class] [--dry-run]

Modules, one concern each:

- :mod:`agents.benchmark.suite`: the versioned suite file (tasks, suites, algorithms, presets) and
  the plan of trials it gives.
- :mod:`agents.benchmark.layouts`: training pools and test sets of layouts as seed blocks
  (:class:`~agents.benchmark.layouts.LayoutPool`).
- :mod:`agents.benchmark.plans`: baseline episodes cached per (task, layout, planner, code version).
- :mod:`agents.benchmark.trials`: one trial (train + play the test layouts, refine, or a custom policy).
- :mod:`agents.benchmark.runner`: every job on Ray (or in this process), resumable, with progress.
- :mod:`agents.benchmark.stats`: normalised scores, feasibility-first ranking, rliable statistics.
- :mod:`agents.benchmark.report`: ``records.csv``, ``results.json``, ``report.md`` and the plots.

The protocol and the leaderboard: ``docs/benchmark.md``.
"""
from agents.benchmark.stats import normalised
from agents.benchmark.suite import Plan, Task, Trial, load_plan

__all__ = ["Plan", "Task", "Trial", "load_plan", "normalised"]
