"""Run a benchmark plan: baseline jobs and trials as Ray tasks (or one by one), resumably.

Folder layout under ``out``::

    plans/<task>-<hash>/<planner>/<code version>/<seed>.json   cached baseline episodes
    trials/<task>/<algorithm>/seed<k>_<hash>/                  one trial (run/, curve.jsonl, result.json)
    flights/                                                   planner flights of pretraining trials
    records.csv, results.json, report.md, *.png                the results (agents.benchmark.report)
    benchmark.json                                             what ran: plan, counts, failures, wall time

A trial whose folder holds its ``result.json`` is reused; every other trial runs (a killed one
resumes from its checkpoint). A refine trial starts once the trial it refines has finished.
"""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

from agents.benchmark.plans import code_version, write_json
from agents.benchmark.suite import Plan, Trial
from agents.benchmark.trials import finished, run_baselines, run_trial


def trial_dir(out: Path, trial: Trial) -> Path:
    return out / "trials" / trial.trial_id


def machine() -> str:
    """A one-line description of this machine for the report."""
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def _ray_init(address: str | None, num_cpus: int | None) -> Any:
    import ray

    ray.init(address=address, num_cpus=num_cpus if address is None else None, ignore_reinit_error=True,
             include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [str(Path.cwd()),
                                                                                  os.environ.get("PYTHONPATH", "")]))}}
             if address is None else None)
    return ray


