"""Native vector envs in gymnasium's default NEXT_STEP autoreset mode: equal to SyncVectorEnv of single
envs step for step (obs, rewards, flags, info with its ``_key`` masks), usable under gymnasium's
vector observation wrappers, SAME_STEP on request, and ``render()`` in ``rgb_array`` mode."""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.wrappers.vector import DtypeObservation, FlattenObservation, NormalizeObservation

import secure_env
from secure_env.envs.qkd_noma import QkdNomaVectorEnv
from secure_env.envs.quantum_uav import QuantumUavVectorEnv
from secure_env.envs.uav_ofdma import UavSecureOfdmaVectorEnv

UAV_IDS = ("secure_env/UavSecureOfdma-v0", "secure_env/QuantumUav-v0")
_SHORT = dict(num_slots=3, end_xy=(60.0, 20.0), random_users=True, num_subcarriers=4, r_min_bps=2e5)
CASES = [
    ("secure_env/QkdNoma-v0", dict(frames_per_episode=3, num_users=3)),
    ("secure_env/QkdNoma-v0", dict(frames_per_episode=1, multiple_access="tdma")),
] + [(env_id, dict(_SHORT, action_mode=mode, safety_layer=safety))
     for env_id in UAV_IDS
     for mode, safety in (("full", False), ("full", True), ("compact", None), ("compact", False),
                          ("velocity", None), ("velocity", False))]
CASES += [("secure_env/QuantumUav-v0", dict(_SHORT, num_slots=1, end_xy=(10.0, 0.0), action_mode="velocity",
                                            qkd_enabled=False))]


def _ids(case: tuple[str, dict[str, Any]]) -> str:
    env_id, kw = case
    return env_id.split("/")[1] + "-" + "-".join(f"{k}={v}" for k, v in kw.items()
                                                 if k in ("action_mode", "safety_layer", "num_slots",
                                                          "frames_per_episode", "multiple_access"))


def _values_equal(native: np.ndarray, sync: np.ndarray, key: str) -> None:
    if sync.dtype == object:    # SyncVectorEnv keeps values of unknown types in object arrays
        sync = np.asarray(list(sync))
    if np.issubdtype(sync.dtype, np.floating) or np.issubdtype(native.dtype, np.floating):
        np.testing.assert_allclose(native, sync, rtol=1e-12, atol=1e-300, err_msg=key)
    else:
        np.testing.assert_array_equal(native, sync, err_msg=key)


def assert_info_equal(native: dict[str, Any], sync: dict[str, Any], where: str = "info") -> None:
    """Same keys and masks; equal values where the mask is set; the native env's other rows are 0."""
    assert set(native) == set(sync), (where, sorted(set(native) ^ set(sync)))
    for key, value in sync.items():
        if key.startswith("_"):
            np.testing.assert_array_equal(native[key], value, err_msg=f"{where}[{key}]")
            assert native[key].dtype == np.bool_
            continue
        mask = sync[f"_{key}"]
        if isinstance(value, dict):
            assert_info_equal(native[key], value, f"{where}[{key}]")
            continue
        got = np.asarray(native[key])
        assert got.shape[0] == len(mask), key
        _values_equal(got[mask], value[mask], f"{where}[{key}]")
        assert not np.any(got[~mask]), f"{where}[{key}]: rows without the key must hold 0"


def _actions(rng: np.random.Generator, space: gym.Space, step: int) -> np.ndarray:
    a = rng.uniform(-1, 1, space.shape).astype(np.float32)
    if step % 3 == 2:      # extreme actions: every entry at a bound
        a = np.sign(a) * np.float32(1.0)
    return a


