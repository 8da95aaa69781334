"""Misuse of the env API gives one clear error everywhere: step before reset, step after the episode ended."""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import secure_env

SHORT: dict[str, dict[str, Any]] = {
    "secure_env/QkdNoma-v0": dict(frames_per_episode=2),
    "secure_env/UavSecureOfdma-v0": dict(num_slots=2, end_xy=(50.0, 0.0), num_subcarriers=4),
    "secure_env/QuantumUav-v0": dict(num_slots=2, end_xy=(50.0, 0.0), num_subcarriers=4),
}


@pytest.mark.parametrize("env_id", secure_env.ENV_IDS)
def test_step_after_the_episode_ended_raises_runtime_error(env_id: str) -> None:
    env = gym.make(env_id, **SHORT[env_id]).unwrapped
    env.reset(seed=0)
    a = np.zeros(env.action_space.shape, dtype=np.float32)
    for _ in range(2):
        _, _, terminated, truncated, _ = env.step(a)
    assert terminated or truncated
    with pytest.raises(RuntimeError, match=r"after the episode ended; call reset\(\)"):
        env.step(a)
    with pytest.raises(RuntimeError, match="after the episode ended"):     # and stays so
        env.step(a)
    env.reset()
    env.step(a)                # fine again after reset


@pytest.mark.parametrize("env_id", secure_env.ENV_IDS)
def test_step_before_reset_raises_runtime_error_on_the_unwrapped_env(env_id: str) -> None:
    env = gym.make(env_id, **SHORT[env_id]).unwrapped
    a = np.zeros(env.action_space.shape, dtype=np.float32)
    with pytest.raises(RuntimeError, match=r"before reset\(\); call reset\(\)"):
        env.step(a)
    env.reset(seed=0)
    env.step(a)


@pytest.mark.parametrize("env_id", secure_env.ENV_IDS)
def test_step_before_reset_raises_runtime_error_on_the_native_vector_env(env_id: str) -> None:
    venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", **SHORT[env_id])
    a = np.zeros(venv.action_space.shape, dtype=np.float32)
    with pytest.raises(RuntimeError, match=r"before reset\(\); call reset\(\)"):
        venv.step(a)
    venv.reset(seed=0)
    for _ in range(5):         # and never after reset, through autoresets
        venv.step(a)
