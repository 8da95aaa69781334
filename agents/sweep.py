"""Experiment sweeps on Ray: a YAML grid of env ids, env settings, algorithms and seeds.

Usage::

    python train.py sweep CONFIG.yaml [--out DIR] [--address ADDR] [--num-cpus N] [--sequential] [--dry-run]
    python -m agents.sweep CONFIG.yaml ...

A config (read with ``yaml.safe_load``; unknown keys are errors)::

    env_ids: [secure_env/UavSecureOfdma-v0]   # or env_id: ...
    algos: [ppo]
    seeds: [0, 1]
    timesteps: 20000
    eval_episodes: 5          # held-out episodes per cell (default 5)
    env_kwargs: {num_slots: 50}            # fixed keywords (optional)
    hyperparams: {n_steps: 64}             # algorithm overrides (optional)
    grid:                                  # swept env keywords: name -> list of values
      eve_radius_m: [10, 50, 150]
    out: runs/sweeps/radius                # optional; --out wins

Every cell (env id x algo x grid point x seed) trains the agent and scores it against every
baseline of the env on the same held-out seeds (:func:`agents.evaluation.scoreboard`), in the env
it trained in (the hyperparameter file's ``env_kwargs`` merged with the cell's by
:func:`agents.training.prepare_run`, which also checks every cell's settings before anything
starts), as one Ray task (``ray.init()`` on this machine unless ``--address`` joins a cluster; ``--num-cpus`` caps it).
A cell writes ``<out>/cells/<cell id>/result.json`` atomically when it succeeds and is skipped by
later runs of the same sweep, so an interrupted sweep resumes where it stopped; a cell that raises
writes ``error.json`` and is retried next time. Afterwards the sweep aggregates every finished
cell into ``sweep.json``, ``sweep.md`` (per env, algo and grid point: the agent and each baseline,
mean and 95 % Student-t interval across seeds, ratio to the best baseline, held-out episodes
with a constraint violation; failed cells listed with their error; values in the metric's display unit, kbit/J or Mbit/s, labelled) and one
``sweep_<param>.png`` per swept parameter (metric vs parameter with its unit, one line per policy,
95 % CI error bars across seeds, each seed averaged over the other parameters; drawn by
:func:`agents.plots.plot_param`, re-exported here). ``--dry-run`` checks the config
and lists the cells without starting anything. The exit status is 0 when every cell has a
result, 1 when some failed (the others are aggregated all the same), 2 for a bad config or
folder. Ray is an optional extra
(``pip install -e ".[sweep]"``); ``--sequential`` runs the same cells one after the other without it.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

# re-exported: the sweep figures live in agents.plots (matplotlib only when drawn)
from agents.plots import param_figure, param_label, plot_param  # noqa: F401

#: keys a sweep config may hold
CONFIG_KEYS = {"env_id", "env_ids", "algos", "seeds", "timesteps", "eval_episodes", "env_kwargs",
               "hyperparams", "grid", "out", "name"}


@dataclass(frozen=True)
class Cell:
    """One (env id, algo, grid point, seed) run."""

    env_id: str
    algo: str
    params: tuple[tuple[str, Any], ...]
    seed: int
    timesteps: int
    eval_episodes: int
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    hyperparams: tuple[tuple[str, Any], ...] = ()

    @property
    def group(self) -> tuple[str, str, tuple[tuple[str, Any], ...]]:
        return self.env_id, self.algo, self.params

    @property
    def cell_id(self) -> str:
        text = json.dumps([self.env_id, self.algo, self.params, self.seed, self.timesteps, self.eval_episodes,
                           self.env_kwargs, self.hyperparams], sort_keys=True, default=str)
        slug = "_".join(f"{k}={v}" for k, v in self.params).replace("/", "-").replace(" ", "")
        env = self.env_id.split("/")[-1]
        return f"{env}_{self.algo}_{slug}_s{self.seed}_{hashlib.sha1(text.encode()).hexdigest()[:8]}"[:120]


@dataclass
class SweepConfig:
    cells: list[Cell]
    grid_keys: list[str]
    out: Path | None
    raw: dict[str, Any] = field(default_factory=dict)


def _as_list(value: Any, key: str) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError(f"{key} is empty: give at least one value")
    return items


def parse_config(data: Any) -> SweepConfig:
    """Validate a loaded YAML config and expand its grid. ValueError names the bad key."""
    import secure_env  # noqa: F401  (registers the ids)
    from agents.evaluation import check_env_id
    from agents.factory import ALGOS, coerce_numbers
    from agents.training import TrainConfig, prepare_run

    if not isinstance(data, dict):
        raise ValueError("sweep config must be a mapping of keys (env_ids, algos, seeds, timesteps, grid, ...)")
    unknown = sorted(set(data) - CONFIG_KEYS)
    if unknown:
        raise ValueError(f"unknown sweep config key(s) {unknown}; allowed: {sorted(CONFIG_KEYS)}")
    if "env_id" in data and "env_ids" in data:
        raise ValueError("env_id and env_ids: give one of them")
    env_ids = _as_list(data.get("env_ids", data.get("env_id", "secure_env/QkdNoma-v0")), "env_ids")
    for e in env_ids:
        if not isinstance(e, str):
            raise ValueError(f"env_ids: {e!r} is not an env id")
        try:
            check_env_id(e)
        except ValueError as err:
            raise ValueError(f"env_ids: {err}") from None
    algos = _as_list(data.get("algos", ["ppo"]), "algos")
    for a in algos:
        if not isinstance(a, str) or a.lower() not in ALGOS:
            raise ValueError(f"algos: unknown algorithm {a!r}; allowed: {sorted(ALGOS)}")
    seeds = _as_list(data.get("seeds", [0]), "seeds")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(f"seeds: {s!r} is not a non-negative integer")
    timesteps = data.get("timesteps", 10000)
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 0:
        raise ValueError(f"timesteps={timesteps!r} is invalid: expected an integer >= 0")
    episodes = data.get("eval_episodes", 5)
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"eval_episodes={episodes!r} is invalid: expected an integer >= 1")
    for key in ("env_kwargs", "hyperparams"):
        if not isinstance(data.get(key, {}), dict):
            raise ValueError(f"{key} must be a mapping")
    grid = data.get("grid", {})
    if not isinstance(grid, dict) or not grid:
        raise ValueError("grid is empty: give at least one swept env keyword with a list of values")
    for k, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid.{k} must be a non-empty list of values")
    env_kwargs = coerce_numbers(dict(data.get("env_kwargs", {})))
    grid = {k: [coerce_numbers({k: v})[k] for v in values] for k, values in grid.items()}
    hyperparams = dict(data.get("hyperparams", {}))
    # every (env, algo, grid point) must make a valid run, checked here before any task starts, by
    # the function that merges the hyperparameter file's settings for training (prepare_run)
    for env_id in env_ids:
        for algo in algos:
            for point in itertools.product(*grid.values()):
                kw = {**env_kwargs, **dict(zip(grid, point))}
                try:
                    prepare_run(TrainConfig(env_id=env_id, algo=algo.lower(), timesteps=timesteps,
                                            hyperparams=hyperparams, env_kwargs=kw))
                except (ValueError, TypeError) as err:
                    raise ValueError(f"grid/env_kwargs/hyperparams for {env_id} {algo}: {err}") from None
    cells = [Cell(env_id, algo.lower(), tuple(zip(grid, point)), seed, timesteps, episodes,
                  tuple(sorted(env_kwargs.items())), tuple(sorted(hyperparams.items())))
             for env_id in env_ids for algo in algos for point in itertools.product(*grid.values())
             for seed in seeds]
    out = Path(data["out"]) if data.get("out") else None
    return SweepConfig(cells, list(grid), out, dict(data))


def load_config(path: str | Path) -> SweepConfig:
    """Read a YAML file (``yaml.safe_load``) and :func:`parse_config` it; ValueError for bad files."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as err:
        raise ValueError(f"cannot read sweep config {str(path)!r}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"sweep config {str(path)!r} is not valid YAML: {str(err).splitlines()[0]}") from None
    return parse_config(data)


# -- one cell ------------------------------------------------------------------------------------
def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default))
    os.replace(tmp, path)


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def run_cell(cell: Cell, cell_dir: str) -> dict[str, Any]:
    """Train and score one cell; writes result.json (or error.json) in ``cell_dir``. Never raises."""
    d = Path(cell_dir)
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        from agents.evaluation import baseline_policies, episode_violations, held_out_seeds, scoreboard
        from agents.training import TrainConfig, prepare_run, train

        cfg = TrainConfig(env_id=cell.env_id, algo=cell.algo, timesteps=cell.timesteps, seed=cell.seed,
                          out=d / "run", hyperparams=dict(cell.hyperparams),
                          env_kwargs={**dict(cell.env_kwargs), **dict(cell.params)}, progress_bar=False)
        settings = prepare_run(cfg)
        agent, _ = train(cfg, settings)
        # scored in the env the agent trained in: the hyperparameter file's env_kwargs (e.g. the tuned
        # UAV entries' velocity mode) merged with the cell's, exactly as prepare_run merged them
        env_kwargs = dict(settings["env_kwargs"])
        baselines = baseline_policies(cell.env_id)
        board = scoreboard({cell.algo: agent, **baselines}, cell.env_id, held_out_seeds(cell.eval_episodes),
                           baseline_names=list(baselines), **env_kwargs)
        result = {"status": "ok", "cell": cell_id_record(cell), "env_kwargs": env_kwargs, "metric": board["metric"],
                  "policies": {name: {"kind": row["kind"], "mean": row["metrics"][board["metric"]]["mean"],
                                      "episodes": len(row["episodes"]),
                                      "violating_episodes": sum(any(episode_violations(r).values())
                                                                for r in row["episodes"])}
                               for name, row in board["policies"].items()},
                  "wall_s": time.perf_counter() - t0}
        _atomic_json(d / "result.json", result)
        if (d / "error.json").exists():
            (d / "error.json").unlink()
        return result
    except Exception as err:  # a failed cell is reported, the sweep goes on
        result = {"status": "failed", "cell": cell_id_record(cell), "error": f"{type(err).__name__}: {err}",
                  "traceback": traceback.format_exc(limit=5), "wall_s": time.perf_counter() - t0}
        _atomic_json(d / "error.json", result)
        return result


