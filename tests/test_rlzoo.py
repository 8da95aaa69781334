"""The hyperparameter files load in rl-zoo3 as they are (issue 13, point 11).

Every entry of ``agents/hyperparams/<algo>.yml`` (and the ``default`` entry rl-zoo3 uses for an id
without one) goes through rl-zoo3's own ``ExperimentManager`` up to a built model, and our factory
reads the same values. The short training and ``enjoy`` runs through rl-zoo3's entry points are
marked slow (``pytest -m slow tests/test_rlzoo.py``).
"""
from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from stable_baselines3.common.vec_env import VecNormalize

import secure_env  # noqa: F401  (registers the ids rl-zoo3 is asked for)
from agents.factory import ALGOS, HYPERPARAMS_DIR, PROJECT_KEY, load_hyperparams

ROOT = Path(__file__).resolve().parents[1]
IDS = ("secure_env/QkdNoma-v0", "secure_env/UavSecureOfdma-v0", "secure_env/QuantumUav-v0")
CASES = [(algo, env_id) for algo in ALGOS for env_id in IDS]


def _file(algo: str) -> dict:
    return yaml.safe_load((HYPERPARAMS_DIR / f"{algo}.yml").read_text())


def _zoo_manager(algo: str, env_id: str, log_folder: Path, config: Path | None = None):
    from rl_zoo3.exp_manager import ExperimentManager

    args = argparse.Namespace(algo=algo, env=env_id)   # only saved to args.yml by rl-zoo3
    return ExperimentManager(args, algo, env_id, str(log_folder), n_timesteps=256, eval_freq=-1,
                             seed=0, verbose=0, config=str(config or HYPERPARAMS_DIR / f"{algo}.yml"))


def _sub_envs(venv):
    while hasattr(venv, "venv"):
        venv = venv.venv
    return [e.unwrapped for e in venv.envs]


@pytest.mark.parametrize("algo,env_id", CASES)
def test_every_entry_builds_in_rl_zoo3_with_the_factorys_values(algo, env_id, tmp_path):
    ours = load_hyperparams(algo, env_id)
    manager = _zoo_manager(algo, env_id, tmp_path)
    read, _ = manager.read_hyperparameters()
    project = _file(algo).get(PROJECT_KEY) or {}
    assert read == {k: v for k, v in ours.items() if k not in project}
    model, _ = manager.setup_experiment()              # rl-zoo3 reads, preprocesses and builds
    try:
        assert type(model).__name__.lower() == algo
        assert model.n_envs == ours["n_envs"]
        for key in ("gamma", "n_steps", "batch_size", "gae_lambda", "n_epochs", "ent_coef", "learning_starts"):
            if key in ours:
                assert getattr(model, key) == pytest.approx(ours[key]), key
        if "learning_rate" in ours:
            assert model.lr_schedule(1.0) == pytest.approx(ours["learning_rate"])
        if "policy_kwargs" in ours:
            assert model.policy_kwargs["net_arch"] == ours["policy_kwargs"]["net_arch"]
        # env_kwargs and normalize reach rl-zoo3's envs as they reach ours
        subs = _sub_envs(model.get_env())
        assert len(subs) == ours["n_envs"]
        for key, value in (ours.get("env_kwargs") or {}).items():
            assert {getattr(e.scenario, key) for e in subs} == {value}, key
        if env_id != IDS[0] and "env_kwargs" not in ours:
            assert {e.scenario.action_mode for e in subs} == {"full"}
        norm = ours.get("normalize", False)
        venv = model.get_env()
        assert isinstance(venv, VecNormalize) == bool(norm)
        if isinstance(norm, dict):
            assert venv.gamma == pytest.approx(norm["gamma"])
    finally:
        model.get_env().close()


def test_uav_entries_train_in_the_velocity_mode_with_normalisation_in_both_readers():
    for env_id in IDS[1:]:
        hp = load_hyperparams("ppo", env_id)
        assert hp["env_kwargs"] == {"action_mode": "velocity"}
        assert hp["normalize"] == {"gamma": 0.999} and hp["gamma"] == 0.999


