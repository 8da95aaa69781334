"""From finished trials and baseline plans to the benchmark's results folder.

:func:`collect` normalises every episode against the baselines of its layout and builds, per task
and over the suite, each algorithm's runs, feasibility and rliable statistics
(:mod:`agents.benchmark.stats`). :func:`write_results` writes ``records.csv`` (one row per
episode: the raw data), ``results.json`` (everything in :func:`collect`), ``report.md`` (tables per
task and over the suite, violations, decision times, the command) and the plots
``aggregate.png``, ``performance_profile.png`` and ``sample_efficiency_<task>.png``.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from agents.benchmark import stats
from agents.benchmark.plans import write_json
from agents.benchmark.suite import Plan, Task

#: thresholds of the performance profiles (normalised score)
TAUS = np.linspace(-0.5, 1.5, 81)
#: the baseline besides the task's `one` that the probability of improvement is reported against
JOINT = "joint"


def _violated(record: Mapping[str, Any]) -> list[str]:
    from agents.evaluation import episode_violations

    return [k for k, v in episode_violations(record).items() if v]


def score_label(task: Task) -> str:
    return f"normalised score ({task.zero} = 0, {task.one} = 1)"


def _task_block(task: Task, plan: Plan, results: Sequence[Mapping[str, Any]],
                baselines: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """One task: per algorithm its runs (normalised per layout), feasibility and statistics."""
    from agents.evaluation import primary_metric

    metric = primary_metric(task.env_id)
    seeds = list(task.test_seeds)
    by_seed = {p: {int(r["seed"]): r for r in recs} for p, recs in baselines.items()}
    zero, one = by_seed[task.zero], by_seed[task.one]
    scale = {s: (zero[s][metric], one[s][metric]) for s in seeds}
    valid = [s for s in seeds if math.isfinite(stats.normalised(1.0, *scale[s]))]
    runs: dict[str, list[dict[str, Any]]] = {}
    kinds: dict[str, str] = {}
    for planner, recs in by_seed.items():
        runs[planner] = [{"seed": 0, "records": recs}]
        kinds[planner] = "baseline"
    for r in sorted(results, key=lambda r: (r["trial"]["algorithm"], r["trial"]["seed"])):
        name = r["trial"]["algorithm"]
        runs.setdefault(name, []).append({"seed": int(r["trial"]["seed"]),
                                          "records": {int(x["seed"]): x for x in r["records"]},
                                          "curve": r.get("curve", [])})
        kinds[name] = "custom" if r["trial"].get("custom") else ("agent+planner" if r["trial"].get("refine") else "agent")
    rows: dict[str, Any] = {}
    matrices: dict[str, np.ndarray] = {}
    for name, rs in runs.items():
        out_runs = []
        for run in rs:
            recs = run["records"]
            episodes = [recs[s] for s in seeds]
            viol = {s: _violated(recs[s]) for s in seeds}
            scores = {s: stats.normalised(float(recs[s][metric]), *scale[s]) for s in seeds}
            out_runs.append({"seed": run["seed"], "feasible": not any(viol.values()),
                             "violating_episodes": sum(bool(v) for v in viol.values()),
                             "violations": {s: v for s, v in viol.items() if v},
                             "scores": scores, "values": {s: float(recs[s][metric]) for s in seeds},
                             "decision_time_s": float(np.mean([e.get("decision_time_s", math.nan) for e in episodes]))})
        ok = [r for r in out_runs if r["feasible"]]
        m = stats.score_matrix([r["scores"] for r in ok], valid)
        matrices[name] = m
        rows[name] = {"kind": kinds[name], "runs": len(out_runs), "feasible_runs": len(ok), "run_details": out_runs,
                      "raw_mean": float(np.mean([v for r in ok for v in r["values"].values()])) if ok else math.nan,
                      "min_score": float(np.min(m)) if m.size else math.nan,
                      "episodes": len(out_runs) * len(seeds),
                      "violating_episodes": sum(r["violating_episodes"] for r in out_runs),
                      "decision_time_s": float(np.mean([r["decision_time_s"] for r in out_runs]))}
    estimates = stats.interval_estimates(matrices, plan.bootstrap_reps)
    for name, row in rows.items():
        row["stats"] = estimates.get(name, {})
        for ref in (task.one, JOINT):
            if ref in matrices and ref != name and matrices[name].size and matrices[ref].size:
                row[f"p_improve_{ref}"] = stats.probability_of_improvement(matrices[name], matrices[ref],
                                                                          plan.bootstrap_reps)
    return {"task": task.name, "env_id": task.env_id, "env_kwargs": dict(task.env_kwargs), "metric": metric,
            "zero": task.zero, "one": task.one, "test_seeds": seeds, "valid_layouts": valid,
            "scale": {s: list(scale[s]) for s in seeds}, "ranking": stats.rank(rows), "algorithms": rows,
            "matrices": matrices, "curves": _curves(task, plan, runs, kinds, scale, metric)}


def _curves(task: Task, plan: Plan, runs: Mapping[str, list[dict[str, Any]]], kinds: Mapping[str, str],
            scale: Mapping[int, tuple[float, float]], metric: str) -> dict[str, Any]:
    """Sample-efficiency data per trained algorithm: timesteps per point, (runs, layouts, points)
    normalised scores (runs with a complete curve only) and the share of episodes violating."""
    out: dict[str, Any] = {}
    for name, rs in runs.items():
        if kinds[name] != "agent" or not any(r.get("curve") for r in rs):
            continue
        points = sorted({row["point"] for r in rs for row in r.get("curve", [])})
        layouts = sorted({int(row["seed"]) for r in rs for row in r.get("curve", [])})
        layouts = [s for s in layouts if math.isfinite(stats.normalised(1.0, *scale[s]))]
        tensor, steps, violating, total = [], {}, 0, 0
        for r in rs:
            cell = {(row["point"], int(row["seed"])): row for row in r.get("curve", [])}
            if not all((p, s) in cell for p in points for s in layouts):
                continue
            tensor.append([[stats.normalised(float(cell[(p, s)][metric]), *scale[s]) for p in points] for s in layouts])
            for p in points:
                steps.setdefault(p, []).append(cell[(p, layouts[0])]["timesteps"])
                for s in layouts:
                    violating += bool(_violated(cell[(p, s)]))
                    total += 1
        if tensor:
            arr = np.asarray(tensor, dtype=np.float64)
            iqm, ci = stats.iqm_curve(arr, plan.bootstrap_reps)
            out[name] = {"timesteps": [float(np.mean(steps[p])) for p in points], "iqm": iqm.tolist(),
                         "ci": ci.tolist(), "runs": len(tensor), "layouts": layouts,
                         "violating_share": violating / total if total else math.nan}
    return out


def _aggregate(blocks: Sequence[Mapping[str, Any]], plan: Plan) -> dict[str, Any]:
    """Over the suite: each algorithm's runs (by seed) feasible on every task it ran on, scores of
    every task's valid layouts side by side."""
    names = list(dict.fromkeys(n for b in blocks for n in b["algorithms"]))
    rows: dict[str, Any] = {}
    matrices: dict[str, np.ndarray] = {}
    for name in names:
        tasks = [b for b in blocks if name in b["algorithms"]]
        per_seed: dict[int, dict[str, Mapping[str, Any]]] = {}
        for b in tasks:
            for r in b["algorithms"][name]["run_details"]:
                per_seed.setdefault(r["seed"], {})[b["task"]] = r
        complete = {s: rs for s, rs in per_seed.items() if len(rs) == len(tasks)}
        ok = sorted(s for s, rs in complete.items() if all(r["feasible"] for r in rs.values()))
        cols = [(b["task"], s) for b in tasks for s in b["valid_layouts"]]
        m = np.array([[complete[seed][t]["scores"][s] for t, s in cols] for seed in ok],
                     dtype=np.float64).reshape(len(ok), len(cols))
        matrices[name] = m
        first = tasks[0]["algorithms"][name]
        rows[name] = {"kind": first["kind"], "tasks": [b["task"] for b in tasks], "runs": len(complete),
                      "feasible_runs": len(ok), "min_score": float(np.min(m)) if m.size else math.nan,
                      "episodes": sum(b["algorithms"][name]["episodes"] for b in tasks),
                      "violating_episodes": sum(b["algorithms"][name]["violating_episodes"] for b in tasks),
                      "decision_time_s": float(np.mean([b["algorithms"][name]["decision_time_s"] for b in tasks]))}
    estimates = stats.interval_estimates(matrices, plan.bootstrap_reps)
    for name, row in rows.items():
        row["stats"] = estimates.get(name, {})
    return {"ranking": stats.rank(rows), "algorithms": rows, "matrices": matrices}