def cell_id_record(cell: Cell) -> dict[str, Any]:
    return {"id": cell.cell_id, "env_id": cell.env_id, "algo": cell.algo, "params": dict(cell.params),
            "seed": cell.seed}


# -- the sweep -----------------------------------------------------------------------------------
def run_sweep(config: SweepConfig, out: Path, *, address: str | None = None, num_cpus: int | None = None,
              sequential: bool = False) -> dict[str, Any]:
    """Run every missing cell (Ray tasks, or in this process with ``sequential``), then aggregate."""
    cells_dir = out / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    todo = [c for c in config.cells if not (cells_dir / c.cell_id / "result.json").exists()]
    skipped = len(config.cells) - len(todo)
    t0 = time.perf_counter()
    if todo and sequential:
        for c in todo:
            run_cell(c, str(cells_dir / c.cell_id))
    elif todo:
        import ray

        ray.init(address=address, num_cpus=num_cpus if address is None else None,
                 ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [str(Path.cwd()),
                                                                                      os.environ.get("PYTHONPATH", "")]))}}
                 if address is None else None)
        remote = ray.remote(num_cpus=1, max_retries=0)(run_cell)
        pending = [remote.remote(c, str(cells_dir / c.cell_id)) for c in todo]
        while pending:
            _, pending = ray.wait(pending, num_returns=1)
        ray.shutdown()
    wall = time.perf_counter() - t0
    summary = aggregate(config, out)
    summary.update({"executed": len(todo), "skipped": skipped, "wall_s": wall,
                    "mode": "sequential" if sequential else ("ray:" + (address or "local"))})
    _atomic_json(out / "sweep.json", summary)
    return summary