@pytest.mark.parametrize("env_id, kw", CASES, ids=[_ids(c) for c in CASES])
def test_next_step_vector_env_equals_sync_vector_env_through_autoresets(env_id: str, kw: dict[str, Any]) -> None:
    b = 3
    native = gym.make_vec(env_id, num_envs=b, **kw)           # no mode: the vector entry point, NEXT_STEP
    sync = gym.make_vec(env_id, num_envs=b, vectorization_mode="sync", **kw)
    assert isinstance(native.unwrapped, (QkdNomaVectorEnv, UavSecureOfdmaVectorEnv))
    assert isinstance(sync, SyncVectorEnv)
    assert native.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    o_n, i_n = native.reset(seed=21)
    o_s, i_s = sync.reset(seed=21)
    np.testing.assert_array_equal(o_n, o_s)
    assert_info_equal(i_n, i_s, "reset info")
    episode = kw.get("num_slots", kw.get("frames_per_episode"))
    rng = np.random.default_rng(3)
    ends = resets = 0
    prev_done = np.zeros(b, dtype=bool)
    for step in range(2 * (episode + 1) + 1):     # two autoresets, then one more step
        acts = _actions(rng, native.action_space, step)
        o_n, r_n, t_n, tr_n, i_n = native.step(acts)
        o_s, r_s, t_s, tr_s, i_s = sync.step(acts)
        np.testing.assert_array_equal(o_n, o_s, err_msg=f"obs at step {step}")
        assert o_n.dtype == o_s.dtype == np.float32
        np.testing.assert_allclose(r_n, r_s, rtol=1e-12, atol=1e-15, err_msg=f"reward at step {step}")
        np.testing.assert_array_equal(t_n, t_s)
        np.testing.assert_array_equal(tr_n, tr_s)
        assert_info_equal(i_n, i_s, f"info at step {step}")
        ends += int((t_s | tr_s).sum())
        resets += int(prev_done.sum())
        assert (r_s[prev_done] == 0.0).all()
        prev_done = t_s | tr_s
    assert ends >= 2 * b and resets >= 2 * b      # two autoresets of every sub-env were compared


@pytest.mark.parametrize("env_id", secure_env.ENV_IDS)
def test_the_reset_step_gives_first_obs_zero_reward_and_reset_info(env_id: str) -> None:
    kw = dict(frames_per_episode=2) if env_id.endswith("QkdNoma-v0") else dict(_SHORT, num_slots=2)
    venv = gym.make_vec(env_id, num_envs=2, **kw)
    first, _ = venv.reset(seed=5)
    again = gym.make_vec(env_id, num_envs=2, **kw)
    a = np.ones(venv.action_space.shape, dtype=np.float32)
    for _ in range(2):
        obs, rew, term, trunc, info = venv.step(a)
    assert (term | trunc).all() and info["_episode_metrics"].all()
    assert "final_obs" not in info           # NEXT_STEP: the ending step's obs is the last one
    obs, rew, term, trunc, info = venv.step(a)
    assert (rew == 0.0).all() and not term.any() and not trunc.any()
    assert "episode_metrics" not in info
    # the first observation of the next episode: sub-env i's generator continues (seed 5 + i)
    single = [gym.make(env_id, **kw) for _ in range(2)]
    for i, env in enumerate(single):
        env.reset(seed=5 + i)
        np.testing.assert_array_equal(obs[i], env.reset()[0])
    np.testing.assert_array_equal(again.reset(seed=5)[0], first)


def test_same_step_on_request_and_bad_modes_refused() -> None:
    env_id = "secure_env/UavSecureOfdma-v0"
    for mode in (AutoresetMode.SAME_STEP, "SameStep"):
        venv = gym.make_vec(env_id, num_envs=2, autoreset_mode=mode)
        assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert gym.make_vec(env_id, 2, autoreset_mode="NextStep").metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    for bad in (AutoresetMode.DISABLED, "same_step", 3):
        with pytest.raises(ValueError, match="autoreset_mode"):
            gym.make_vec(env_id, num_envs=2, autoreset_mode=bad)


def test_sb3_adapter_asks_for_same_step() -> None:
    from agents.vec_adapter import NativeVecEnv

    venv = NativeVecEnv("secure_env/QkdNoma-v0", 2, frames_per_episode=2)
    assert venv.venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    with pytest.raises(ValueError, match="autoreset_mode"):
        NativeVecEnv("secure_env/QkdNoma-v0", 2, autoreset_mode=AutoresetMode.NEXT_STEP)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")    # gymnasium's own Box(-inf, inf) checks
@pytest.mark.parametrize("env_id", secure_env.ENV_IDS)
def test_gymnasium_vector_observation_wrappers_work(env_id: str) -> None:
    kw = dict(frames_per_episode=2) if env_id.endswith("QkdNoma-v0") else dict(_SHORT, num_slots=2)
    wrapped = {
        "normalize": NormalizeObservation(gym.make_vec(env_id, num_envs=3, **kw)),
        "flatten": FlattenObservation(gym.make_vec(env_id, num_envs=3, **kw)),
        "dtype": DtypeObservation(gym.make_vec(env_id, num_envs=3, **kw), np.float64),
    }
    plain = gym.make_vec(env_id, num_envs=3, **kw)
    raw, _ = plain.reset(seed=0)
    for name, venv in wrapped.items():
        obs, _ = venv.reset(seed=0)
        assert obs.shape == raw.shape, name
        for _ in range(5):       # through an autoreset
            obs, rew, term, trunc, info = venv.step(np.zeros(venv.action_space.shape, dtype=np.float32))
            assert np.isfinite(obs).all() and obs.shape == raw.shape, name
    assert wrapped["dtype"].reset(seed=0)[0].dtype == np.float64
    np.testing.assert_array_equal(wrapped["flatten"].reset(seed=0)[0], raw)


