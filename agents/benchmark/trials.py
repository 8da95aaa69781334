"""One benchmark trial: train an agent (or refine one, or load a custom policy) and play every test
layout of its task; and the baselines' job of a task. Both never raise: a failure is written
(``error.json``) and returned.

A trained trial's folder holds ``run/`` (an ordinary training run of :func:`agents.training.train`:
``run.json``, checkpoints, ``model.zip``, ``vecnormalize.pkl``), ``curve.jsonl`` (the periodic
evaluations of the sample-efficiency curve, one JSON line per (evaluation point, layout)) and
``result.json`` when the trial has finished. A trial killed during training resumes from its last
checkpoint (the curve is cut back to it); one killed while scoring is scored from its saved model.
"""
from __future__ import annotations

import importlib
import json
import time
import traceback
from pathlib import Path
from typing import Any

from agents.benchmark.plans import baseline_records, write_json
from agents.benchmark.suite import Task, Trial

RESULT = "result.json"
ERROR = "error.json"
CURVE = "curve.jsonl"


def trial_record(trial: Trial) -> dict[str, Any]:
    return {"id": trial.trial_id, "task": trial.task, "algorithm": trial.algorithm, "seed": trial.seed,
            "algo": trial.algo, "timesteps": trial.timesteps, "hyperparams": json.loads(trial.hyperparams),
            "env_kwargs": json.loads(trial.env_kwargs), "pretrain": trial.pretrain,
            "refine": trial.refine, "custom": trial.custom}


def finished(trial_dir: Path, trial: Trial) -> dict[str, Any] | None:
    """The trial's result when its folder holds a finished result of this very trial."""
    try:
        result = json.loads((trial_dir / RESULT).read_text())
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) and result.get("trial", {}).get("id") == trial.trial_id else None


def curve_points(timesteps: int, points: int) -> list[int]:
    """Timesteps of the sample-efficiency evaluations: 0 (the untrained policy) and ``points``
    evenly spaced budgets up to ``timesteps`` (none when ``points`` is 0)."""
    if points <= 0:
        return []
    return [round(timesteps * i / points) for i in range(points + 1)]


def _read_curve(path: Path, upto: int | None = None) -> list[dict[str, Any]]:
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue        # a line cut by a kill
            if upto is None or row["timesteps"] <= upto:
                rows.append(row)
    return rows


def _curve_callback(path: Path, task: Task, env_kwargs: dict[str, Any], seeds: list[int], at: list[int]) -> Any:
    """An SB3 callback that plays the current policy (deterministic, its VecNormalize statistics
    frozen for the evaluation) on ``seeds`` when training passes each budget of ``at`` and appends
    one line per layout to ``path`` (``point``, ``timesteps``, ``seed``, the episode metrics)."""
    from stable_baselines3.common.callbacks import BaseCallback

    from agents.evaluation import run_policy
    from agents.training import AgentPolicy

    done = {row["point"] for row in _read_curve(path)}

    class CurveEval(BaseCallback):
        def _evaluate(self, point: int) -> None:
            policy = AgentPolicy(self.model, self.model.get_vec_normalize_env())
            rows = run_policy(policy, task.env_id, seeds, **env_kwargs).records
            with path.open("a") as f:
                for r in rows:
                    f.write(json.dumps({"point": point, "timesteps": int(self.num_timesteps), **_plain(r)}) + "\n")
            done.add(point)

        def _on_training_start(self) -> None:
            self._catch_up()

        def _catch_up(self) -> None:
            for i, steps in enumerate(at):
                if i not in done and self.num_timesteps >= steps:
                    self._evaluate(i)

        def _on_step(self) -> bool:
            self._catch_up()
            return True

        def _on_training_end(self) -> None:
            self._catch_up()

    return CurveEval()


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "trace"}