def collect(plan: Plan, results: Sequence[Mapping[str, Any]],
            baselines: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> dict[str, Any]:
    """Everything the report shows: per task (:func:`_task_block`) and over the suite."""
    blocks = [_task_block(task, plan, [r for r in results if r["trial"]["task"] == name], baselines[name])
              for name, task in plan.tasks.items()]
    return {"suite": plan.suite, "preset": plan.preset, "version": plan.version, "tasks": blocks,
            "aggregate": _aggregate(blocks, plan)}


# -- writing -------------------------------------------------------------------------------------
def records_csv(summary: Mapping[str, Any]) -> str:
    """One row per episode: task, algorithm, kind, run seed, layout seed, metric, raw value,
    normalised score, feasible, violated constraints, decision time."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["task", "algorithm", "kind", "run_seed", "layout_seed", "metric", "value", "normalised_score",
                "feasible", "violated", "decision_time_s"])
    for b in summary["tasks"]:
        for name in b["algorithms"]:
            row = b["algorithms"][name]
            for r in row["run_details"]:
                for s in b["test_seeds"]:
                    w.writerow([b["task"], name, row["kind"], r["seed"], s, b["metric"], repr(r["values"][s]),
                                repr(r["scores"][s]), s not in r["violations"], ";".join(r["violations"].get(s, [])),
                                repr(r["decision_time_s"])])
    return buf.getvalue()


def _ci(est: Mapping[str, Any] | None) -> str:
    if not est:
        return "n/a"
    lo, hi = est["ci"]
    return f"{est['value']:.3f} [{lo:.3f}, {hi:.3f}]"


def _time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "n/a"
    return f"{seconds:.3g} s" if seconds >= 1 else f"{seconds * 1e3:.3g} ms"


def _table(rows: Mapping[str, Any], ranking: Sequence[str], refs: Sequence[str], raw: tuple[float, str] | None) -> list[str]:
    head = ["rank", "algorithm", "kind", "feasible runs", "IQM [95% CI]", "mean [95% CI]", "median [95% CI]",
            "optimality gap [95% CI]"] + [f"P(> {r}) [95% CI]" for r in refs] + ["worst layout score"]
    if raw is not None:
        head.append(f"raw mean{raw[1]}")
    head += ["episodes violating", "decision time / episode"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, name in enumerate(ranking, 1):
        row = rows[name]
        st = row.get("stats", {})
        feas = f"{row['feasible_runs']}/{row['runs']}" + ("" if row["feasible_runs"] == row["runs"] else " **infeasible runs**")
        cells = [str(i), name, row["kind"], feas] + [_ci(st.get(m)) for m in stats.METRICS]
        cells += [_ci(row.get(f"p_improve_{r}")) if r != name else "-" for r in refs]
        cells.append(f"{row['min_score']:.3f}" if math.isfinite(row["min_score"]) else "n/a")
        if raw is not None:
            cells.append(f"{row['raw_mean'] / raw[0]:.4f}" if math.isfinite(row["raw_mean"]) else "n/a")
        cells += [f"{row['violating_episodes']}/{row['episodes']}", _time(row["decision_time_s"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def format_report(summary: Mapping[str, Any], plan: Plan, header: Mapping[str, Any]) -> str:
    """``report.md``: the command and its cost, then the suite table, then each task's."""
    from agents.evaluation import unit

    lines = [f"# Benchmark: suite `{plan.suite}`, preset `{plan.preset}` (suite file version {plan.version})", "",
             f"Command: `{header['command']}`  ",
             f"Machine: {header['machine']}; wall time {header['wall_s'] / 60:.1f} min for this invocation "
             f"({header['trials_run']} trials run, {header['trials_reused']} reused; "
             f"{header['plans_computed']} baseline episodes planned, {header['plans_reused']} reused from the cache).  ",
             f"Compute in the results: {header.get('trial_compute_s', math.nan) / 60:.1f} min in the trials (sum of their "
             f"wall times, training and scoring) and {header.get('planning_s', math.nan) / 60:.1f} min of baseline "
             f"planning and play (sum of their decision times).  ",
             f"Code version (hash of secure_env + baselines): `{header['code_version']}`.", "",
             "Scores are normalised per test layout: 0 = the task's `zero` baseline, 1 = its `one` baseline on "
             "that very layout. IQM, mean, median and optimality gap (mean shortfall below 1) with 95 % stratified "
             "bootstrap intervals (rliable; runs and test layouts resampled); P(> X): probability that a run "
             "beats X on a layout (Mann-Whitney, averaged over layouts; runs resampled). Feasible first: a run "
             "with any violating episode is left out of its algorithm's statistics and listed below; an algorithm "
             "with such runs ranks below every algorithm whose runs are all feasible. Raw data: `records.csv`.", ""]
    agg = summary["aggregate"]
    lines += ["## Over the suite", "",
              f"Tasks: {', '.join(b['task'] for b in summary['tasks'])}. Each algorithm over the tasks it ran on "
              "(a refined agent runs on the UAV tasks only).", ""]
    lines += _table(agg["algorithms"], agg["ranking"], [], None)
    lines += ["", "![aggregate metrics](aggregate.png)", "", "![performance profiles](performance_profile.png)", ""]
    for b in summary["tasks"]:
        task = plan.tasks[b["task"]]
        refs = [task.one] + ([JOINT] if JOINT in b["algorithms"] else [])
        lines += [f"## {b['task']}", "", f"{task.description}. `{b['env_id']}` with `{b['env_kwargs']}`; "
                  f"{len(b['test_seeds'])} test layouts (seeds {b['test_seeds'][0]}..{b['test_seeds'][-1]}), "
                  + ("training layouts drawn from the pool of seeds "
                     f"{task.train_pool[0]}..{task.train_pool[0] + task.train_pool[1] - 1}" if task.train_pool else
                     "one fixed layout") + f"; metric `{b['metric']}`.", ""]
        dropped = [s for s in b["test_seeds"] if s not in b["valid_layouts"]]
        if dropped:
            lines += [f"Layouts without a scale ({task.zero} = {task.one}), left out: {dropped}.", ""]
        lines += _table(b["algorithms"], b["ranking"], refs, unit(b["metric"]))
        bad = [(n, r) for n in b["ranking"] for r in b["algorithms"][n]["run_details"] if not r["feasible"]]
        if bad:
            lines += ["", "Infeasible runs (left out of the statistics):"]
            lines += [f"- {n} seed {r['seed']}: " + "; ".join(f"layout {s}: {', '.join(v)}" for s, v in r["violations"].items())
                      for n, r in bad]
        if b["curves"]:
            lines += ["", f"![sample efficiency](sample_efficiency_{b['task']}.png)"]
        lines.append("")
    return "\n".join(lines)


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    tmp.replace(path)
    return path


def plot_aggregate(summary: Mapping[str, Any], path: Path, label: str) -> Path:
    """Each aggregate metric's point estimate and 95 % CI per algorithm (one panel per metric)."""
    agg = summary["aggregate"]
    names = [n for n in agg["ranking"] if agg["algorithms"][n].get("stats")]
    fig = _figure(3.0 * len(stats.METRICS), 0.45 * max(len(names), 2) + 1.4)
    axes = fig.subplots(1, len(stats.METRICS), sharey=True)
    for ax, metric in zip(axes, stats.METRICS):
        for i, n in enumerate(names):
            est = agg["algorithms"][n]["stats"][metric]
            lo, hi = est["ci"]
            ax.plot([lo, hi], [i, i], lw=6, alpha=0.45, color=f"C{i % 10}", solid_capstyle="butt")
            ax.plot([est["value"]], [i], "|", ms=14, mew=2, color="k")
        ax.set_title(metric, fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_xlabel(label, fontsize=8)
    axes[0].set_yticks(range(len(names)), names)
    axes[0].invert_yaxis()
    fig.suptitle(f"suite {summary['suite']} ({summary['preset']}): point estimate and 95 % stratified bootstrap CI",
                 fontsize=10)
    return _save(fig, path)


def plot_profiles(summary: Mapping[str, Any], path: Path, label: str, reps: int) -> Path:
    """rliable performance profiles over the suite: the fraction of (run, layout) scores above tau."""
    from rliable import plot_utils

    agg = summary["aggregate"]
    matrices = {n: m for n, m in agg["matrices"].items() if m.size}
    profiles, cis = stats.performance_profiles(matrices, TAUS, reps)
    from matplotlib.lines import Line2D

    fig = _figure(7.5, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    colors = {n: f"C{i % 10}" for i, n in enumerate(matrices)}
    plot_utils.plot_performance_profiles(profiles, TAUS, performance_profile_cis=cis, ax=ax, colors=colors,
                                         xlabel=f"{label} τ", ylabel="fraction of (run, layout) scores > τ",
                                         labelsize="medium", ticklabelsize="small")
    ax.axvline(1.0, color="0.4", ls=":", lw=1)
    ax.axvline(0.0, color="0.4", ls=":", lw=1)
    ax.legend([Line2D([0], [0], color=colors[n], lw=2) for n in matrices], list(matrices), fontsize=8,
              loc="lower left")
    ax.set_title(f"performance profiles, suite {summary['suite']} (95 % CI shaded)", fontsize=10)
    return _save(fig, path)


def plot_sample_efficiency(block: Mapping[str, Any], path: Path, label: str) -> Path:
    """IQM normalised score of the curve layouts against env steps, 95 % CI shaded, per algorithm."""
    fig = _figure(7.0, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    for i, (name, c) in enumerate(block["curves"].items()):
        x = np.asarray(c["timesteps"]) / 1e3
        ci = np.asarray(c["ci"])
        ax.plot(x, c["iqm"], marker="o", ms=3, color=f"C{i % 10}", label=f"{name} ({c['runs']} runs)")
        ax.fill_between(x, ci[0], ci[1], color=f"C{i % 10}", alpha=0.2)
    ax.axhline(1.0, color="0.4", ls=":", lw=1)
    ax.axhline(0.0, color="0.4", ls=":", lw=1)
    ax.set_xlabel("env steps (thousands)")
    ax.set_ylabel(f"IQM {label}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    n = len(next(iter(block["curves"].values()))["layouts"])
    ax.set_title(f"{block['task']}: sample efficiency on {n} test layouts (95 % CI shaded)", fontsize=10)
    return _save(fig, path)


def write_results(summary: dict[str, Any], plan: Plan, out: Path, header: Mapping[str, Any]) -> list[Path]:
    """``records.csv``, ``results.json``, ``report.md`` and the plots, into ``out``."""
    from agents.runs import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    csv_path = out / "records.csv"
    atomic_write_text(csv_path, records_csv(summary))
    paths.append(csv_path)
    plain = {**summary, "header": dict(header),
             "tasks": [{k: v for k, v in b.items() if k != "matrices"} for b in summary["tasks"]],
             "aggregate": {k: v for k, v in summary["aggregate"].items() if k != "matrices"}}
    write_json(out / "results.json", plain)
    paths.append(out / "results.json")
    first = next(iter(plan.tasks.values()))
    label = "normalised score" if len({(t.zero, t.one) for t in plan.tasks.values()}) > 1 else score_label(first)
    if any(m.size for m in summary["aggregate"]["matrices"].values()):
        paths.append(plot_aggregate(summary, out / "aggregate.png", label))
        paths.append(plot_profiles(summary, out / "performance_profile.png", label, plan.bootstrap_reps))
    for b in summary["tasks"]:
        if b["curves"]:
            paths.append(plot_sample_efficiency(b, out / f"sample_efficiency_{b['task']}.png",
                                                score_label(plan.tasks[b["task"]])))
    report = out / "report.md"
    atomic_write_text(report, format_report(summary, plan, header) + "\n")
    paths.append(report)
    return paths
