"""agents/sweep.py on a local Ray with 2 CPUs: grid, resume after a kill, a failing cell, bad configs.

These tests need the ``sweep`` extra (Ray); CI installs it (``pip install -e ".[dev,sweep]"``).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from agents import sweep

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "env_id": "secure_env/QkdNoma-v0",
    "algos": ["ppo"],
    "seeds": [0, 1],
    "timesteps": 128,
    "eval_episodes": 2,
    "env_kwargs": {"frames_per_episode": 4},
    "hyperparams": {"n_steps": 32, "batch_size": 32, "n_envs": 2},
    "grid": {"num_users": [2, 3]},
}


def _write(tmp_path: Path, cfg: dict) -> Path:
    p = tmp_path / "sweep.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _cmd(config: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), "sweep", str(config), "--out", str(out), "--num-cpus", "2", *extra]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def ray_available():
    pytest.importorskip("ray")


def test_two_by_two_grid_completes_and_aggregates(tmp_path, ray_available):
    out = tmp_path / "out"
    res = subprocess.run(_cmd(_write(tmp_path, TINY), out), cwd=ROOT, env=_env(), capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["executed"] == 4 and summary["skipped"] == 0 and summary["failed"] == []
    assert len(summary["groups"]) == 2
    for g in summary["groups"]:
        assert g["seeds"] == [0, 1]
        pols = g["policies"]
        assert set(pols) == {"ppo", "algorithm1", "tdma", "exh"}
        assert pols["ppo"]["n"] == 2 and pols["ppo"]["kind"] == "agent"
        best = max(p["mean"] for p in pols.values() if p["kind"] == "baseline")
        assert pols["ppo"]["ratio_to_best_baseline"] == pytest.approx(pols["ppo"]["mean"] / best)
    md = (out / "sweep.md").read_text()
    assert md.count("| QkdNoma-v0 | ppo |") == 8
    assert "| mean (Mbit/s) | 95% CI (Mbit/s) |" in md   # one unit, labelled (the scoreboard's)
    assert (out / "sweep_num_users.png").stat().st_size > 5000
    # a second run finds every cell done
    again = subprocess.run(_cmd(_write(tmp_path, TINY), out), cwd=ROOT, env=_env(), capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0
    assert json.loads((out / "sweep.json").read_text())["executed"] == 0


def test_killed_sweep_resumes_with_only_the_missing_cells(tmp_path, ray_available):
    cfg = {**TINY, "timesteps": 2048, "grid": {"num_users": [2, 3]}}
    config = _write(tmp_path, cfg)
    out = tmp_path / "out"
    proc = subprocess.Popen(_cmd(config, out), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 400
    try:
        while time.time() < deadline and not list(out.glob("cells/*/result.json")):
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # the local Ray cluster lives in its own processes: stop it too, as a killed machine would
        subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "stop", "--force"], capture_output=True,
                       timeout=120)
    done_before = len(list(out.glob("cells/*/result.json")))
    assert 1 <= done_before < 4
    assert not list(out.glob("cells/*/*.tmp"))  # results are written atomically
    res = subprocess.run(_cmd(config, out), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["skipped"] == done_before
    assert summary["executed"] == 4 - done_before
    assert len(list(out.glob("cells/*/result.json"))) == 4


def test_hyperparameters_a_cell_would_reject_fail_the_config_before_any_task(tmp_path, capsys):
    # A2C does not take batch_size: prepare_run (what every cell runs first) refuses it at load time
    cfg = {**TINY, "algos": ["ppo", "a2c"], "seeds": [0], "hyperparams": {"n_steps": 32, "batch_size": 32}}
    out = tmp_path / "out"
    code = sweep.main([str(_write(tmp_path, cfg)), "--out", str(out), "--sequential"])
    err = capsys.readouterr().err
    assert code == 2 and "a2c" in err and "batch_size" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_failing_cell_is_reported_the_others_finish_and_the_sweep_exits_non_zero(tmp_path, capsys,
                                                                                   monkeypatch):
    """A cell that raises while training (here: seed 1's) is listed in sweep.md; the sweep finishes
    the others, says how many failed and exits 1 (it exited 0 before)."""
    from agents import training

    real_train = training.train

    def train(cfg, settings=None):
        if cfg.seed == 1:
            raise RuntimeError("simulated crash in seed 1")
        return real_train(cfg, settings)

    monkeypatch.setattr(training, "train", train)
    cfg = {**TINY, "grid": {"num_users": [2]}}
    out = tmp_path / "out"
    code = sweep.main([str(_write(tmp_path, cfg)), "--out", str(out), "--sequential"])
    printed = capsys.readouterr()
    assert code == 1
    assert "1 of 2 cells failed" in printed.err and "Traceback" not in printed.err
    summary = json.loads((out / "sweep.json").read_text())
    assert len(summary["failed"]) == 1 and summary["failed"][0]["cell"]["seed"] == 1
    assert "simulated crash in seed 1" in summary["failed"][0]["error"]
    ok = [g for g in summary["groups"] if g["seeds"]]
    assert len(ok) == 1 and ok[0]["seeds"] == [0]
    md = (out / "sweep.md").read_text()
    assert "Failed or missing cells" in md and "simulated crash" in md
    assert (out / "sweep_num_users.png").is_file()
    # the next run retries the failed cell only and, now that it passes, exits 0
    monkeypatch.setattr(training, "train", real_train)
    assert sweep.main([str(_write(tmp_path, cfg)), "--out", str(out), "--sequential"]) == 0
    assert json.loads((out / "sweep.json").read_text())["executed"] == 1


@pytest.mark.parametrize("env_id, metric", [("secure_env/UavSecureOfdma-v0", "energy_efficiency_bits_per_joule"),
                                            ("secure_env/QuantumUav-v0", "secure_energy_efficiency_bits_per_joule")])
def test_uav_sweeps_score_each_cell_in_the_env_it_trained_in(tmp_path, capsys, env_id, metric):
    """The tuned UAV entries train in the velocity mode (env_kwargs of the hyperparameter file):
    every cell failed with a broadcast error when it was scored in the full mode."""
    cfg = {"env_id": env_id, "algos": ["ppo"], "seeds": [0], "timesteps": 64, "eval_episodes": 1,
           "hyperparams": {"n_envs": 2, "n_steps": 32, "batch_size": 64}, "grid": {"eve_radius_m": [10, "1.5e2"]}}
    out = tmp_path / "out"
    code = sweep.main([str(_write(tmp_path, cfg)), "--out", str(out), "--sequential"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["failed"] == [] and summary["executed"] == 2
    assert sorted(g["params"]["eve_radius_m"] for g in summary["groups"]) == [10, 150.0]
    for g in summary["groups"]:
        assert g["metric"] == metric
        assert {"ppo", "algorithm3" if "Uav" in env_id and "Quantum" not in env_id else "algorithm3_qkd"} \
            <= set(g["policies"])
        for p in g["policies"].values():
            assert p["episodes"] == 1 and 0 <= p["violating_episodes"] <= 1
    for result in out.glob("cells/*/result.json"):
        scored = json.loads(result.read_text())["env_kwargs"]
        assert scored["action_mode"] == "velocity" and scored["eve_radius_m"] in (10, 150.0)
    assert "episodes with a violation" in (out / "sweep.md").read_text()
    plot = out / "sweep_eve_radius_m.png"
    assert plot.stat().st_size > 5000
    fig = sweep.param_figure(summary, "eve_radius_m", metric)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "eavesdropper radius (m)" and "(kbit/J)" in ax.get_ylabel()
    assert "_" not in ax.get_xlabel() + ax.get_ylabel()
    legend = ax.get_legend()
    fig.canvas.draw()
    assert not legend.get_window_extent().overlaps(ax.get_window_extent())   # off the data


def test_sweep_out_on_a_file_is_one_line_exit_2(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for extra in ([], ["--dry-run"]):
        assert sweep.main([str(_write(tmp_path, TINY)), "--out", str(afile), "--sequential", *extra]) == 2
        err = capsys.readouterr().err
        assert "is a file, not a folder" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("change, needle", [
    ({"colour": "blue"}, "colour"),
    ({"grid": {}}, "grid"),
    ({"grid": {"num_users": []}}, "grid.num_users"),
    ({"timesteps": -5}, "timesteps"),
    ({"algos": ["dqn"]}, "algos"),
    ({"grid": {"num_users": [2, 0]}}, "num_users"),
    ({"env_id": "secure_env/Nope-v0"}, "env_ids"),
    ({"env_id": "CartPole-v1"}, "the library's ids only"),
    ({"hyperparams": {"gamma": 1.5}}, "gamma=1.5 is out of range"),
])
def test_malformed_config_fails_before_any_task_with_the_key_named(tmp_path, capsys, change, needle):
    cfg = {**TINY, **change}
    out = tmp_path / "out"
    code = sweep.main([str(_write(tmp_path, cfg)), "--out", str(out), "--sequential"])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()   # nothing started


def test_unreadable_or_invalid_yaml_is_one_line(tmp_path, capsys):
    assert sweep.main([str(tmp_path / "missing.yaml"), "--sequential"]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: [unclosed\n")
    assert sweep.main([str(bad), "--sequential"]) == 2
    err = capsys.readouterr().err
    assert "missing.yaml" in err and "not valid YAML" in err and "Traceback" not in err


def test_sequential_mode_runs_without_ray(tmp_path):
    cfg = {**TINY, "seeds": [0], "grid": {"num_users": [2]}}
    out = tmp_path / "out"
    assert sweep.main([str(_write(tmp_path, cfg)), "--out", str(out), "--sequential"]) == 0
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["executed"] == 1 and summary["mode"] == "sequential"


def test_dry_run_lists_the_cells_and_starts_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert sweep.main([str(_write(tmp_path, TINY)), "--out", str(out), "--address", "auto", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "4 cells (0 already done)" in printed and "dry run, nothing started" in printed
    assert not out.exists()
