"""Benchmark suites as data: tasks, algorithms and presets from a versioned YAML file.

A suite file (``agents/benchmark/suites/v1.yaml`` is the library's; read with ``yaml.safe_load``,
unknown keys are errors) names **tasks** (an env id, env keywords, a training layout pool, a test
set of layout seeds and the two baselines that fix the normalised score), **suites** (lists of
tasks), **algorithms** (SB3 algorithms, or an agent refined by the joint SCA) and **presets**
(seeds, budgets and evaluation sizes). :func:`load_plan` turns (suite, preset) into the list of
:class:`Trial` objects the runner executes. Every check raises a one-line ``ValueError`` naming
the key.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

#: the library's suite file
SUITE_FILE = Path(__file__).with_name("suites") / "v1.yaml"
#: train.py's held-out scoreboard seeds start here (agents.evaluation.HELD_OUT_SEED) and its
#: training seeds lie below; benchmark pools and test sets must stay clear of [0, this + RESERVED)
RESERVED_BELOW = 2_000_000
#: a custom policy given on the command line: ``package.module:Class``
CUSTOM_ALGO = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")

_TOP_KEYS = {"version", "tasks", "suites", "algorithms", "presets"}
_TASK_KEYS = {"description", "env_id", "env_kwargs", "train_layouts", "test_layouts", "zero", "one", "timesteps"}
_ALGO_KEYS = {"algo", "hyperparams", "env_kwargs", "pretrain", "refine"}
_PRESET_KEYS = {"algorithms", "test_layouts", "curve_points", "curve_layouts", "bootstrap_reps"}
_PRESET_ALGO_KEYS = {"seeds", "timesteps"}


@dataclass(frozen=True)
class Task:
    """One benchmark task: an env, its training pool and its test layouts."""

    name: str
    env_id: str
    env_kwargs: Mapping[str, Any]
    train_pool: tuple[int, int] | None      # (first seed, count); None: one fixed layout
    test_seeds: tuple[int, ...]
    zero: str                                # baseline scoring 0 on every layout
    one: str                                 # baseline scoring 1 on every layout
    timesteps: int
    description: str = ""


@dataclass(frozen=True)
class Trial:
    """One (task, algorithm, seed): train, then score on the task's test layouts. A ``refine``
    trial has no training of its own: it refines the agents of its ``source`` trial."""

    task: str
    algorithm: str
    seed: int
    algo: str | None = None                  # SB3 algorithm; None for refine/custom trials
    timesteps: int = 0
    hyperparams: str = "{}"                  # JSON of the algorithm's hyperparameter overrides
    env_kwargs: str = "{}"                   # JSON of env keywords the algorithm adds to the task's
    pretrain: bool = False                   # planner pretraining first (agents.imitation)
    refine: str | None = None                # the algorithm whose agent is refined
    custom: str | None = None                # package.module:Class of a custom policy

    @property
    def trial_id(self) -> str:
        """A folder name: ``<task>/<algorithm>/seed<k>_<hash of the settings>``."""
        parts = [self.task, self.algorithm, self.seed, self.algo, self.timesteps, self.hyperparams,
                 self.refine, self.custom]
        if self.env_kwargs != "{}" or self.pretrain:      # (older trial ids stay as they were)
            parts += [self.env_kwargs, self.pretrain]
        text = json.dumps(parts, sort_keys=True, default=str)
        slug = re.sub(r"[^A-Za-z0-9._+-]+", "-", self.algorithm)
        return f"{self.task}/{slug}/seed{self.seed}_{hashlib.sha1(text.encode()).hexdigest()[:8]}"


@dataclass
class Plan:
    """What one benchmark command runs: the tasks, the trials, and the preset's evaluation sizes."""

    suite: str
    preset: str
    version: int
    tasks: dict[str, Task]
    trials: list[Trial]
    curve_points: int
    curve_layouts: int
    bootstrap_reps: int
    #: refine trial -> the trained trial whose agent it refines
    sources: dict[Trial, Trial] = field(default_factory=dict)


def _fail(where: str, text: str) -> ValueError:
    return ValueError(f"{where}: {text}")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, f"expected a mapping, got {type(value).__name__}")
    return value