@pytest.mark.parametrize("env_id, mode", [(env_id, AutoresetMode.NEXT_STEP) for env_id in secure_env.ENV_IDS]
                         + [("secure_env/QuantumUav-v0", AutoresetMode.SAME_STEP)])
def test_render_gives_the_sync_vector_envs_frames(env_id: str, mode: AutoresetMode) -> None:
    kw = dict(frames_per_episode=2, num_users=3) if env_id.endswith("QkdNoma-v0") else dict(_SHORT, num_slots=2)
    native = gym.make_vec(env_id, num_envs=2, render_mode="rgb_array", autoreset_mode=mode, **kw)
    sync = gym.make_vec(env_id, num_envs=2, vectorization_mode="sync", render_mode="rgb_array",
                        vector_kwargs={"autoreset_mode": mode}, **kw)
    assert native.render_mode == "rgb_array" and native.metadata["render_fps"] == sync.metadata["render_fps"]
    with pytest.raises(RuntimeError, match="reset"):
        native.render()
    native.reset(seed=1)
    sync.reset(seed=1)
    rng = np.random.default_rng(0)
    for step in range(4):     # first state, mid-episode, the last (NEXT_STEP) or next first state, reset
        if step:
            a = rng.uniform(-1, 1, native.action_space.shape).astype(np.float32)
            native.step(a)
            sync.step(a)
        frames, expected = native.render(), sync.render()
        assert isinstance(frames, tuple) and len(frames) == 2
        for got, want in zip(frames, expected):
            assert got.dtype == np.uint8 and got.ndim == 3 and got.shape[2] == 3
            np.testing.assert_array_equal(got, want, err_msg=f"frame at step {step}")


def test_render_mode_is_checked_at_construction() -> None:
    with pytest.raises(ValueError, match="render_mode"):
        gym.make_vec("secure_env/QkdNoma-v0", num_envs=2, render_mode="human")
    assert gym.make_vec("secure_env/QkdNoma-v0", num_envs=2).render() is None


def _sync_reference(step_infos: list[dict[str, Any] | None], reset_infos: list[dict[str, Any] | None],
                    n: int) -> dict[str, Any]:
    """SyncVectorEnv's NEXT_STEP info: each sub-env's step info, or its reset info where it reset."""
    ref: dict[str, Any] = {}
    for i in range(n):
        ref = VectorEnv._add_info(_NumEnvs(n), ref, step_infos[i] if step_infos[i] is not None else reset_infos[i], i)
    return ref


class _NumEnvs:
    def __init__(self, n: int) -> None:
        self.num_envs = n


def test_info_masks_of_a_step_where_only_some_sub_envs_reset() -> None:
    """The fixed-length envs end together; the mask logic must still hold for mixed batches."""
    from secure_env.envs.batched import masked_info, merge_reset_info

    n = 4
    live = np.array([True, False, True, False])
    step_info = {"bits": np.arange(n, dtype=np.float64) + 1.0, "position_m": np.arange(2 * n, dtype=np.float64)
                 .reshape(n, 2) + 1.0, "flag": np.array([True, True, False, True]),
                 "count": np.arange(n, dtype=np.int64) + 1}
    reset_info = {"position_m": -np.ones((n, 2)), "user_xy": np.full((n, 3, 2), 7.0)}
    got = masked_info(step_info, live)
    merge_reset_info(got, reset_info, ~live)
    ref = _sync_reference([{k: v[i] for k, v in step_info.items()} if live[i] else None for i in range(n)],
                          [{k: v[i] for k, v in reset_info.items()} for i in range(n)], n)
    assert_info_equal(got, ref)


@pytest.mark.parametrize("cls", [QkdNomaVectorEnv, UavSecureOfdmaVectorEnv, QuantumUavVectorEnv])
def test_vector_entry_point_defaults_to_next_step(cls: type) -> None:
    assert cls.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert cls(num_envs=2).metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
