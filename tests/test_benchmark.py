"""The benchmark protocol (issue 23): suites as data, disjoint layouts, normalised scores, feasibility
first, rliable statistics, the one command (smoke preset through the same code path as the full
benchmark), resuming and failing."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from agents.benchmark import load_plan, normalised
from agents.benchmark import stats
from agents.benchmark.layouts import LayoutPool, layout_fingerprints
from agents.benchmark.plans import code_version
from agents.benchmark.report import collect
from agents.benchmark.suite import SUITE_FILE, read_suite_file, suite_names
from agents.evaluation import HELD_OUT_SEED, make_env

ROOT = Path(__file__).resolve().parents[1]
ALL = load_plan("all", "standard")
FAMILY = load_plan("family", "standard")        # drawn eavesdroppers and user counts (issue 20)
TASKS = {**ALL.tasks, **FAMILY.tasks}


def _bench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agents.benchmark", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


# -- suites and layouts ---------------------------------------------------------------------------
def test_suite_file_names_the_issue_tasks_and_presets():
    data = read_suite_file()
    assert {"uav-paper", "uav-drawn", "uav-drawn-wide-eve", "uav-drawn-1w", "quantum-uav-drawn",
            "qkd-noma"} <= set(data["tasks"])
    assert {"smoke", "standard", "full"} <= set(data["presets"])
    assert {"uav", "quantum", "leaderboard", "all"} <= set(suite_names())
    for name, task in ALL.tasks.items():
        if task.train_pool is not None:
            assert len(task.test_seeds) >= 20, name
    standard = load_plan("leaderboard", "standard")
    seeds = {}
    for t in standard.trials:
        seeds.setdefault((t.task, t.algorithm), set()).add(t.seed)
    assert all(len(seeds[(task, "ppo")]) >= 5 for task in standard.tasks)
    assert all(len(seeds[(task, "a2c")]) >= 3 for task in standard.tasks)


@pytest.mark.parametrize("name", list(TASKS))
def test_test_layouts_are_disjoint_from_every_training_layout(name):
    """Seed blocks apart, and the layouts themselves: no test layout is drawn by the training pool,
    by train.py's held-out scoreboard seeds or by its training seeds."""
    task = TASKS[name]
    test = layout_fingerprints(task.env_id, dict(task.env_kwargs), task.test_seeds)
    if task.train_pool is None:            # one fixed layout: nothing is drawn, train = test by design
        assert len(set(test.values())) == 1
        return
    assert len(set(test.values())) == len(test)
    first, count = task.train_pool
    assert not set(task.test_seeds) & set(range(first, first + count))
    pool = set(layout_fingerprints(task.env_id, dict(task.env_kwargs), range(first, first + count)).values())
    others = set(layout_fingerprints(task.env_id, dict(task.env_kwargs),
                                     [*range(HELD_OUT_SEED, HELD_OUT_SEED + 500), *range(500)]).values())
    assert not set(test.values()) & pool
    assert not set(test.values()) & others


def test_layout_pool_draws_only_pool_layouts_reproducibly():
    task = ALL.tasks["uav-drawn"]
    first, count = 2_000_000, 7
    pool = set(layout_fingerprints(task.env_id, dict(task.env_kwargs), range(first, first + count)).values())
    from agents.benchmark.layouts import reset_fingerprint

    def draws(seed):
        env = LayoutPool(make_env(task.env_id, **dict(task.env_kwargs)), first, count)
        out = [env.reset(seed=seed)[1]]
        out += [env.reset()[1] for _ in range(40)]
        env.close()
        return out

    a, b = draws(3), draws(3)
    assert [i["layout_seed"] for i in a] == [i["layout_seed"] for i in b]
    assert {i["layout_seed"] for i in a} == set(range(first, first + count))   # 41 draws hit all 7
    assert {reset_fingerprint(i) for i in a} <= pool
    assert [i["layout_seed"] for i in draws(4)] != [i["layout_seed"] for i in a]


