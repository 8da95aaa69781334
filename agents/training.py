"""Train an SB3 agent on an env id with atomic, resumable checkpoints, then score it.

Everything a run writes lives under its run directory:

    <out>/checkpoints/model.zip         latest checkpoint (written to a temp file, then renamed)
    <out>/checkpoints/vecnormalize.pkl  its VecNormalize statistics (when normalisation is on)
    <out>/monitor/*.monitor.csv         per-episode returns (appended across resumes)
    <out>/tb/                           TensorBoard logs (only when tensorboard is installed)
    <out>/model.zip, vecnormalize.pkl   the final model
    <out>/run.json                      settings and final timesteps
    <out>/scores.json, scores.md        the scoreboard; learning_curve.png

A run killed at any moment resumes with ``resume=True`` from the last checkpoint and loses at most
the timesteps since then.
"""
from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.factory import algo_class, coerce_numbers, load_hyperparams, split_hyperparams

DEFAULT_CHECKPOINT_FREQ = 10_000


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename (never a half-written file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass
class TrainConfig:
    """What a training run needs; ``hyperparams`` are CLI overrides on top of the YAML file."""

    env_id: str
    algo: str = "ppo"
    timesteps: int | None = None
    seed: int = 0
    n_envs: int | None = None
    out: Path = Path("runs/default")
    resume: bool = False
    hyperparams: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    progress_bar: bool = True
    torch_threads: int = 1
    vectorized: bool = False      # the native batched vector env instead of DummyVecEnv

class AgentPolicy:
    """A trained model plus its observation normalisation, behind SB3's ``predict``."""

    def __init__(self, model: Any, vecnormalize: Any = None) -> None:
        self.model = model
        self.vecnormalize = vecnormalize

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        obs = observation
        if self.vecnormalize is not None:
            obs = self.vecnormalize.normalize_obs(np.asarray(observation))
        return self.model.predict(obs, state=state, episode_start=episode_start,
                                  deterministic=deterministic)


def _checkpoint_callback(ckpt_dir: Path, freq: int) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class AtomicCheckpoint(BaseCallback):
        """Save model (and VecNormalize) every ``freq`` timesteps via temp file + rename."""

        def __init__(self) -> None:
            super().__init__()
            self.last = 0

        def _on_training_start(self) -> None:
            self.last = self.num_timesteps

        def _on_step(self) -> bool:
            if self.num_timesteps - self.last >= freq:
                self.last = self.num_timesteps
                save_checkpoint(self.model, ckpt_dir)
            return True

    return AtomicCheckpoint()


def save_checkpoint(model: Any, ckpt_dir: Path) -> None:
    """Atomically save the model, then its VecNormalize statistics, into ``ckpt_dir``."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    tmp = ckpt_dir / "model.tmp.zip"
    model.save(tmp)
    os.replace(tmp, ckpt_dir / "model.zip")
    vn = model.get_vec_normalize_env()
    if vn is not None:
        tmp_vn = ckpt_dir / "vecnormalize.tmp.pkl"
        vn.save(str(tmp_vn))
        os.replace(tmp_vn, ckpt_dir / "vecnormalize.pkl")


def _make_venv(cfg: TrainConfig, run: dict[str, Any], env_kwargs: dict[str, Any], out: Path,
               resume_vn: Path | None) -> Any:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    (out / "monitor").mkdir(parents=True, exist_ok=True)
    n_envs = int(cfg.n_envs or run.get("n_envs", 8))
    if cfg.vectorized:
        from agents.vec_adapter import make_native_vec_env

        venv = make_native_vec_env(cfg.env_id, n_envs, cfg.seed, env_kwargs, out / "monitor")
    else:
        venv = make_vec_env(cfg.env_id, n_envs=n_envs, seed=cfg.seed, env_kwargs=env_kwargs,
                            monitor_dir=str(out / "monitor"),
                            monitor_kwargs={"override_existing": not cfg.resume})
    norm = run.get("normalize", False)
    if norm:
        if resume_vn is not None and resume_vn.exists():
            venv = VecNormalize.load(str(resume_vn), venv)
        else:
            venv = VecNormalize(venv, **(norm if isinstance(norm, dict) else {}))
    return venv


def train(cfg: TrainConfig) -> tuple[AgentPolicy, dict[str, Any]]:
    """Train (or resume) and save the final model; return the policy and the run record."""
    import torch

    torch.set_num_threads(cfg.torch_threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    hp = load_hyperparams(cfg.algo, cfg.env_id, cfg.hyperparams)
    run, kwargs = split_hyperparams(hp)
    kwargs = coerce_numbers(kwargs)
    env_kwargs = {**(run.get("env_kwargs") or {}), **cfg.env_kwargs}
    total = int(cfg.timesteps if cfg.timesteps is not None else run.get("n_timesteps", 50_000))
    if total < 0:
        raise ValueError(f"timesteps must be >= 0, got {total}")
    freq = int(run.get("checkpoint_freq", DEFAULT_CHECKPOINT_FREQ))
    ckpt = out / "checkpoints"
    cls = algo_class(cfg.algo)
    resuming = cfg.resume and (ckpt / "model.zip").exists()
    venv = _make_venv(cfg, run, env_kwargs, out, ckpt / "vecnormalize.pkl" if resuming else None)
    tb = str(out / "tb") if importlib.util.find_spec("tensorboard") else None
    if resuming:
        model = cls.load(ckpt / "model.zip", env=venv, tensorboard_log=tb)
    else:
        model = cls(run.get("policy", "MlpPolicy"), venv, seed=cfg.seed, tensorboard_log=tb,
                    verbose=0, **kwargs)
    remaining = max(total - model.num_timesteps, 0)
    record = {"env_id": cfg.env_id, "algo": cfg.algo, "seed": cfg.seed, "timesteps_asked": total,
              "resumed_from": int(model.num_timesteps) if resuming else None,
              "hyperparams": hp, "env_kwargs": env_kwargs}
    if remaining > 0:
        progress = cfg.progress_bar and importlib.util.find_spec("tqdm") is not None \
            and importlib.util.find_spec("rich") is not None
        model.learn(remaining, callback=_checkpoint_callback(ckpt, freq),
                    reset_num_timesteps=not resuming, progress_bar=progress,
                    tb_log_name=cfg.algo)
    save_checkpoint(model, ckpt)
    save_checkpoint(model, out)  # the final model.zip (+ vecnormalize.pkl) of the run
    vn = model.get_vec_normalize_env()
    if vn is not None:
        vn.training = False
        vn.norm_reward = False
    record["timesteps_done"] = int(model.num_timesteps)
    atomic_write_text(out / "run.json", json.dumps(record, indent=2, default=str))
    venv.close()
    return AgentPolicy(model, vn), record


def learning_curve(out: Path) -> tuple[np.ndarray, np.ndarray]:
    """(cumulative timesteps, episode return) from the run's Monitor files, in time order."""
    rows = []
    for path in sorted((Path(out) / "monitor").glob("*.monitor.csv")):
        for line in path.read_text().splitlines():
            if line.startswith("#") or line.startswith("r,") or not line.strip():
                continue
            r, length, t = (float(x) for x in line.split(",")[:3])
            rows.append((t, r, length))
    if not rows:
        return np.zeros(0), np.zeros(0)
    rows.sort()
    arr = np.array(rows)
    return np.cumsum(arr[:, 2]), arr[:, 1]


def plot_learning_curve(out: Path, title: str) -> Path:
    """Write ``learning_curve.png`` (episode return and its running mean vs timesteps)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps, returns = learning_curve(out)
    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if len(steps):
        ax.plot(steps, returns, ".", alpha=0.25, label="episode return")
        w = max(1, len(returns) // 50)
        smooth = np.convolve(returns, np.ones(w) / w, mode="valid")
        ax.plot(steps[w - 1:], smooth, "-", label=f"running mean ({w} episodes)")
        ax.legend()
    ax.set_xlabel("timesteps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    path = Path(out) / "learning_curve.png"
    fig.savefig(path.with_name("learning_curve.tmp.png"))
    os.replace(path.with_name("learning_curve.tmp.png"), path)
    return path