def _play(policy: Any, task: Task, seeds: list[int], env_kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    from agents.evaluation import run_policy

    return [_plain(r) for r in run_policy(policy, task.env_id, seeds, **env_kwargs).records]


def trial_config(trial: Trial, task: Task, run_dir: Path, flights: Path | None = None) -> Any:
    """The :class:`agents.training.TrainConfig` of a trained trial: the algorithm's entry of the
    hyperparameter file with the suite's overrides (train.py's variants.yml does not apply: a suite
    algorithm states everything it changes), the task's env keywords plus the algorithm's, the
    task's layout pool, planner pretraining only where the algorithm asks for it (flights cached
    beside the trials, shared by every seed)."""
    from agents.training import TrainConfig

    return TrainConfig(env_id=task.env_id, algo=str(trial.algo), timesteps=trial.timesteps, seed=trial.seed,
                       out=run_dir, hyperparams=json.loads(trial.hyperparams),
                       env_kwargs={**dict(task.env_kwargs), **json.loads(trial.env_kwargs)},
                       progress_bar=False, layout_pool=task.train_pool, pretrain=bool(trial.pretrain),
                       plan_cache=flights, variants=False)


def _train_and_play(trial: Trial, task: Task, trial_dir: Path, seeds: list[int], curve_seeds: list[int],
                    points: int, flights: Path | None) -> dict[str, Any]:
    from agents.refine import load_agent
    from agents.runs import checkpoint_timesteps, finished_run, read_run, run_identity
    from agents.training import prepare_run, train

    run_dir = trial_dir / "run"
    cfg = trial_config(trial, task, run_dir, flights)
    settings = prepare_run(cfg)
    identity = run_identity({"kind": "train", **settings})
    curve = trial_dir / CURVE
    t0 = time.perf_counter()
    resumed_from = None
    if finished_run(run_dir, identity) is None:
        existing = read_run(run_dir)
        ckpt = run_dir / "checkpoints" / "model.zip"
        if existing is not None and run_identity(existing) == identity and ckpt.exists():
            cfg.resume = True
            settings = prepare_run(cfg)
            resumed_from = checkpoint_timesteps(ckpt)
            kept = _read_curve(curve, upto=resumed_from)
            curve.write_text("".join(json.dumps(r) + "\n" for r in kept))
        elif curve.exists():
            curve.unlink()
        env_kwargs = dict(settings["env_kwargs"])
        callbacks = [_curve_callback(curve, task, env_kwargs, curve_seeds, curve_points(settings["timesteps"], points))] \
            if points and curve_seeds else []
        agent, _ = train(cfg, settings, callbacks=callbacks)
    else:
        agent = load_agent(run_dir, task.env_id, dict(settings["env_kwargs"]), str(trial.algo))
    train_s = time.perf_counter() - t0
    records = _play(agent, task, seeds, dict(settings["env_kwargs"]))
    return {"records": records, "curve": _read_curve(curve), "env_kwargs": settings["env_kwargs"],
            "timesteps_trained": settings["timesteps"], "train_wall_s": train_s, "resumed_from": resumed_from}


def _refine_and_play(trial: Trial, task: Task, source_dir: Path, seeds: list[int]) -> dict[str, Any]:
    from agents.refine import agent_flight_source, load_agent
    from baselines.cai2019.refine import RefinedTrajectoryPolicy
    from baselines.quantum_uav.policies import RefinedQkdTrajectoryPolicy

    record = json.loads((source_dir / "run" / "run.json").read_text())
    env_kwargs = dict(record.get("env_kwargs") or {})
    if not (source_dir / "run" / "model.zip").exists():
        raise ValueError(f"{trial.refine} agent of {source_dir} has no model.zip")
    agent = load_agent(source_dir / "run", task.env_id, env_kwargs, record["algo"])
    source = agent_flight_source(agent, task.env_id, env_kwargs)
    from agents.evaluation import make_env

    env = make_env(task.env_id, **env_kwargs)
    qkd = hasattr(env.unwrapped.scenario, "qkd_enabled")
    env.close()
    base = RefinedQkdTrajectoryPolicy if qkd else RefinedTrajectoryPolicy

    class Refined(base):  # type: ignore[misc, valid-type]
        def __init__(self, env: Any) -> None:
            super().__init__(env, source)

    return {"records": _play(Refined, task, seeds, env_kwargs), "env_kwargs": env_kwargs}


def load_custom(spec: str) -> Any:
    """The class of ``package.module:Class`` (imported, never evaluated)."""
    module_name, _, name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"--algo {spec}: cannot import {module_name} ({err})") from None
    cls = getattr(module, name, None)
    if cls is None:
        raise ValueError(f"--algo {spec}: {module_name} has no {name}")
    if not callable(getattr(cls, "predict", None)):
        raise ValueError(f"--algo {spec}: {name} has no predict(obs, state, episode_start, deterministic)")
    return cls


def run_trial(trial: Trial, task: Task, trial_dir: str, seeds: list[int], curve_seeds: list[int], points: int,
              source_dir: str | None = None, flights_dir: str | None = None) -> dict[str, Any]:
    """Run one trial into ``trial_dir``: ``result.json`` (trial, per-layout records, curve rows,
    wall times) on success, ``error.json`` on failure. Never raises; returns what it wrote."""
    d = Path(trial_dir)
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        if trial.custom is not None:
            out = {"records": _play(load_custom(trial.custom), task, seeds, dict(task.env_kwargs)),
                   "env_kwargs": dict(task.env_kwargs)}
        elif trial.refine is not None:
            if source_dir is None:
                raise ValueError(f"refine trial {trial.trial_id} has no source")
            out = _refine_and_play(trial, task, Path(source_dir), seeds)
        else:
            out = _train_and_play(trial, task, d, seeds, curve_seeds, points,
                                  Path(flights_dir) if flights_dir else None)
        result = {"status": "ok", "trial": trial_record(trial), **out, "wall_s": time.perf_counter() - t0}
        write_json(d / RESULT, result)
        if (d / ERROR).exists():
            (d / ERROR).unlink()
        return result
    except Exception as err:  # noqa: BLE001 - a failed trial is reported, the benchmark goes on
        result = {"status": "failed", "trial": trial_record(trial), "error": f"{type(err).__name__}: {err}",
                  "traceback": traceback.format_exc(limit=6), "wall_s": time.perf_counter() - t0}
        write_json(d / ERROR, result)
        return result


def run_baselines(task: Task, planner: str, seeds: list[int], cache: str) -> dict[str, Any]:
    """Plan (or read from the cache) ``planner``'s episodes on the task's test layouts. Never raises."""
    t0 = time.perf_counter()
    try:
        out = baseline_records(task, planner, seeds, Path(cache))
        return {"status": "ok", "task": task.name, "planner": planner, **out, "wall_s": time.perf_counter() - t0}
    except Exception as err:  # noqa: BLE001
        return {"status": "failed", "task": task.name, "planner": planner, "error": f"{type(err).__name__}: {err}",
                "traceback": traceback.format_exc(limit=6), "wall_s": time.perf_counter() - t0}