def test_entries_hold_only_keys_rl_zoo3_reads_and_project_settings_sit_apart():
    for algo in ALGOS:
        data = _file(algo)
        assert "checkpoint_freq" in data[PROJECT_KEY]
        for name, entry in data.items():
            if name == PROJECT_KEY:
                continue
            assert "checkpoint_freq" not in entry, (algo, name)
            assert {"policy", "n_envs", "n_timesteps"} <= set(entry), (algo, name)
            assert all(not isinstance(v, str) or k == "policy" for k, v in entry.items()), (algo, name)
    assert load_hyperparams("ppo", IDS[0])["checkpoint_freq"] == 10000
    assert load_hyperparams("sac", IDS[1])["checkpoint_freq"] == 5000     # `default` plus the project settings


def test_factory_picks_entries_as_rl_zoo3_does(tmp_path):
    (tmp_path / "ppo.yml").write_text(
        "project: {checkpoint_freq: 7}\n"
        "default: {policy: MlpPolicy, n_envs: 1, n_timesteps: 64, n_steps: 32, ent_coef: 0.5}\n"
        "secure_env/QkdNoma-v0: {policy: MlpPolicy, n_envs: 2, n_timesteps: 64, n_steps: 16}\n")
    listed = load_hyperparams("ppo", IDS[0], directory=tmp_path)
    assert listed == {"checkpoint_freq": 7, "policy": "MlpPolicy", "n_envs": 2, "n_timesteps": 64, "n_steps": 16}
    unlisted = load_hyperparams("ppo", IDS[1], {"n_steps": 8}, directory=tmp_path)
    assert unlisted == {"checkpoint_freq": 7, "policy": "MlpPolicy", "n_envs": 1, "n_timesteps": 64,
                        "n_steps": 8, "ent_coef": 0.5}
    for env_id, ours in ((IDS[0], listed), (IDS[1], load_hyperparams("ppo", IDS[1], directory=tmp_path))):
        zoo, _ = _zoo_manager("ppo", env_id, tmp_path / "logs", tmp_path / "ppo.yml").read_hyperparameters()
        assert zoo == {k: v for k, v in ours.items() if k != "checkpoint_freq"}


def test_dev_extra_installs_rl_zoo3_and_requests():
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    names = {d.split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in dev}
    assert {"rl-zoo3", "requests"} <= names


# -- short runs through rl-zoo3's entry points (slow) -------------------------------------------
def _zoo_main(monkeypatch, module: str, argv: list[str]) -> None:
    import importlib

    monkeypatch.setattr(sys, "argv", [module, *argv])
    entry = importlib.import_module(f"rl_zoo3.{module}")
    getattr(entry, module)()


@pytest.mark.slow
def test_rl_zoo3_trains_and_enjoys_every_id(monkeypatch, tmp_path, capsys):
    """``rl_zoo3.train -n 256`` on every id with ppo (and a2c, sac, td3 on QkdNoma-v0), then
    ``rl_zoo3.enjoy`` on each ppo model, which rebuilds the env from the saved env_kwargs."""
    runs = [("ppo", env_id) for env_id in IDS] + [(algo, IDS[0]) for algo in ("a2c", "sac", "td3")]
    for algo, env_id in runs:
        _zoo_main(monkeypatch, "train", ["--algo", algo, "--env", env_id, "--gym-packages", "secure_env",
                                         "-conf", str(HYPERPARAMS_DIR / f"{algo}.yml"), "-n", "256",
                                         "-f", str(tmp_path), "--seed", "0", "--eval-freq", "-1"])
        folder = tmp_path / algo / f"{env_id.replace('/', '-')}_1"
        assert (folder / f"{env_id.replace('/', '-')}.zip").exists(), (algo, env_id)
    capsys.readouterr()
    for env_id in IDS:
        _zoo_main(monkeypatch, "enjoy", ["--algo", "ppo", "--env", env_id, "--gym-packages", "secure_env",
                                         "-f", str(tmp_path), "--exp-id", "1", "-n", "60", "--no-render",
                                         "--deterministic"])
        out = capsys.readouterr().out
        assert "Mean reward" in out or "Atari Episode Score" in out or "Episode Reward" in out, out[-500:]