def run_benchmark(plan: Plan, out: Path, *, address: str | None = None, num_cpus: int | None = None,
                  sequential: bool = False, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every baseline job and every unfinished trial of ``plan`` into ``out``; return the
    finished trials' results, the baselines' records and the counts (run, reused, failed)."""
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "plans"
    t0 = time.perf_counter()
    results: dict[Trial, dict[str, Any]] = {}
    for t in plan.trials:
        r = finished(trial_dir(out, t), t)
        if r is not None:
            results[t] = r
    reused = len(results)
    todo = [t for t in plan.trials if t not in results]
    jobs = [(name, planner) for name, task in plan.tasks.items() for planner in _planners(task.env_id)]
    progress(f"benchmark {plan.suite}/{plan.preset}: {len(plan.tasks)} tasks, {len(plan.trials)} trials "
             f"({reused} finished before, {len(todo)} to run), {len(jobs)} baseline jobs -> {out}")
    failures: list[dict[str, Any]] = []
    baselines: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in plan.tasks}
    counts = {"plans_computed": 0, "plans_reused": 0, "trials_run": 0}
    done_n = [0]
    total = len(jobs) + len(todo)

    def note_baseline(r: dict[str, Any]) -> None:
        done_n[0] += 1
        if r["status"] == "ok":
            baselines[r["task"]][r["planner"]] = r["records"]
            counts["plans_computed"] += r["computed"]
            counts["plans_reused"] += r["reused"]
            progress(f"[{done_n[0]}/{total}] baseline {r['planner']} on {r['task']}: {r['computed']} layouts planned, "
                     f"{r['reused']} from the cache ({r['wall_s']:.1f} s)")
        else:
            failures.append(r)
            progress(f"[{done_n[0]}/{total}] baseline {r['planner']} on {r['task']} FAILED: {r['error']}")

    def note_trial(t: Trial, r: dict[str, Any]) -> None:
        done_n[0] += 1
        counts["trials_run"] += 1
        if r["status"] == "ok":
            results[t] = r
            progress(f"[{done_n[0]}/{total}] trial {t.trial_id} done ({r['wall_s']:.1f} s)")
        else:
            failures.append(r)
            progress(f"[{done_n[0]}/{total}] trial {t.trial_id} FAILED: {r['error']}")

    def args(t: Trial) -> tuple[Any, ...]:
        task = plan.tasks[t.task]
        seeds = list(task.test_seeds)
        src = plan.sources.get(t)
        return (t, task, str(trial_dir(out, t)), seeds, seeds[:plan.curve_layouts], plan.curve_points,
                str(trial_dir(out, src)) if src is not None else None, str(out / "flights"))

    def ready(t: Trial) -> bool | None:
        """True when ``t`` can start, None when it never can (its source failed)."""
        src = plan.sources.get(t)
        if src is None or src in results:
            return True
        return None if any(f.get("trial", {}).get("id") == src.trial_id for f in failures) else False

    waiting = list(todo)
    if sequential:
        for name, planner in jobs:
            note_baseline(run_baselines(plan.tasks[name], planner, list(plan.tasks[name].test_seeds), str(cache)))
        for t in waiting:
            if ready(t):
                note_trial(t, run_trial(*args(t)))
            else:
                note_trial(t, _skipped(t))
    elif jobs or waiting:
        ray = _ray_init(address, num_cpus)
        try:
            remote_trial = ray.remote(num_cpus=1, max_retries=0)(run_trial)
            remote_base = ray.remote(num_cpus=1, max_retries=0)(run_baselines)
            pending: dict[Any, tuple[str, Any]] = {}
            for name, planner in jobs:
                ref = remote_base.remote(plan.tasks[name], planner, list(plan.tasks[name].test_seeds), str(cache))
                pending[ref] = ("baseline", (name, planner))

            def submit() -> None:
                for t in list(waiting):
                    state = ready(t)
                    if state:
                        pending[remote_trial.remote(*args(t))] = ("trial", t)
                        waiting.remove(t)
                    elif state is None:
                        waiting.remove(t)
                        note_trial(t, _skipped(t))

            submit()
            while pending:
                try:
                    finished_refs, _ = ray.wait(list(pending), num_returns=1)
                except Exception as err:  # noqa: BLE001 - the cluster itself went away
                    finished_refs, lost = list(pending), err
                else:
                    lost = None
                for ref in finished_refs:
                    kind, t = pending.pop(ref)
                    try:
                        r = ray.get(ref) if lost is None else None
                    except Exception as err:  # noqa: BLE001 - a worker or node died under the task
                        lost_here: BaseException | None = err
                    else:
                        lost_here = lost
                    if lost_here is not None:
                        r = _lost(kind, t, plan, lost_here)
                    if kind == "baseline":
                        note_baseline(r)
                    else:
                        note_trial(t, r)
                if lost is None:
                    submit()
                else:
                    for t in list(waiting):
                        waiting.remove(t)
                        note_trial(t, _lost("trial", t, plan, lost))
        finally:
            ray.shutdown()
    missing = [(name, p) for name, p in jobs if p not in baselines[name]]
    return {"results": [results[t] for t in plan.trials if t in results], "baselines": baselines,
            "failures": failures, "trials_reused": reused, **counts, "missing_baselines": missing,
            "wall_s": time.perf_counter() - t0, "code_version": code_version()}


def _planners(env_id: str) -> list[str]:
    from agents.evaluation import baseline_policies

    return list(baseline_policies(env_id))


def _lost(kind: str, what: Any, plan: Plan, err: BaseException) -> dict[str, Any]:
    """The failure record of a job whose Ray task, worker or cluster was lost."""
    from agents.benchmark.trials import trial_record

    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    error = f"Ray lost the task ({type(err).__name__}: {text[:200]}); run the same command again to resume"
    if kind == "baseline":
        return {"status": "failed", "task": what[0], "planner": what[1], "error": error, "wall_s": 0.0}
    return {"status": "failed", "trial": trial_record(what), "error": error, "wall_s": 0.0}


def _skipped(t: Trial) -> dict[str, Any]:
    from agents.benchmark.trials import trial_record

    return {"status": "failed", "trial": trial_record(t), "error": f"not run: the {t.refine} trial it refines failed",
            "wall_s": 0.0}


def write_manifest(out: Path, plan: Plan, run: dict[str, Any], command: str) -> None:
    """``benchmark.json``: the command, the plan's trials, the counts and the failures."""
    write_json(out / "benchmark.json", {
        "command": command, "suite": plan.suite, "preset": plan.preset, "version": plan.version,
        "code_version": run["code_version"], "machine": machine(), "wall_s": run["wall_s"],
        "tasks": {n: {"env_id": t.env_id, "env_kwargs": dict(t.env_kwargs), "train_pool": t.train_pool,
                      "test_seeds": list(t.test_seeds), "zero": t.zero, "one": t.one} for n, t in plan.tasks.items()},
        "trials": [t.trial_id for t in plan.trials], "trials_run": run["trials_run"],
        "trials_reused": run["trials_reused"], "plans_computed": run["plans_computed"],
        "plans_reused": run["plans_reused"],
        "failures": [{k: f.get(k) for k in ("trial", "task", "planner", "error", "traceback")} for f in run["failures"]]})