def aggregate(config: SweepConfig, out: Path) -> dict[str, Any]:
    """Collect every cell's result into groups (env, algo, grid point) with mean and CI across seeds."""
    from agents.evaluation import summarise

    cells_dir = out / "cells"
    groups: dict[Any, dict[str, Any]] = {}
    failed = []
    for c in config.cells:
        d = cells_dir / c.cell_id
        g = groups.setdefault(c.group, {"env_id": c.env_id, "algo": c.algo, "params": dict(c.params),
                                         "values": {}, "kinds": {}, "metric": None, "seeds": [],
                                         "episodes": {}, "violating": {}})
        if (d / "result.json").exists():
            r = json.loads((d / "result.json").read_text())
            g["metric"] = r["metric"]
            g["seeds"].append(c.seed)
            for name, row in r["policies"].items():
                g["values"].setdefault(name, []).append(row["mean"])
                g["kinds"][name] = row["kind"]
                g["episodes"][name] = g["episodes"].get(name, 0) + int(row.get("episodes", 0))
                g["violating"][name] = g["violating"].get(name, 0) + int(row.get("violating_episodes", 0))
        elif (d / "error.json").exists():
            failed.append(json.loads((d / "error.json").read_text()))
        else:
            failed.append({"status": "missing", "cell": cell_id_record(c), "error": "not run"})
    rows = []
    for g in groups.values():
        stats = {name: summarise(v) for name, v in g["values"].items()}
        base = [s["mean"] for n, s in stats.items() if g["kinds"].get(n) == "baseline"]
        best = max(base) if base else math.nan
        rows.append({"env_id": g["env_id"], "algo": g["algo"], "params": g["params"], "metric": g["metric"],
                     "seeds": g["seeds"],
                     "policies": {n: {"kind": g["kinds"][n], **s, "values": list(g["values"][n]),
                                      "episodes": g["episodes"][n], "violating_episodes": g["violating"][n],
                                      "ratio_to_best_baseline": s["mean"] / best if best else math.nan}
                                  for n, s in stats.items()}})
    summary = {"grid": config.grid_keys, "cells": len(config.cells), "groups": rows, "failed": failed}
    (out / "sweep.md").write_text(format_sweep(summary))
    for key in config.grid_keys:
        plot_param(summary, key, out / f"sweep_{key}.png")
    return summary