@pytest.mark.parametrize("bad, words", [
    ({"presets": {"smoke": {"algorithms": {"ppo": {"seeds": 0}}}}}, "presets.smoke.algorithms.ppo.seeds"),
    ({"tasks": {"uav-drawn": {"test_layouts": {"first": 2000005, "count": 20}}}}, "overlap train_layouts"),
    ({"tasks": {"uav-drawn": {"test_layouts": {"first": 1000000, "count": 20}}}}, "train.py's training and held-out"),
    ({"tasks": {"uav-drawn": {"one": "exh"}}}, "tasks.uav-drawn.one"),
    ({"tasks": {"uav-drawn": {"env_kwargs": {"eve_radius_m": -1}}}}, "tasks.uav-drawn.env_kwargs"),
    ({"tasks": {"uav-drawn": {"colour": 1}}}, "unknown key 'colour'"),
    ({"algorithms": {"ppo": {"algo": "dqn"}}}, "algorithms.ppo.algo"),
])
def test_malformed_suite_files_name_the_key(tmp_path, bad, words):
    data = read_suite_file()

    def merge(into, new):
        for k, v in new.items():
            if isinstance(v, dict) and isinstance(into.get(k), dict) and k not in ("test_layouts", "env_kwargs"):
                merge(into[k], v)
            else:
                into[k] = v

    merge(data, bad)
    import yaml

    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(".", r"\.")):
        load_plan("uav", "smoke", path)


# -- normalisation, ranking, statistics ------------------------------------------------------------
def test_normalised_score_by_hand():
    # Algorithm 3 at 1600 bit/J, the straight line at 600: 1500 is 900/1000 of the way
    assert normalised(1500.0, 600.0, 1600.0) == pytest.approx(0.9)
    assert normalised(600.0, 600.0, 1600.0) == 0.0
    assert normalised(1600.0, 600.0, 1600.0) == 1.0
    assert normalised(2100.0, 600.0, 1600.0) == pytest.approx(1.5)
    assert normalised(100.0, 600.0, 1600.0) == pytest.approx(-0.5)
    # TDMA 2.0 Mbit/s, Algorithm 1 2.5: 2.4 -> 0.8
    assert normalised(2.4e6, 2.0e6, 2.5e6) == pytest.approx(0.8)
    assert math.isnan(normalised(5.0, 3.0, 3.0))
    assert math.isnan(normalised(math.nan, 0.0, 1.0))


def _synthetic(task_name="uav-drawn", n_layouts=4):
    """A plan restricted to ``n_layouts`` layouts of one task and hand-made records."""
    plan = load_plan("uav", "standard")
    task = plan.tasks[task_name]
    from dataclasses import replace

    task = replace(task, test_seeds=task.test_seeds[:n_layouts])
    plan.tasks = {task_name: task}
    plan.bootstrap_reps = 200
    metric = "energy_efficiency_bits_per_joule"
    ok = {"leakage_violations": 0.0, "power_violations": 0.0, "min_rate_shortfall_bps": 0.0,
          "destination_reached": 1.0}

    def rec(seed, value, **bad):
        return {"seed": seed, metric: value, "decision_time_s": 0.01, **ok, **bad}

    seeds = list(task.test_seeds)
    baselines = {task_name: {
        "straight_line": [rec(s, 600.0 + 10 * i) for i, s in enumerate(seeds)],
        "algorithm3": [rec(s, 1600.0 + 10 * i) for i, s in enumerate(seeds)],
        "joint": [rec(s, 1700.0 + 10 * i) for i, s in enumerate(seeds)],
    }}

    def result(algorithm, seed, values, bad_layout=None):
        recs = [rec(s, v + 10 * i, **({"leakage_violations": 2.0} if i == bad_layout else {}))
                for i, (s, v) in enumerate(zip(seeds, values))]
        return {"trial": {"task": task_name, "algorithm": algorithm, "seed": seed}, "records": recs}

    return plan, baselines, result


