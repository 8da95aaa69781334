"""The SB3 callbacks of a training run, and the atomic checkpoint they write.

:func:`episode_log_callback` appends each finished training episode to the run's episode log
(``monitor/episodes.csv``, the learning curve's source, :mod:`agents.runs` names it);
:func:`checkpoint_callback` saves the model every ``freq`` timesteps through
:func:`save_checkpoint` (temp file + rename, model then VecNormalize statistics), the checkpoint a
killed run resumes from. :func:`agents.training.train` runs both, the log first, so the log never
lags a checkpoint. Stable-Baselines3 is imported only when a callback is built.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np


def checkpoint_callback(ckpt_dir: Path, freq: int) -> Any:
    """A callback that saves the model (and VecNormalize) into ``ckpt_dir`` every ``freq``
    timesteps (:func:`save_checkpoint`), counted from where training (or a resume) started."""
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


def episode_log_callback(path: Path, metric: str) -> Any:
    """Append one row per finished training episode to ``path``: the global timestep at its end
    (the model's ``num_timesteps``, so rows are in step order across resumes), the env index, the
    Monitor's return and length, and ``metric`` from the episode's ``info["episode_metrics"]``."""
    from stable_baselines3.common.callbacks import BaseCallback

    class EpisodeLog(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.file: Any = None

        def _on_training_start(self) -> None:
            new = not path.exists() or path.stat().st_size == 0
            self.file = path.open("a")
            if new:
                self.file.write(f"timesteps,env,return,length,{metric}\n")
                self.file.flush()

        def _on_step(self) -> bool:
            dones = self.locals.get("dones")
            infos = self.locals.get("infos")
            if dones is None or infos is None:
                return True
            for i in np.flatnonzero(dones):
                episode = infos[i].get("episode")
                if episode is None:
                    continue
                value = infos[i].get("episode_metrics", {}).get(metric, math.nan)
                self.file.write(f"{self.num_timesteps},{i},{float(episode['r'])!r},{int(episode['l'])},"
                                f"{float(value)!r}\n")
            self.file.flush()  # before the checkpoint callback runs: the log never lags a checkpoint
            return True

        def _on_training_end(self) -> None:
            if self.file is not None:
                self.file.close()
                self.file = None

    return EpisodeLog()


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
