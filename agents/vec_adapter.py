"""The native vector envs (:class:`secure_env.envs.batched.BatchedEnv`) behind Stable-Baselines3's ``VecEnv``.

SB3 expects same-step autoreset with the last observation of an ended episode in
``infos[i]["terminal_observation"]``: exactly the native envs' ``AutoresetMode.SAME_STEP`` (which
the adapter requests; their default is gymnasium's NEXT_STEP) with
``info["final_obs"]``, so the adapter only reshapes ``info`` (a dict of batch arrays) into SB3's
list of per-env dicts, and only for the envs that ended (the others get a shared empty dict).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

import secure_env  # noqa: F401  (registers the ids and their vector entry points)


class NativeVecEnv(VecEnv):
    """An SB3 ``VecEnv`` over ``gymnasium.make_vec(id, num_envs, vectorization_mode="vector_entry_point",
    autoreset_mode=AutoresetMode.SAME_STEP)`` (the native envs default to gymnasium's NEXT_STEP)."""

    def __init__(self, env_id: str, num_envs: int, **env_kwargs: Any) -> None:
        if "autoreset_mode" in env_kwargs:
            raise ValueError("autoreset_mode is not an env keyword here: the SB3 adapter always uses SAME_STEP")
        self.venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                                 autoreset_mode=AutoresetMode.SAME_STEP, **env_kwargs)
        super().__init__(num_envs, self.venv.single_observation_space, self.venv.single_action_space)
        self._actions: np.ndarray | None = None
        self._empty: dict[str, Any] = {}

    def reset(self) -> np.ndarray:
        seed = self._seeds[0] if self._seeds and self._seeds[0] is not None else None
        obs, _ = self.venv.reset(seed=None if seed is None else [int(s) for s in self._seeds])
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        done = terminated | truncated
        infos: list[dict[str, Any]] = [self._empty] * self.num_envs
        if done.any():
            metrics = info.get("episode_metrics", {})
            for i in np.flatnonzero(done):
                infos[i] = {"terminal_observation": info["final_obs"][i],
                            "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                            "episode_metrics": {k: float(v[i]) for k, v in metrics.items()
                                                if not k.startswith("_")}}
        return obs, reward.astype(np.float32), done, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self.venv, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        return [getattr(self.venv, method_name)(*args, **kwargs)] * len(self._indices(indices))

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices: Any) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else indices


def make_native_vec_env(env_id: str, n_envs: int, seed: int, env_kwargs: dict[str, Any] | None = None,
                        monitor_dir: str | Path | None = None) -> VecEnv:
    """A seeded :class:`NativeVecEnv` with SB3's ``VecMonitor`` (episode returns in
    ``<monitor_dir>/native-<k>.monitor.csv``, a new file per process so a resumed run keeps the old)."""
    venv = NativeVecEnv(env_id, n_envs, **(env_kwargs or {}))
    venv.seed(seed)
    filename = None
    if monitor_dir is not None:
        d = Path(monitor_dir)
        d.mkdir(parents=True, exist_ok=True)
        k = len(list(d.glob("native-*.monitor.csv")))
        filename = str(d / f"native-{k}")
    return VecMonitor(venv, filename=filename)
