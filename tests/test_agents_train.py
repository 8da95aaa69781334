"""agents/ and train.py: one metric path, scoreboard ranking, resumable training, CLI errors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import secure_env  # noqa: F401
from agents.evaluation import evaluate, held_out_seeds, scoreboard
from agents.factory import load_hyperparams, parse_overrides
from baselines import BASELINES
from baselines.yang2019.policies import Algorithm1Policy

ROOT = Path(__file__).resolve().parents[1]
ENV_ID = "secure_env/QkdNoma-v0"


class RandomPolicy:
    """A deliberately bad policy: uniform random actions from a seeded generator."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.space = gym.make(ENV_ID).action_space

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        return self.rng.uniform(-1, 1, self.space.shape).astype(np.float32), state


def test_evaluate_equals_manual_loop():
    seeds = [11, 12]
    recs = evaluate(Algorithm1Policy, ENV_ID, seeds, frames_per_episode=4)
    for seed, rec in zip(seeds, recs):
        env = gym.make(ENV_ID, frames_per_episode=4)
        pol = Algorithm1Policy(env)
        obs, _ = env.reset(seed=seed)
        ret, rates, done = 0.0, [], False
        while not done:
            obs, r, term, trunc, info = env.step(pol.predict(obs)[0])
            ret += r
            rates.append(info["min_secure_rate_bps"])
            done = term or trunc
        assert rec["seed"] == seed
        assert rec["return"] == ret
        assert rec["steps"] == 4
        assert rec["mean_min_secure_rate_bps"] == pytest.approx(np.mean(rates), rel=1e-12)
        assert rec["frames"] == 4


def test_scoreboard_ranks_random_below_algorithm1(tmp_path):
    pols = {"random": RandomPolicy(), "algorithm1": Algorithm1Policy}
    board = scoreboard(pols, ENV_ID, held_out_seeds(3), baseline_names=["algorithm1"],
                       frames_per_episode=5)
    assert board["ranking"] == ["algorithm1", "random"]
    rnd = board["policies"]["random"]
    assert rnd["ratio_to_best_baseline"] < 0.5
    assert board["policies"]["algorithm1"]["ratio_to_best_baseline"] == 1.0
    m = rnd["metrics"]["mean_min_secure_rate_bps"]
    assert m["n"] == 3 and m["ci95"] > 0


def test_tdma_baseline_gets_its_env_override():
    recs = evaluate(BASELINES[ENV_ID]["tdma"], ENV_ID, [5], frames_per_episode=2)
    recs_a1 = evaluate(Algorithm1Policy, ENV_ID, [5], frames_per_episode=2)
    assert 0 < recs[0]["mean_min_secure_rate_bps"] < recs_a1[0]["mean_min_secure_rate_bps"]


def test_hyperparams_layers_and_overrides(tmp_path):
    hp = load_hyperparams("ppo", ENV_ID, {"learning_rate": 1e-3, "policy_kwargs": {"ortho_init": False}})
    assert hp["gamma"] == 0.0 and hp["n_envs"] == 8 and hp["learning_rate"] == 1e-3
    assert hp["policy_kwargs"] == {"net_arch": [64, 64], "ortho_init": False}
    assert load_hyperparams("ppo", "secure_env/Unknown-v0")["n_steps"] == 256  # the default entry
    assert parse_overrides(["n_steps=64", "policy_kwargs={net_arch: [32]}"]) == {
        "n_steps": 64, "policy_kwargs": {"net_arch": [32]}}
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["oops"])
    (tmp_path / "ppo.yml").write_text("x: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_hyperparams("ppo", ENV_ID, directory=tmp_path)
    with pytest.raises(ValueError, match="unknown algo"):
        load_hyperparams("dqn", ENV_ID)


def _train_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), "--env", ENV_ID, "--out", str(out), "--eval-episodes", "2",
            "--no-progress", "--env-kw", "frames_per_episode=4", *extra]