def test_report_normalises_each_layout_against_its_own_baselines():
    plan, baselines, result = _synthetic()
    results = [result("ppo", 0, [1100.0, 1600.0, 2100.0, 600.0]), result("ppo", 1, [1100.0] * 4)]
    block = collect(plan, results, baselines)["tasks"][0]
    runs = block["algorithms"]["ppo"]["run_details"]
    # layout i: straight 600 + 10 i, Algorithm 3 1600 + 10 i, the agent value + 10 i
    assert [runs[0]["scores"][s] for s in block["test_seeds"]] == pytest.approx([0.5, 1.0, 1.5, 0.0])
    assert block["algorithms"]["joint"]["run_details"][0]["scores"][block["test_seeds"][2]] == pytest.approx(1.1)
    st = block["algorithms"]["ppo"]["stats"]
    scores = np.array([[0.5, 1.0, 1.5, 0.0], [0.5] * 4])
    assert st["mean"]["value"] == pytest.approx(scores.mean())
    # rliable's median: of the per-layout means over runs (0.5, 0.75, 1.0, 0.25)
    assert st["median"]["value"] == pytest.approx(0.625)
    # IQM: the middle half of the 8 sorted scores (0, .5, .5, .5, .5, .5, 1, 1.5) -> mean of four 0.5
    assert st["IQM"]["value"] == pytest.approx(0.5)
    assert st["optimality gap"]["value"] == pytest.approx(np.mean(np.maximum(1 - scores, 0)))
    lo, hi = st["mean"]["ci"]
    assert lo <= st["mean"]["value"] <= hi and hi > lo
    # P(ppo > algorithm3) per layout: layout 0 0/2, 1 ties 0.5*1/2 + 0, 2 1/2, 3 0 -> (0 + .25 + .5 + 0)/4
    assert block["algorithms"]["ppo"]["p_improve_algorithm3"]["value"] == pytest.approx(0.1875)


def test_an_infeasible_run_never_outranks_a_feasible_one():
    plan, baselines, result = _synthetic()
    results = [result("leaky", 0, [3000.0] * 4, bad_layout=2), result("leaky", 1, [3000.0] * 4),
               result("honest", 0, [1000.0] * 4)]
    block = collect(plan, results, baselines)["tasks"][0]
    ranking = block["ranking"]
    # every algorithm with all runs feasible (baselines, honest) ranks above 'leaky' despite its scores
    assert ranking[-1] == "leaky"
    leaky = block["algorithms"]["leaky"]
    assert (leaky["runs"], leaky["feasible_runs"], leaky["violating_episodes"]) == (2, 1, 1)
    # the infeasible run is not averaged in: the statistics hold the feasible run alone
    assert block["matrices"]["leaky"].shape == (1, 4)
    # no feasible run at all: no statistics, last
    results = [result("leaky", 0, [3000.0] * 4, bad_layout=0), result("honest", 0, [500.0] * 4)]
    block = collect(plan, results, baselines)["tasks"][0]
    assert block["ranking"][-1] == "leaky" and block["algorithms"]["leaky"]["stats"] == {}
    assert stats.rank({"a": {"runs": 2, "feasible_runs": 1, "stats": {"IQM": {"value": 9.0}}},
                       "b": {"runs": 2, "feasible_runs": 2, "stats": {"IQM": {"value": -1.0}}}}) == ["b", "a"]


def test_statistics_are_reproducible_and_leave_numpy_global_state_alone():
    m = {"x": np.random.default_rng(0).normal(size=(5, 20))}
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    a = stats.interval_estimates(m, 300)
    after = np.random.random()
    assert after == before
    assert stats.interval_estimates(m, 300) == a