def _metrics(summary: dict[str, Any]) -> list[str]:
    """The primary metrics of the finished groups, in order of appearance."""
    return list(dict.fromkeys(r["metric"] for r in summary["groups"] if r["metric"]))


def format_sweep(summary: dict[str, Any]) -> str:
    """``sweep.md``: one table per primary metric (env ids with different metrics never share a
    column), mean and 95 % CI across seeds in the metric's display unit (:func:`agents.evaluation.unit`)."""
    from agents.evaluation import unit

    lines = [f"# Sweep over {', '.join(summary['grid'])} ({summary['cells']} cells)"]
    for metric in _metrics(summary):
        scale, label = unit(metric)
        lines += ["", f"Metric `{metric}`{label}: a seed's value is its cell's mean over the held-out episodes; "
                      "mean and 95 % Student-t CI across seeds.", "",
                  "| env | algo | " + " | ".join(summary["grid"])
                  + f" | policy | kind | mean{label} | 95% CI{label} | seeds | ratio to best baseline "
                    "| episodes with a violation |",
                  "|---|---|" + "---|" * len(summary["grid"]) + "---|---|---:|---:|---:|---:|---:|"]
        for r in (r for r in summary["groups"] if r["metric"] == metric):
            for name, s in sorted(r["policies"].items(), key=lambda kv: -kv[1]["mean"]):
                params = " | ".join(str(r["params"][k]) for k in summary["grid"])
                ci = f"±{s['ci95'] / scale:.4f}" if math.isfinite(s["ci95"]) else "n/a (1 seed)"
                lines.append(f"| {r['env_id'].split('/')[-1]} | {r['algo']} | {params} | {name} | {s['kind']} | "
                             f"{s['mean'] / scale:.4f} | {ci} | {s['n']} | {s['ratio_to_best_baseline']:.4f} | "
                             f"{s.get('violating_episodes', '?')}/{s.get('episodes', '?')} |")
    if summary["failed"]:
        lines += ["", "## Failed or missing cells", ""]
        for f in summary["failed"]:
            lines.append(f"- `{f['cell']['id']}` ({f.get('status', 'failed')}): {f['error']}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    from agents.cli import OneLineParser, require_ray
    from agents.runs import check_out_dir

    p = OneLineParser(prog="train.py sweep", description="Run a YAML grid of train + score cells on Ray.")
    p.add_argument("config", help="sweep YAML file")
    p.add_argument("--out", default=None, help="sweep folder (default: the config's out, else runs/sweeps/<name>)")
    p.add_argument("--address", default=None, help="join a running Ray cluster (e.g. auto or ray://host:10001)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs for a local Ray (default: all)")
    p.add_argument("--sequential", action="store_true", help="run the cells one by one in this process (no Ray)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the config and list its cells, then stop (no Ray, nothing written)")
    try:
        args = p.parse_args(argv)
        if args.num_cpus is not None and args.num_cpus < 1:
            p.error(f"--num-cpus must be >= 1, got {args.num_cpus}")
        try:
            config = load_config(args.config)
        except ValueError as err:
            p.error(str(err))
        if not args.sequential and not args.dry_run:
            require_ray(p)
    except SystemExit as exc:   # one-line argparse errors: return the status instead of raising
        return int(exc.code) if isinstance(exc.code, int) else 2
    name = config.raw.get("name") or Path(args.config).stem
    out = Path(args.out) if args.out else (config.out or Path("runs") / "sweeps" / str(name))
    try:
        check_out_dir(out, "--out" if args.out else "out (sweep config)")
    except ValueError as err:
        print(f"train.py sweep: error: {err}", file=sys.stderr)
        return 2
    if args.dry_run:
        done = sum((out / "cells" / c.cell_id / "result.json").exists() for c in config.cells)
        for c in config.cells:
            print(f"{c.cell_id}: {c.env_id} {c.algo} {dict(c.params)} seed {c.seed}, {c.timesteps} timesteps")
        print(f"{len(config.cells)} cells ({done} already done) -> {out}; dry run, nothing started")
        return 0
    summary = run_sweep(config, out, address=args.address, num_cpus=args.num_cpus, sequential=args.sequential)
    print((out / "sweep.md").read_text())
    plots = sorted(str(p) for p in out.glob("sweep_*.png"))
    print(f"{summary['executed']} cells run, {summary['skipped']} already done, {len(summary['failed'])} failed; "
          f"{summary['wall_s']:.1f} s; wrote {out / 'sweep.json'}, {out / 'sweep.md'}"
          + (f", {', '.join(plots)}" if plots else ""))
    if summary["failed"]:
        print(f"train.py sweep: error: {len(summary['failed'])} of {len(config.cells)} cells failed "
              f"(errors in sweep.md and {out / 'cells'}/*/error.json); run the same command again to retry them",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