def _run(cmd: list[str], timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_tiny_training_run_writes_scores_and_plots(tmp_path):
    out = tmp_path / "run"
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    res = _run(_train_cmd(out, "--timesteps", "512", "--hp", "n_steps=32", "--hp", "batch_size=64",
                          "--hp", "normalize={norm_obs: true, norm_reward: true}"), TMPDIR=str(tmp))
    assert res.returncode == 0, res.stderr
    # nothing outside the run folder: SB3's default logger made an /tmp/SB3-<date> folder per run
    assert not list(tmp.glob("SB3-*"))
    for name in ("scores.json", "scores.md", "learning_curve.png", "model.zip", "run.json",
                 "vecnormalize.pkl", "checkpoints/vecnormalize.pkl"):
        assert (out / name).is_file(), name
    scores = json.loads((out / "scores.json").read_text())
    assert set(scores["policies"]) == {"ppo", "algorithm1", "tdma", "exh"}
    assert scores["policies"]["ppo"]["kind"] == "agent"
    assert "| ppo | agent |" in (out / "scores.md").read_text()
    assert "Scoreboard" in res.stdout
    assert json.loads((out / "run.json").read_text())["timesteps_done"] >= 512


def test_sigkill_after_checkpoint_resumes_to_total(tmp_path):
    out = tmp_path / "run"
    total = 12_000
    cmd = _train_cmd(out, "--timesteps", str(total), "--hp", "n_steps=32", "--hp", "batch_size=64",
                     "--hp", "checkpoint_freq=1024", "--hp", "n_epochs=4")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
    ckpt = out / "checkpoints" / "model.zip"
    deadline = time.monotonic() + 240
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ckpt.exists(), "no checkpoint appeared"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    started = json.loads((out / "run.json").read_text())  # written when the run started
    # run.json holds what runs: 12,000 rounded up to whole rollouts of 8 envs x 32 steps (issue 18)
    assert started["status"] == "running" and started["timesteps"] == 12_032
    from stable_baselines3 import PPO

    saved = PPO.load(ckpt).num_timesteps
    assert 0 < saved < total
    res = _run(cmd + ["--resume"])
    assert res.returncode == 0, res.stderr
    record = json.loads((out / "run.json").read_text())
    assert record["resumed_from"] >= saved and record["status"] == "done"
    rollout = 8 * 32
    assert total <= record["timesteps_done"] < total + rollout
    assert PPO.load(out / "model.zip").num_timesteps == record["timesteps_done"]
    # the episode logs hold the checkpoint's episodes and the resumed ones, nothing lost in between:
    # 8 envs x 4-frame episodes, so every env logs one episode per 32 global steps
    from agents.training import learning_curve

    per_env = record["timesteps_done"] // 32
    for rank in range(8):
        rows = (out / "monitor" / f"{rank}.monitor.csv").read_text().splitlines()[2:]
        assert len(rows) == per_env, rank
    curve = learning_curve(out)
    assert len(curve.timesteps) == 8 * per_env
    assert np.all(np.diff(curve.timesteps) >= 0) and curve.timesteps[-1] == record["timesteps_done"]
    assert np.all(np.bincount((curve.timesteps - 1).astype(int) // 32) == 8)  # 8 episodes per 32 steps


@pytest.mark.parametrize("argv, needle", [
    (["--env", "secure_env/Nope-v0"], "unknown env id"),
    (["--algo", "dqn"], "unknown algo"),
    (["--timesteps", "-5"], "--timesteps must be >= 0"),
    (["--eval-episodes", "0"], "--eval-episodes"),
    (["--env-kw", "num_users=0"], "num_users"),
    (["--hp", "novalue"], "key=value"),
    (["--bogus-flag"], "unrecognized arguments"),
])
def test_bad_cli_input_exits_with_one_line(argv, needle, tmp_path):
    res = _run([sys.executable, str(ROOT / "train.py"), "--env", ENV_ID, "--out", str(tmp_path / "x"), *argv],
               timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert needle in lines[0]
    assert "Traceback" not in res.stderr


def test_uav_env_tiny_run_scores_straight_line_and_plots_trajectories(tmp_path):
    out = tmp_path / "uav"
    res = _run([sys.executable, str(ROOT / "train.py"), "--env", "secure_env/UavSecureOfdma-v0",
                "--timesteps", "256", "--hp", "n_steps=32", "--hp", "batch_size=64", "--hp", "n_envs=2",
                "--eval-episodes", "2", "--out", str(out), "--no-progress", "--env-kw", "num_subcarriers=8",
                "--env-kw", "num_slots=20", "--env-kw", "end_xy=[400, 0]"])
    assert res.returncode == 0, res.stderr
    for name in ("scores.json", "scores.md", "learning_curve.png", "trajectories.png", "model.zip"):
        assert (out / name).is_file(), name
    scores = json.loads((out / "scores.json").read_text())
    assert set(scores["policies"]) == {"ppo", "straight_line", "algorithm3", "joint"}
    assert scores["metric"] == "energy_efficiency_bits_per_joule"
    row = scores["policies"]["straight_line"]["metrics"]
    assert row["leakage_violations"]["mean"] == 0.0 and row["min_rate_shortfall_bps"]["mean"] == 0.0
    assert "(kbit/J)" in (out / "scores.md").read_text()


def test_evaluate_trace_records_per_step_info():
    from baselines.cai2019.policies import StraightLinePolicy

    rec = evaluate(StraightLinePolicy, "secure_env/UavSecureOfdma-v0", [3], trace=("position_m",),
                   num_slots=5, end_xy=(100.0, 0.0))[0]
    path = np.asarray(rec["trace"]["position_m"])
    np.testing.assert_allclose(path, [[20.0 * i, 0.0] for i in range(1, 6)], atol=1e-4)


def test_quantum_uav_scoreboard_lists_both_baselines_and_the_agent(tmp_path):
    out = tmp_path / "quav"
    res = _run([sys.executable, str(ROOT / "train.py"), "--env", "secure_env/QuantumUav-v0",
                "--timesteps", "128", "--hp", "n_steps=32", "--hp", "batch_size=32", "--hp", "n_envs=2",
                "--eval-episodes", "1", "--out", str(out), "--no-progress", "--env-kw", "num_subcarriers=8",
                "--env-kw", "num_slots=20", "--env-kw", "end_xy=[400, 0]"])
    assert res.returncode == 0, res.stderr
    scores = json.loads((out / "scores.json").read_text())
    assert set(scores["policies"]) == {"ppo", "straight_line_qkd", "algorithm3_qkd"}
    assert scores["metric"] == "secure_energy_efficiency_bits_per_joule"
    for name in ("| ppo | agent |", "| algorithm3_qkd | baseline |", "| straight_line_qkd | baseline |"):
        assert name in (out / "scores.md").read_text()