# -- the command -------------------------------------------------------------------------------------
def test_smoke_benchmark_runs_on_ray_and_reports(tmp_path):
    """The acceptance command, through the same code path as the full benchmark (local Ray)."""
    out = tmp_path / "uav"
    proc = _bench("--suite", "uav", "--preset", "smoke", "--out", str(out), "--num-cpus", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "8 trials run, 0 reused, 0 failed; 21 baseline episodes planned, 0 reused" in proc.stdout
    for name in ("records.csv", "results.json", "report.md", "aggregate.png", "performance_profile.png",
                 "sample_efficiency_uav-drawn.png", "benchmark.json"):
        assert (out / name).stat().st_size > 0, name
    report = (out / "report.md").read_text()
    for task in ("uav-paper", "uav-drawn", "uav-drawn-wide-eve", "uav-drawn-1w"):
        assert f"## {task}" in report
    assert "IQM [95% CI]" in report and "P(> joint)" in report
    rows = (out / "records.csv").read_text().splitlines()
    # 1 + 2 + 2 + 2 layouts x (3 baselines + ppo + ppo+joint)
    assert len(rows) == 1 + 7 * 5
    results = json.loads((out / "results.json").read_text())
    assert results["header"]["code_version"] == code_version()
    curve = results["tasks"][1]["curves"]["ppo"]
    assert curve["timesteps"][0] == 0 and curve["timesteps"][-1] == 2048   # 512 -> whole PPO rollouts


def _tiny_suite(tmp_path, timesteps=4096, tasks=("uav-drawn",)):
    data = read_suite_file()
    data["suites"]["tiny"] = list(tasks)
    data["presets"]["tiny"] = {"algorithms": {"ppo": {"seeds": 2, "timesteps": timesteps}}, "test_layouts": 2,
                               "curve_points": 1, "curve_layouts": 1, "bootstrap_reps": 50}
    import yaml

    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_scenario_family_runs_drawn_eavesdroppers_and_user_counts(tmp_path):
    """Issue 20's tasks through the benchmark: two drawn discs and 2-6 drawn users, the set
    observation's agent (user and disc tokens), every baseline planning every drawn test layout."""
    suite = _tiny_suite(tmp_path, timesteps=1024, tasks=("uav-drawn-k2-6",))
    import yaml

    data = yaml.safe_load(suite.read_text())
    data["presets"]["tiny"]["algorithms"] = {"ppo-set": {"seeds": 1, "timesteps": 1024}}
    suite.write_text(yaml.safe_dump(data))
    out = tmp_path / "fam"
    proc = _bench("--suite", "tiny", "--preset", "tiny", "--suite-file", str(suite), "--out", str(out), "--sequential")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 trials run, 0 reused, 0 failed; 6 baseline episodes planned, 0 reused" in proc.stdout
    import csv

    rows = list(csv.DictReader((out / "records.csv").open()))
    assert len(rows) == 2 * 4 and {r["algorithm"] for r in rows} == {"straight_line", "algorithm3", "joint", "ppo-set"}
    assert all(r["feasible"] == "True" for r in rows if r["kind"] == "baseline")
    assert all("leakage" not in r["violated"] for r in rows)     # the safety layer and the planners never leak
    assert {r["layout_seed"] for r in rows} == {"3000000", "3000001"}


def test_a_benchmark_resumes_without_redoing_finished_work(tmp_path):
    suite = _tiny_suite(tmp_path)
    out = tmp_path / "b"
    first = _bench("--suite", "tiny", "--preset", "tiny", "--suite-file", str(suite), "--out", str(out), "--sequential")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "2 trials run, 0 reused, 0 failed; 6 baseline episodes planned, 0 reused" in first.stdout
    again = _bench("--suite", "tiny", "--preset", "tiny", "--suite-file", str(suite), "--out", str(out), "--sequential")
    assert "0 trials run, 2 reused, 0 failed; 0 baseline episodes planned, 6 reused" in again.stdout
    # lose one trial's result and one cached plan: exactly those are redone
    model = next(out.glob("trials/uav-drawn/ppo/seed1_*/run/model.zip"))
    trained_at = model.stat().st_mtime_ns
    next(out.glob("trials/uav-drawn/ppo/seed1_*/result.json")).unlink()
    next(out.glob("plans/*/joint/*/3000001.json")).unlink()
    third = _bench("--suite", "tiny", "--preset", "tiny", "--suite-file", str(suite), "--out", str(out), "--sequential")
    assert "1 trials run, 1 reused, 0 failed; 1 baseline episodes planned, 5 reused" in third.stdout
    # the trial was scored from its saved model, not trained again
    assert model.stat().st_mtime_ns == trained_at
    assert next(out.glob("trials/uav-drawn/ppo/seed1_*/result.json")).exists()


def test_a_killed_benchmark_resumes(tmp_path):
    """SIGKILL while the second trial trains: the next run reuses the first trial and the plans,
    resumes the second from its checkpoint, and ends with every trial."""
    suite = _tiny_suite(tmp_path, timesteps=40960)
    out = tmp_path / "k"
    args = [sys.executable, "-m", "agents.benchmark", "--suite", "tiny", "--preset", "tiny", "--suite-file",
            str(suite), "--out", str(out), "--sequential"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 400
    try:
        while time.time() < deadline:
            if list(out.glob("trials/*/*/seed1_*/run/checkpoints/model.zip")):
                break
            assert proc.poll() is None, "the benchmark ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint of the second trial appeared")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert list(out.glob("trials/*/*/seed0_*/result.json"))
    assert not list(out.glob("trials/*/*/seed1_*/result.json"))
    again = _bench("--suite", "tiny", "--preset", "tiny", "--suite-file", str(suite), "--out", str(out), "--sequential")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "1 trials run, 1 reused, 0 failed; 0 baseline episodes planned, 6 reused" in again.stdout
    run = json.loads(next(out.glob("trials/*/*/seed1_*/run/run.json")).read_text())
    assert run["status"] == "done" and run["resumed_from"] and run["resumed_from"] > 0
    curve = json.loads(next(out.glob("trials/*/*/seed1_*/result.json")).read_text())["curve"]
    assert sorted(r["point"] for r in curve) == [0, 1]        # no duplicate point after the resume


class Crashing:
    """A custom policy whose predict fails (the failed-trial test)."""

    def __init__(self, env):
        self.env = env

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        raise RuntimeError("this policy always fails")


def test_a_failed_trial_is_reported_and_exits_non_zero(tmp_path):
    suite = _tiny_suite(tmp_path, timesteps=2048)
    out = tmp_path / "f"
    proc = _bench("--suite", "tiny", "--preset", "tiny", "--suite-file", str(suite), "--out", str(out),
                  "--sequential", "--algo", "tests.test_benchmark:Crashing",
                  "--algo", "baselines.cai2019.policies:StraightLinePolicy")
    assert proc.returncode == 1
    assert "FAILED: RuntimeError: this policy always fails" in proc.stdout
    assert "1 trial(s) failed" in proc.stderr
    report = (out / "report.md").read_text()
    assert "baselines.cai2019.policies:StraightLinePolicy" in report       # the others are reported
    manifest = json.loads((out / "benchmark.json").read_text())
    assert manifest["failures"][0]["trial"]["custom"] == "tests.test_benchmark:Crashing"


@pytest.mark.parametrize("args, words", [
    (["--suite", "nope", "--preset", "smoke"], "unknown suite 'nope'"),
    (["--suite", "uav", "--preset", "huge"], "unknown preset 'huge'"),
    (["--suite", "uav", "--preset", "smoke", "--algo", "not a class"], "expected package.module:Class"),
    (["--suite", "uav", "--preset", "smoke", "--algo", "nosuchmodule:X"], "cannot import nosuchmodule"),
    (["--suite", "uav", "--preset", "smoke", "--suite-file", "/nonexistent.yaml"], "cannot read it"),
    (["--suite", "uav", "--preset", "smoke", "--num-cpus", "0"], "--num-cpus must be >= 1"),
])
def test_bad_flags_are_one_line_errors(args, words):
    proc = _bench(*args, "--dry-run")
    assert proc.returncode == 2
    assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_dry_run_lists_the_standard_trials_without_running(tmp_path):
    proc = _bench("--suite", "leaderboard", "--preset", "standard", "--out", str(tmp_path / "d"), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    # 2 tasks x (5 ppo + 3 a2c + 5 ppo+joint + 5 ppo-set + 3 bc-set + 3 ppo-set-bc)
    assert "48 trials (0 finished) on 2 tasks" in proc.stdout
    assert not (tmp_path / "d").exists()


def test_suite_file_ships_with_the_package():
    assert SUITE_FILE.exists()
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "benchmark/suites/*.yaml" in data["tool"]["setuptools"]["package-data"]["agents"]


class Dying:
    """A custom policy that kills the process it runs in (a crashed Ray worker)."""

    def __init__(self, env):
        self.env = env

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        os._exit(3)


def test_a_worker_dying_under_a_ray_trial_is_reported_not_a_traceback(tmp_path):
    suite = _tiny_suite(tmp_path, timesteps=2048)
    proc = _bench("--suite", "tiny", "--preset", "tiny", "--suite-file", str(suite), "--out", str(tmp_path / "w"),
                  "--num-cpus", "2", "--algo", "tests.test_benchmark:Dying")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "tests.test_benchmark:Dying" in proc.stdout and "FAILED: Ray lost the task" in proc.stdout
    assert "2 trials run" not in proc.stdout and "3 trials run, 0 reused, 1 failed" in proc.stdout