def _keys(value: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(map(str, value)) - allowed)
    if unknown:
        raise _fail(where, f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _int(value: Any, where: str, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise _fail(where, f"expected an integer >= {lo}, got {value!r}")
    return value


def _seed_block(value: Any, where: str) -> tuple[int, int]:
    block = _mapping(value, where)
    _keys(block, {"first", "count"}, where)
    if "first" not in block or "count" not in block:
        raise _fail(where, "needs first and count")
    first, count = _int(block["first"], f"{where}.first"), _int(block["count"], f"{where}.count", 1)
    if first < RESERVED_BELOW:
        raise _fail(where, f"seeds below {RESERVED_BELOW:,} belong to train.py's training and held-out seeds; "
                           f"start at {RESERVED_BELOW:,} or later")
    if first + count > 2**32:
        raise _fail(where, "seeds must stay below 2**32")
    return first, count


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def _task(name: str, raw: Any) -> Task:
    import gymnasium as gym

    import secure_env  # noqa: F401
    from agents.evaluation import baseline_policies, check_env_id

    where = f"tasks.{name}"
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(where, "a task name is letters, digits and . _ + - (it names folders)")
    t = _mapping(raw, where)
    _keys(t, _TASK_KEYS, where)
    for key in ("env_id", "test_layouts", "zero", "one", "timesteps"):
        if key not in t:
            raise _fail(where, f"needs {key}")
    try:
        check_env_id(str(t["env_id"]))
    except ValueError as err:
        raise _fail(f"{where}.env_id", str(err)) from None
    env_kwargs = _mapping(t.get("env_kwargs") or {}, f"{where}.env_kwargs")
    try:
        gym.make(t["env_id"], **env_kwargs).close()
    except (ValueError, TypeError) as err:
        raise _fail(f"{where}.env_kwargs", str(err)) from None
    pool = None if t.get("train_layouts") is None else _seed_block(t["train_layouts"], f"{where}.train_layouts")
    first, count = _seed_block(t["test_layouts"], f"{where}.test_layouts")
    if pool is not None and first < pool[0] + pool[1] and pool[0] < first + count:
        raise _fail(where, f"test_layouts [{first}, {first + count}) overlap train_layouts "
                           f"[{pool[0]}, {pool[0] + pool[1]})")
    baselines = baseline_policies(t["env_id"])
    for key in ("zero", "one"):
        if t[key] not in baselines:
            raise _fail(f"{where}.{key}", f"{t[key]!r} is not a baseline of {t['env_id']} "
                                          f"({', '.join(baselines)})")
    if t["zero"] == t["one"]:
        raise _fail(where, "zero and one must be different baselines")
    return Task(name=name, env_id=t["env_id"], env_kwargs=dict(env_kwargs), train_pool=pool,
                test_seeds=tuple(range(first, first + count)), zero=t["zero"], one=t["one"],
                timesteps=_int(t["timesteps"], f"{where}.timesteps", 1), description=str(t.get("description", "")))


def read_suite_file(path: str | Path | None = None) -> dict[str, Any]:
    """The raw suite file (``yaml.safe_load``), with one-line errors for an unreadable file."""
    path = Path(path) if path is not None else SUITE_FILE
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ValueError(f"suite file {path}: cannot read it ({err.strerror or err})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise ValueError(f"suite file {path}: not valid YAML{at}") from None
    data = _mapping(data, f"suite file {path}")
    _keys(data, _TOP_KEYS, f"suite file {path}")
    for key in ("version", "tasks", "suites", "algorithms", "presets"):
        if key not in data:
            raise ValueError(f"suite file {path}: needs {key}")
    return data


def suite_names(path: str | Path | None = None) -> list[str]:
    """The suites a file names."""
    return list(_mapping(read_suite_file(path)["suites"], "suites"))


def load_plan(suite: str, preset: str, path: str | Path | None = None,
              custom: tuple[str, ...] = (), custom_seeds: int = 1) -> Plan:
    """The trials of ``suite`` under ``preset`` (suite file ``path``, the library's by default),
    plus one trial per custom policy (``package.module:Class``; evaluated as given, ``custom_seeds``
    runs). Raises a one-line ValueError for anything malformed."""
    data = read_suite_file(path)
    version = _int(data["version"], "version", 1)
    suites = _mapping(data["suites"], "suites")
    if suite not in suites:
        raise ValueError(f"unknown suite {suite!r}; the suite file names: {', '.join(suites)}")
    names = suites[suite]
    if not isinstance(names, list) or not names:
        raise _fail(f"suites.{suite}", "expected a non-empty list of task names")
    raw_tasks = _mapping(data["tasks"], "tasks")
    for name in names:
        if name not in raw_tasks:
            raise _fail(f"suites.{suite}", f"unknown task {name!r} (tasks: {', '.join(raw_tasks)})")
    tasks = {name: _task(name, raw_tasks[name]) for name in dict.fromkeys(names)}
    presets = _mapping(data["presets"], "presets")
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; the suite file names: {', '.join(presets)}")
    where = f"presets.{preset}"
    p = _mapping(presets[preset], where)
    _keys(p, _PRESET_KEYS, where)
    n_test = p.get("test_layouts")
    if n_test is not None:
        n_test = _int(n_test, f"{where}.test_layouts", 1)
        tasks = {k: Task(**{**t.__dict__, "test_seeds": t.test_seeds[:n_test]}) for k, t in tasks.items()}
    algorithms = _mapping(data["algorithms"], "algorithms")
    chosen = _mapping(p.get("algorithms") or {}, f"{where}.algorithms")
    trials: list[Trial] = []
    sources: dict[Trial, Trial] = {}
    by_algorithm: dict[str, list[Trial]] = {}
    for alg_name, settings in chosen.items():
        aw = f"{where}.algorithms.{alg_name}"
        if alg_name not in algorithms:
            raise _fail(aw, f"unknown algorithm (algorithms: {', '.join(algorithms)})")
        spec = _mapping(algorithms[alg_name], f"algorithms.{alg_name}")
        _keys(spec, _ALGO_KEYS, f"algorithms.{alg_name}")
        settings = _mapping(settings or {}, aw)
        _keys(settings, _PRESET_ALGO_KEYS, aw)
        if "refine" in spec:
            src = spec["refine"]
            if src not in by_algorithm:
                raise _fail(aw, f"refines {src!r}, which this preset does not train (list it before {alg_name})")
            for t in by_algorithm[src]:
                if "user_xy" in _env_geometry_keys(tasks[t.task].env_id):
                    trial = Trial(task=t.task, algorithm=alg_name, seed=t.seed, refine=src)
                    trials.append(trial)
                    sources[trial] = t
            continue
        algo = str(spec.get("algo", "")).lower()
        from agents.factory import ALGOS

        if algo not in ALGOS:
            raise _fail(f"algorithms.{alg_name}.algo", f"expected one of {', '.join(ALGOS)}, got {algo!r}")
        hp = _mapping(spec.get("hyperparams") or {}, f"algorithms.{alg_name}.hyperparams")
        extra_kw = _mapping(spec.get("env_kwargs") or {}, f"algorithms.{alg_name}.env_kwargs")
        pre = spec.get("pretrain", False)
        if not isinstance(pre, bool):
            raise _fail(f"algorithms.{alg_name}.pretrain", f"expected true or false, got {pre!r}")
        seeds = _int(settings.get("seeds", 1), f"{aw}.seeds", 1)
        budget = settings.get("timesteps", "task")
        if budget != "task":
            budget = _int(budget, f"{aw}.timesteps", 0)
        for name, task in tasks.items():
            steps = task.timesteps if budget == "task" else budget
            for seed in range(seeds):
                trial = Trial(task=name, algorithm=alg_name, seed=seed, algo=algo, timesteps=int(steps),
                              hyperparams=json.dumps(hp, sort_keys=True),
                              env_kwargs=json.dumps(extra_kw, sort_keys=True), pretrain=pre)
                trials.append(trial)
                by_algorithm.setdefault(alg_name, []).append(trial)
    for spec_text in custom:
        if not CUSTOM_ALGO.match(spec_text):
            raise ValueError(f"--algo {spec_text!r}: expected package.module:Class")
        for name in tasks:
            for seed in range(custom_seeds):
                trials.append(Trial(task=name, algorithm=spec_text, seed=seed, custom=spec_text))
    return Plan(suite=suite, preset=preset, version=version, tasks=tasks, trials=trials,
                curve_points=_int(p.get("curve_points", 0), f"{where}.curve_points"),
                curve_layouts=_int(p.get("curve_layouts", 1), f"{where}.curve_layouts", 1),
                bootstrap_reps=_int(p.get("bootstrap_reps", 2000), f"{where}.bootstrap_reps", 10),
                sources=sources)


@lru_cache(maxsize=None)
def _env_geometry_keys(env_id: str) -> frozenset[str]:
    """Which layout arrays an env reports at reset (``user_xy`` for the UAV envs)."""
    from agents.evaluation import make_env

    env = make_env(env_id)
    try:
        return frozenset(env.reset(seed=0)[1])
    finally:
        env.close()
