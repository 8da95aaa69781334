"""train.py runs (issue 13, points 2-6): resume keeps the run's settings, episode logs cut to the
checkpoint and plotted in step order, one run per folder, hyperparameters validated before
anything is written, one labelled unit in tables and plots.

train.py runs in this process (``train.main``), so each run costs its training and scoring only.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV_ID = "secure_env/QkdNoma-v0"
#: a tiny QkdNoma run: 2 envs x 32 steps a rollout, 4 rollouts, a checkpoint every rollout
TINY = ["--env", ENV_ID, "--timesteps", "256", "--n-envs", "2", "--hp", "n_steps=32", "--hp", "batch_size=32",
        "--hp", "checkpoint_freq=64", "--env-kw", "frames_per_episode=4", "--eval-episodes", "1", "--no-progress"]


def _load_train():
    spec = importlib.util.spec_from_file_location("train_cli", ROOT / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TRAIN = _load_train()


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """``python train.py *argv`` in this process: (exit status, stdout, stderr)."""
    try:
        code = TRAIN.main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, needle: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert needle in lines[0], lines[0]
    assert "Traceback" not in err


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and mtime (to prove nothing was touched)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Iterator[Path]:
    """A finished tiny run, started without --out in an empty working directory."""
    cwd = tmp_path_factory.mktemp("cwd")
    old = os.getcwd()
    os.chdir(cwd)
    try:
        code = TRAIN.main(list(TINY))
    finally:
        os.chdir(old)
    assert code == 0
    folders = list((cwd / "runs" / "QkdNoma-v0").iterdir())
    assert len(folders) == 1
    yield folders[0]


@pytest.fixture()
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(finished_run, dst)
    return dst


def _record(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


# -- point 4: one run per folder -------------------------------------------------------------
def test_default_folder_names():
    from agents.training import default_out_dir

    assert default_out_dir("secure_env/QuantumUav-v0", "PPO", 0) == Path("runs/QuantumUav-v0/ppo_seed0")
    assert default_out_dir("secure_env/QuantumUav-v0", "ppo", 3, baselines_only=True) == \
        Path("runs/QuantumUav-v0/baselines")
    assert default_out_dir("secure_env/UavSecureOfdma-v0", "ppo", 0, False,
                           {"eve_radius_m": 150, "random_users": True, "end_xy": [400, 0]}) == \
        Path("runs/UavSecureOfdma-v0/ppo_seed0_end_xy=400,0_eve_radius_m=150_random_users=true")
    long = default_out_dir("secure_env/QkdNoma-v0", "ppo", 0, False, {"policy_kwargs": {"net_arch": [64] * 40}})
    assert len(long.name) <= 120 and long.parent == Path("runs/QkdNoma-v0")


def test_default_folder_is_per_env_algo_seed_and_settings(finished_run):
    assert finished_run.name == ("ppo_seed0_batch_size=32_checkpoint_freq=64_frames_per_episode=4_n_envs=2_"
                                 "n_steps=32_timesteps=256")
    record = _record(finished_run)
    assert record["kind"] == "train" and record["status"] == "done"
    assert (record["env_id"], record["algo"], record["seed"], record["timesteps"], record["n_envs"]) == \
        (ENV_ID, "ppo", 0, 256, 2)
    assert record["hyperparams"]["n_steps"] == 32 and record["env_kwargs"] == {"frames_per_episode": 4}
    assert record["timesteps_done"] == 256
    for name in ("model.zip", "scores.json", "learning_curve.png", "checkpoints/model.zip", "monitor/episodes.csv"):
        assert (finished_run / name).is_file(), name
    assert not (finished_run.parents[1] / "default").exists()


def test_baselines_only_goes_to_its_own_folder_and_never_into_a_training_run(run_copy, tmp_path, capsys,
                                                                           monkeypatch):
    before = snapshot(run_copy)
    code, _, err = run_cli(["--baselines-only", "--env", ENV_ID, "--out", str(run_copy), "--eval-episodes", "1",
                            "--env-kw", "frames_per_episode=4"], capsys)
    one_line_error(code, err, "holds a ppo run on secure_env/QkdNoma-v0")
    assert snapshot(run_copy) == before
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["--baselines-only", "--env", ENV_ID, "--eval-episodes", "1",
                              "--env-kw", "frames_per_episode=4"], capsys)
    assert code == 0, err
    folder = tmp_path / "runs" / "QkdNoma-v0" / "baselines_frames_per_episode=4"
    assert json.loads((folder / "scores.json").read_text())["env_id"] == ENV_ID
    record = _record(folder)
    assert record["kind"] == "baselines" and record["status"] == "done"
    assert not (folder / "model.zip").exists()


def test_a_different_run_is_refused_and_overwrite_replaces_it(run_copy, capsys):
    before = snapshot(run_copy)
    code, _, err = run_cli([*TINY, "--timesteps", "128", "--out", str(run_copy)], capsys)
    one_line_error(code, err, "a different run (timesteps 256 there, 128 here)")
    code, _, err = run_cli([*TINY, "--env-kw", "frames_per_episode=5", "--out", str(run_copy)], capsys)
    one_line_error(code, err, "env_kwargs differ")
    assert snapshot(run_copy) == before
    code, _, err = run_cli(["--baselines-only", "--env", ENV_ID, "--out", str(run_copy), "--overwrite",
                            "--eval-episodes", "1", "--env-kw", "frames_per_episode=4"], capsys)
    assert code == 0, err
    assert _record(run_copy)["kind"] == "baselines"
    for gone in ("model.zip", "checkpoints", "monitor", "learning_curve.png", "vecnormalize.pkl"):
        assert not (run_copy / gone).exists(), gone


def test_an_unfinished_run_is_not_restarted_silently(run_copy, capsys):
    record = _record(run_copy)
    (run_copy / "run.json").write_text(json.dumps({**record, "status": "running"}))
    before = snapshot(run_copy)
    code, _, err = run_cli([*TINY, "--out", str(run_copy)], capsys)
    one_line_error(code, err, "holds this run unfinished, with a checkpoint at 256 timesteps: --resume")
    assert snapshot(run_copy) == before


def test_scores_of_another_env_without_a_run_record_are_refused(tmp_path, capsys):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "scores.json").write_text(json.dumps({"env_id": "secure_env/UavSecureOfdma-v0"}))
    code, _, err = run_cli(["--baselines-only", "--env", ENV_ID, "--out", str(folder)], capsys)
    one_line_error(code, err, "holds the scores of secure_env/UavSecureOfdma-v0")


# -- point 2: resume ---------------------------------------------------------------------------
def test_resume_continues_with_the_runs_own_settings(run_copy, capsys):
    """A run started with 384 timesteps and killed at its 256-step checkpoint resumes to 384 with
    its own env, hyperparameters and env keywords, though the resume command names none of them."""
    record = _record(run_copy)
    (run_copy / "run.json").write_text(json.dumps({**record, "timesteps": 384, "status": "running"}))
    code, out, err = run_cli(["--out", str(run_copy), "--resume", "--eval-episodes", "1", "--no-progress"], capsys)
    assert code == 0, err
    assert "resuming" in out
    after = _record(run_copy)
    assert after["status"] == "done" and after["resumed_from"] == 256 and after["timesteps_done"] == 384
    for key in ("env_id", "algo", "seed", "n_envs", "hyperparams", "env_kwargs", "vectorized"):
        assert after[key] == record[key], key
    assert after["timesteps"] == 384
    assert json.loads((run_copy / "scores.json").read_text())["env_id"] == ENV_ID
    from agents.training import learning_curve

    curve = learning_curve(run_copy)
    assert curve.timesteps.max() == 384 and np.all(np.diff(curve.timesteps) >= 0)


def test_the_same_command_with_resume_finds_its_default_folder(finished_run, tmp_path, monkeypatch, capsys):
    shutil.copytree(finished_run.parents[1], tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli([*TINY, "--resume"], capsys)
    assert code == 0, err
    assert f"resuming runs/QkdNoma-v0/{finished_run.name}" in out


@pytest.mark.parametrize("flags, needle", [
    (["--timesteps", "512"], "--timesteps 512 conflicts"),
    (["--hp", "n_steps=64"], "--hp n_steps=64 conflicts"),
    (["--hp", "{learning_rate: 1.0e-3}"], "--hp learning_rate=0.001 conflicts"),
    (["--env-kw", "frames_per_episode=5"], "--env-kw frames_per_episode=5 conflicts"),
    (["--env-kw", "num_users=3"], "--env-kw num_users=3 conflicts"),
    (["--env", "secure_env/UavSecureOfdma-v0"], "--env secure_env/UavSecureOfdma-v0 conflicts"),
    (["--seed", "1"], "--seed 1 conflicts"),
    (["--n-envs", "4"], "--n-envs 4 conflicts"),
    (["--algo", "a2c"], "--algo a2c conflicts"),
    (["--vectorized"], "--vectorized True conflicts"),
])
def test_resume_refuses_a_conflicting_flag(run_copy, capsys, flags, needle):
    before = snapshot(run_copy)
    code, _, err = run_cli(["--out", str(run_copy), "--resume", *flags], capsys)
    one_line_error(code, err, needle)
    assert snapshot(run_copy) == before


def test_resume_without_a_run_or_a_checkpoint_is_an_error(run_copy, tmp_path, capsys):
    empty = tmp_path / "empty"
    code, _, err = run_cli(["--out", str(empty), "--resume"], capsys)
    one_line_error(code, err, "holds no run")
    assert not empty.exists()
    shutil.rmtree(run_copy / "checkpoints")
    before = snapshot(run_copy)
    code, _, err = run_cli(["--out", str(run_copy), "--resume"], capsys)
    one_line_error(code, err, "has no checkpoint yet")
    assert snapshot(run_copy) == before


# -- point 5: hyperparameters validated before anything is written ----------------------------
@pytest.mark.parametrize("flags, needle", [
    (["--hp", "learning_rate=abc"], "--hp learning_rate='abc': PPO expects a number"),
    (["--hp", "n_envs=0"], "--hp n_envs=0: expected an integer >= 1"),
    (["--hp", "bogus_key=1"], "--hp bogus_key: not a PPO hyperparameter"),
    (["--hp", "n_steps=2.5"], "--hp n_steps=2.5: PPO expects an integer"),
    (["--hp", "batch_size=1"], "PPO rejects these hyperparameters: `batch_size` must be greater than 1"),
    (["--hp", "policy=NoSuchPolicy"], "PPO rejects these hyperparameters: Policy NoSuchPolicy unknown"),
    (["--hp", "normalize=3"], "--hp normalize=3: expected true, false or a mapping"),
    (["--hp", "checkpoint_freq=0"], "--hp checkpoint_freq=0: expected an integer >= 1"),
    (["--hp", "seed=3"], "--hp seed: set by train.py itself"),
    (["--algo", "a2c", "--hp", "batch_size=64"], "--hp batch_size: not a A2C hyperparameter"),
])
def test_bad_hyperparameters_are_one_line_and_write_nothing(tmp_path, capsys, flags, needle):
    out = tmp_path / "run"
    code, _, err = run_cli(["--env", ENV_ID, "--out", str(out), "--timesteps", "64", *flags], capsys)
    one_line_error(code, err, needle)
    assert not out.exists()


# -- point 3: logs cut to the checkpoint, curve in step order ----------------------------------
def test_cut_logs_drops_the_episodes_past_the_checkpoint(tmp_path):
    from agents.training import cut_logs, learning_curve

    mon = tmp_path / "monitor"
    mon.mkdir()
    rows = [(64, 0, -5.0, 4, 1.0), (64, 1, -4.0, 4, 2.0), (128, 0, -3.0, 4, 3.0), (192, 1, -2.0, 4, 4.0)]
    (mon / "episodes.csv").write_text("timesteps,env,return,length,m\n"
                                      + "".join(f"{a},{b},{c},{d},{e}\n" for a, b, c, d, e in rows) + "256,0,-1")
    head = '#{"t_start": 0}\nr,l,t\n'
    (mon / "0.monitor.csv").write_text(head + "-5.0,4,0.1\n-3.0,4,0.2\n-1.0,4,0.3\n")
    (mon / "1.monitor.csv").write_text(head + "-4.0,4,0.1\n-2.0,4,0.2\n")
    assert cut_logs(tmp_path, 128) == 1
    assert (mon / "0.monitor.csv").read_text() == head + "-5.0,4,0.1\n-3.0,4,0.2\n"
    assert (mon / "1.monitor.csv").read_text() == head + "-4.0,4,0.1\n"
    curve = learning_curve(tmp_path)
    assert curve.timesteps.tolist() == [64, 64, 128] and curve.returns.tolist() == [-5.0, -4.0, -3.0]
    assert curve.metric == "m" and curve.metric_values.tolist() == [1.0, 2.0, 3.0]
    # the native vector env's files hold every env's episodes in completion order
    (mon / "native-0.monitor.csv").write_text(head + "-5.0,4,0.1\n-4.0,4,0.1\n")
    (mon / "native-1.monitor.csv").write_text(head + "-3.0,4,0.1\n-2.0,4,0.2\n")
    cut_logs(tmp_path, 64)
    assert (mon / "native-0.monitor.csv").read_text() == head + "-5.0,4,0.1\n-4.0,4,0.1\n"
    assert (mon / "native-1.monitor.csv").read_text() == head


def _uav_board() -> dict:
    metric = "secure_energy_efficiency_bits_per_joule"
    row = lambda kind, ret, ee: {"kind": kind, "metrics": {"return": {"mean": ret}, metric: {"mean": ee}}}  # noqa: E731
    return {"env_id": "secure_env/QuantumUav-v0", "metric": metric,
            "policies": {"ppo": row("agent", 1.2, 1200.0), "algorithm3_qkd": row("baseline", 1.5, 1540.0),
                         "straight_line_qkd": row("baseline", 0.6, 634.0)}}


def test_learning_curve_figure_shows_baselines_in_the_scoreboard_unit_unsquashed(tmp_path):
    from agents.training import learning_curve_figure, plot_learning_curve

    mon = tmp_path / "monitor"
    mon.mkdir()
    rng = np.random.default_rng(0)
    steps = np.arange(1, 201) * 50
    ee = 600.0 + 4.0 * np.arange(200) + rng.normal(0, 20, 200)         # bits/J
    ret = ee / 1000.0
    ret[0] = -5000.0                                                       # one disastrous first episode
    (mon / "episodes.csv").write_text("timesteps,env,return,length,secure_energy_efficiency_bits_per_joule\n" + "".join(
        f"{s},0,{float(r)!r},50,{float(e)!r}\n" for s, r, e in zip(steps, ret, ee)))
    board = _uav_board()
    fig = learning_curve_figure(tmp_path, "PPO on QuantumUav-v0", board, board["env_id"])
    top, bottom = fig.axes[:2]
    assert "kbit/J" in top.get_ylabel() and "minus penalties" in top.get_ylabel()
    assert "(kbit/J)" in bottom.get_ylabel()
    levels = {round(line.get_ydata()[0], 6) for line in bottom.get_lines() if len(set(line.get_ydata())) == 1
              and line.get_linestyle() != "None"}
    assert {1.54, 0.634, 1.2} <= levels                                   # scoreboard means / 1e3
    lo, hi = top.get_ylim()
    assert lo > -10 and hi >= 1.5                                          # not squashed by -5000
    assert any("below the axis" in t.get_text() for t in top.texts)
    blo, bhi = bottom.get_ylim()
    assert blo < 0.634 < 1.54 < bhi
    xs = top.get_lines()[0].get_xdata()
    assert np.all(np.diff(xs) >= 0)
    assert plot_learning_curve(tmp_path, "t", board).stat().st_size > 10_000


# -- point 6: one unit, labelled ----------------------------------------------------------------
def test_one_public_unit_helper():
    from agents import evaluation

    assert evaluation.unit is evaluation._unit
    assert evaluation.unit("secure_energy_efficiency_bits_per_joule") == (1e3, " (kbit/J)")
    assert evaluation.unit("mean_min_secure_rate_bps") == (1e6, " (Mbit/s)")
    assert evaluation.unit("return") == (1.0, "")


def _sweep_summary() -> dict:
    metric = "energy_efficiency_bits_per_joule"

    def group(radius: int, agent: list[float], base: list[float]) -> dict:
        from agents.evaluation import summarise

        pols = {"ppo": {"kind": "agent", **summarise(agent), "values": agent},
                "algorithm3": {"kind": "baseline", **summarise(base), "values": base}}
        best = pols["algorithm3"]["mean"]
        for p in pols.values():
            p["ratio_to_best_baseline"] = p["mean"] / best
        return {"env_id": "secure_env/UavSecureOfdma-v0", "algo": "ppo", "params": {"eve_radius_m": radius},
                "metric": metric, "seeds": [0, 1, 2], "policies": pols}

    return {"grid": ["eve_radius_m"], "cells": 6, "failed": [],
            "groups": [group(10, [500.0, 520.0, 540.0], [650.0, 650.0, 650.0]),
                       group(150, [300.0, 330.0, 360.0], [600.0, 610.0, 620.0])]}


def test_sweep_table_and_plot_are_in_kbit_per_joule_and_labelled():
    from agents.sweep import format_sweep, param_figure

    summary = _sweep_summary()
    md = format_sweep(summary)
    assert "| mean (kbit/J) | 95% CI (kbit/J) |" in md
    assert "`energy_efficiency_bits_per_joule` (kbit/J)" in md
    assert "| 10 | algorithm3 | baseline | 0.6500 |" in md and "| 10 | ppo | agent | 0.5200 |" in md
    fig = param_figure(summary, "eve_radius_m", "energy_efficiency_bits_per_joule")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "energy efficiency (kbit/J)" and ax.get_xlabel() == "eavesdropper radius (m)"
    assert "(kbit/J)" in ax.get_title() and "95 % CI" in ax.get_title()
    bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(bars) == 2
    agent = next(c for c in bars if c.get_label() == "ppo (agent)")
    np.testing.assert_allclose(np.asarray(agent.lines[0].get_ydata(), dtype=float), [0.52, 0.33])
    # the error bar half-widths are the Student-t 95 % intervals across the 3 seeds
    seg = agent.lines[2][0].get_segments()[0]
    half = (seg[1][1] - seg[0][1]) / 2
    assert half == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-4)


# -- issue 18: every command does what it says, every failure says so --------------------------
def test_a_finished_run_asked_again_shows_its_scoreboard_and_overwrite_retrains(run_copy, capsys):
    """The same command on a finished run prints its scoreboard and runs nothing (it retrained
    from scratch before); ``--overwrite`` retrains."""
    before = snapshot(run_copy)
    code, out, err = run_cli([*TINY, "--out", str(run_copy)], capsys)
    assert code == 0, err
    assert "already holds this run (256 timesteps), finished" in out and "--overwrite retrains" in out
    assert (run_copy / "scores.md").read_text().strip() in out
    assert snapshot(run_copy) == before
    code, out, err = run_cli([*TINY, "--out", str(run_copy), "--dry-run"], capsys)
    assert code == 0 and "already holds this run" in out
    code, out, err = run_cli([*TINY, "--out", str(run_copy), "--overwrite"], capsys)
    assert code == 0, err
    assert "training ->" in out
    assert (run_copy / "model.zip").stat().st_mtime_ns != before["model.zip"][1]


def test_a_finished_run_killed_while_scoring_is_scored_not_retrained(run_copy, capsys):
    (run_copy / "scores.md").unlink()
    (run_copy / "scores.json").unlink()
    model = (run_copy / "model.zip").stat().st_mtime_ns
    code, out, err = run_cli([*TINY, "--out", str(run_copy)], capsys)
    assert code == 0, err
    assert "trained (256 timesteps) but not scored: scoring it" in out
    assert (run_copy / "model.zip").stat().st_mtime_ns == model
    assert "ppo" in json.loads((run_copy / "scores.json").read_text())["policies"]


@pytest.mark.parametrize("timesteps, expected", [("100", 128), ("64", 64), ("1", 64)])
def test_folder_names_and_run_json_hold_the_timesteps_that_run(tmp_path, monkeypatch, capsys, timesteps,
                                                               expected):
    """PPO runs whole rollouts (n_steps x n_envs = 32 x 2 here): --timesteps 100 runs 128."""
    monkeypatch.chdir(tmp_path)
    argv = [a if a != "256" else timesteps for a in TINY]
    code, out, err = run_cli([*argv, "--dry-run"], capsys)
    assert code == 0, err
    assert f"{expected} timesteps" in out and f"_timesteps={expected}" in out


def test_effective_timesteps_per_algorithm():
    from agents.training import effective_timesteps

    assert effective_timesteps("ppo", 64, {}, 8) == 2048 * 8           # PPO's default n_steps 2048
    assert effective_timesteps("ppo", 100, {"n_steps": 32}, 2) == 128
    assert effective_timesteps("a2c", 7, {}, 1) == 10                   # A2C's default n_steps 5
    assert effective_timesteps("sac", 7, {}, 2) == 8                    # one step per env per round
    assert effective_timesteps("td3", 7, {"train_freq": [4, "step"]}, 1) == 8
    assert effective_timesteps("ppo", 0, {}, 8) == 0


def test_a_short_run_records_what_ran(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [a if a != "256" else "100" for a in TINY]
    code, printed, err = run_cli([*argv, "--out", str(out)], capsys)
    assert code == 0, err
    assert "128 timesteps (--timesteps 100 rounded up to whole rollouts of ppo)" in printed
    record = _record(out)
    assert record["timesteps"] == 128 == record["timesteps_done"]


@pytest.mark.parametrize("make, flags, needle", [
    (lambda d: (d / "afile").write_text("x"), ["--out", "{d}/afile"], "is a file, not a folder"),
    (lambda d: (d / "afile").write_text("x"), ["--out", "{d}/afile/sub"], "is a file, so no folder can be made"),
])
@pytest.mark.parametrize("dry", [False, True])
def test_path_problems_are_one_line_exit_2_in_dry_run_too(tmp_path, capsys, make, flags, needle, dry):
    make(tmp_path)
    argv = [*TINY, *(f.format(d=tmp_path) for f in flags), *(["--dry-run"] if dry else [])]
    code, out, err = run_cli(argv, capsys)
    one_line_error(code, err, needle)
    assert "dry run" not in out


@pytest.mark.parametrize("env_id, needle", [
    ("CartPole-v1", "env 'CartPole-v1': train.py trains and scores the library's ids only"),
    ("NoSuchEnv-v0", "unknown env id 'NoSuchEnv-v0'"),
])
def test_ids_outside_the_library_are_refused(tmp_path, capsys, env_id, needle):
    out = tmp_path / "run"
    code, _, err = run_cli(["--env", env_id, "--timesteps", "64", "--out", str(out)], capsys)
    one_line_error(code, err, needle)
    assert not out.exists()


@pytest.mark.parametrize("flags, needle", [
    (["--hp", "gamma=1.5"], "--hp gamma=1.5 is out of range: expected a finite number in [0.0, 1.0]"),
    (["--hp", "gamma=-0.1"], "--hp gamma=-0.1 is out of range"),
    (["--hp", "gae_lambda=1.01"], "--hp gae_lambda=1.01 is out of range: expected a finite number in [0.0, 1.0]"),
    (["--hp", "clip_range=0"], "--hp clip_range=0 is out of range: expected a finite number in (0.0, inf)"),
    (["--hp", "learning_rate=-1e-3"], "--hp learning_rate=-0.001 is out of range"),
    (["--hp", "n_epochs=0"], "--hp n_epochs=0 is out of range: expected an integer in [1, inf)"),
    (["--hp", "ent_coef=-0.5"], "--hp ent_coef=-0.5 is out of range"),
    (["--algo", "sac", "--hp", "tau=2"], "--hp tau=2 is out of range: expected a finite number in (0.0, 1.0]"),
])
def test_hyperparameters_out_of_their_range_are_refused(tmp_path, capsys, flags, needle):
    out = tmp_path / "run"
    code, _, err = run_cli(["--env", ENV_ID, "--out", str(out), "--timesteps", "64", *flags], capsys)
    one_line_error(code, err, needle)
    assert not out.exists()


def test_hyperparameter_files_are_inside_the_ranges():
    from agents.factory import ALGOS, load_hyperparams, validate_hyperparams

    for algo in ALGOS:
        for env_id in ("secure_env/QkdNoma-v0", "secure_env/UavSecureOfdma-v0", "secure_env/QuantumUav-v0"):
            validate_hyperparams(algo, load_hyperparams(algo, env_id))


@pytest.mark.parametrize("value", ["1e2", "1.0e2", "100", "1E2"])
def test_env_keywords_take_the_floats_yaml_and_python_write(tmp_path, capsys, value):
    out = tmp_path / "run"
    code, printed, err = run_cli(["--env", "secure_env/UavSecureOfdma-v0", "--env-kw", f"eve_radius_m={value}",
                                  "--timesteps", "64", "--out", str(out), "--dry-run"], capsys)
    assert code == 0, err
    import gymnasium as gym

    assert gym.make("secure_env/UavSecureOfdma-v0", eve_radius_m=value).unwrapped.scenario.eve_radius_m == 100.0


@pytest.mark.parametrize("value, needle", [
    ("1e7", "eve_radius_m=10000000.0 is out of range: expected a finite number in [0.0, 1000000.0] m"),
    ("-1e1", "eve_radius_m=-10.0 is out of range"),
    ("abc", "eve_radius_m='abc' is invalid: expected a finite number"),
    ("nan", "is invalid: expected a finite number"),
])
def test_env_keyword_numbers_out_of_range_say_so(tmp_path, capsys, value, needle):
    code, _, err = run_cli(["--env", "secure_env/UavSecureOfdma-v0", "--env-kw", f"eve_radius_m={value}",
                            "--timesteps", "64", "--out", str(tmp_path / "run"), "--dry-run"], capsys)
    one_line_error(code, err, needle)


def test_scenario_validation_reads_numeric_strings_everywhere():
    from secure_env.scenarios import make_scenario

    s = make_scenario("cai2019", eve_radius_m="1e2", eve_xy=["1e2", 5], num_slots="5e1", peak_power_w="2.5")
    assert (s.eve_radius_m, s.eve_xy, s.num_slots, s.peak_power_w) == (100.0, (100.0, 5.0), 50, 2.5)
    with pytest.raises(ValueError, match=r"peak_power_w='1.0e9' is out of range"):
        make_scenario("cai2019", peak_power_w="1.0e9")
    with pytest.raises(ValueError, match=r"num_slots='5.5' is invalid: expected an integer"):
        make_scenario("cai2019", num_slots="5.5")
    with pytest.raises(ValueError, match=r"random_users='1' is invalid"):
        make_scenario("cai2019", random_users="1")


def test_plot_labels_are_words_with_units(finished_run):
    from agents.evaluation import metric_label
    from agents.sweep import param_label
    from agents.training import learning_curve_figure
    from secure_env.scenarios import make_scenario
    from secure_env.scenarios.validation import field_label

    assert metric_label("secure_energy_efficiency_bits_per_joule") == "secure energy efficiency (kbit/J)"
    assert metric_label("energy_efficiency_bits_per_joule") == "energy efficiency (kbit/J)"
    assert metric_label("mean_min_secure_rate_bps") == "mean minimal secure rate (Mbit/s)"
    assert field_label(make_scenario("cai2019"), "eve_radius_m") == "eavesdropper radius (m)"
    assert param_label(["secure_env/QuantumUav-v0"], "peak_power_w") == "peak transmit power (W)"
    assert param_label(["secure_env/QkdNoma-v0"], "num_users") == "number of users"
    board = json.loads((finished_run / "scores.json").read_text())
    fig = learning_curve_figure(finished_run, "t", board, ENV_ID)
    assert fig.axes[1].get_ylabel().startswith("mean minimal secure rate (Mbit/s)")
    assert "_" not in fig.axes[1].get_ylabel()


def test_a_finished_baselines_scoreboard_asked_again_is_shown(tmp_path, capsys):
    argv = ["--baselines-only", "--env", ENV_ID, "--out", str(tmp_path / "b"), "--eval-episodes", "1",
            "--env-kw", "frames_per_episode=4"]
    assert run_cli(argv, capsys)[0] == 0
    before = snapshot(tmp_path / "b")
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    assert "already holds these baselines' scores, finished" in out and "--overwrite rescores" in out
    assert snapshot(tmp_path / "b") == before
