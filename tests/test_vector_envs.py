"""Native vector envs: identical to B single envs (seeds, actions, autoreset), Gymnasium conventions."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import secure_env

CASES = [
    ("secure_env/QkdNoma-v0", dict(frames_per_episode=4, num_users=3)),
    ("secure_env/QkdNoma-v0", dict(frames_per_episode=3, multiple_access="tdma")),
    ("secure_env/UavSecureOfdma-v0", dict(num_slots=5, end_xy=(100.0, 0.0), random_users=True, num_subcarriers=8)),
    ("secure_env/UavSecureOfdma-v0", dict(num_slots=4, end_xy=(80.0, 0.0), r_min_bps=0.0, num_subcarriers=4)),
    ("secure_env/QuantumUav-v0", dict(num_slots=5, end_xy=(100.0, 0.0), random_users=True, num_subcarriers=8)),
    ("secure_env/QuantumUav-v0", dict(num_slots=4, end_xy=(80.0, 0.0), qkd_enabled=False, num_subcarriers=4)),
]
# every action mode, with and without the safety layer (short missions far from the start so that
# the safety layer's homing acts, R_min high enough for the pace guard to reserve subcarriers)
_MODE_KW = dict(num_slots=6, end_xy=(150.0, 40.0), random_users=True, num_subcarriers=8, r_min_bps=2e5)
CASES += [(env_id, dict(_MODE_KW, action_mode=mode, safety_layer=safety))
          for env_id in ("secure_env/UavSecureOfdma-v0", "secure_env/QuantumUav-v0")
          for mode in ("full", "compact", "velocity") for safety in (True, False)]
# the set observation (global features, then user tokens padded to max_users > num_users)
CASES += [(env_id, dict(_MODE_KW, action_mode=mode, observation_mode="set", max_users=5))
          for env_id in ("secure_env/UavSecureOfdma-v0", "secure_env/QuantumUav-v0")
          for mode in ("full", "compact", "velocity")]
CASES += [("secure_env/UavSecureOfdma-v0", dict(num_slots=4, end_xy=(80.0, 0.0), r_min_bps=0.0, num_subcarriers=4,
                                                observation_mode="set", max_users=4, action_mode="velocity"))]
# J eavesdropper discs, fixed or drawn per episode (issue 20), flat and set observation (disc tokens)
_EVE_KW = dict(num_slots=6, end_xy=(150.0, 40.0), random_users=True, num_subcarriers=8, r_min_bps=2e5,
               user_area_xy=((0.0, -60.0), (150.0, 60.0)))
CASES += [(env_id, dict(_EVE_KW, action_mode=mode, random_eves=True, num_eves=3, eve_radius_range_m=(5.0, 40.0),
                        eve_area_xy=((0.0, -50.0), (150.0, 50.0)), **obs))
          for env_id in ("secure_env/UavSecureOfdma-v0", "secure_env/QuantumUav-v0")
          for mode in ("full", "compact", "velocity") for obs in ({}, {"observation_mode": "set"})]
CASES += [("secure_env/UavSecureOfdma-v0", dict(_EVE_KW, action_mode="velocity",
                                                eve_discs=((60.0, 10.0, 20.0), (120.0, -20.0, 5.0))))]
# a number of users drawn per episode (num_users_range): the batch plays by groups of equal k
CASES += [(env_id, dict(_EVE_KW, action_mode=mode, num_users_range=(1, 4), random_eves=True, num_eves=2, **obs))
          for env_id in ("secure_env/UavSecureOfdma-v0", "secure_env/QuantumUav-v0")
          for mode in ("full", "compact", "velocity") for obs in ({}, {"observation_mode": "set", "max_users": 5})]


def _close(a, b, key):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype == object or b.dtype == object:
        assert a.tolist() == b.tolist(), key
    elif np.issubdtype(a.dtype, np.floating) or np.issubdtype(b.dtype, np.floating):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-300, err_msg=key)
    else:
        np.testing.assert_array_equal(a, b, err_msg=key)


@pytest.mark.parametrize("env_id, kw", CASES)
def test_vector_env_equals_single_envs_through_an_autoreset(env_id, kw):
    b = 3
    venv = gym.make_vec(env_id, num_envs=b, vectorization_mode="vector_entry_point",
                        autoreset_mode=AutoresetMode.SAME_STEP, **kw)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    singles = [gym.make(env_id, **kw) for _ in range(b)]
    obs_v, _ = venv.reset(seed=10)
    for i, env in enumerate(singles):
        o, _ = env.reset(seed=10 + i)
        np.testing.assert_array_equal(obs_v[i], o)
    rng = np.random.default_rng(0)
    ends = 0
    for step in range(13):
        acts = rng.uniform(-1, 1, venv.action_space.shape).astype(np.float32)
        if step % 4 == 3:   # extreme actions: full speed away, everything at a bound
            acts = np.sign(acts) * np.float32(1.0)
        obs_v, rew_v, term_v, trunc_v, info_v = venv.step(acts)
        for i, env in enumerate(singles):
            o, r, t, tr, info = env.step(acts[i])
            assert r == pytest.approx(rew_v[i], rel=1e-12, abs=1e-15)
            assert (t, tr) == (bool(term_v[i]), bool(trunc_v[i]))
            for key, value in info.items():
                if key == "episode_metrics":
                    continue
                _close(info_v[key][i], value, key)
            if t or tr:
                ends += 1
                np.testing.assert_array_equal(info_v["final_obs"][i], o)
                assert info_v["_episode_metrics"][i]
                for key, value in info["episode_metrics"].items():
                    assert info_v["episode_metrics"][key][i] == pytest.approx(value, rel=1e-12), key
                o, _ = env.reset()
            else:
                assert "_final_obs" not in info_v or not info_v["_final_obs"][i]
            np.testing.assert_array_equal(obs_v[i], o)
    assert ends >= 2 * b          # at least two autoresets per sub-env were compared


@pytest.mark.parametrize("env_id, kw", CASES[::2])
def test_vector_env_spaces_dtypes_and_seeding(env_id, kw):
    venv = gym.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point", **kw)
    single = gym.make(env_id, **kw)
    assert venv.single_action_space == single.action_space
    assert venv.single_observation_space == single.observation_space
    assert venv.action_space.shape == (4,) + single.action_space.shape
    obs, info = venv.reset(seed=3)
    assert obs.dtype == np.float32 and venv.observation_space.contains(obs)
    venv.action_space.seed(0)
    a = venv.action_space.sample()
    o1, r1, *_ = venv.step(a)
    assert venv.observation_space.contains(o1) and r1.shape == (4,) and r1.dtype == np.float64
    again = gym.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point", **kw)
    np.testing.assert_array_equal(again.reset(seed=3)[0], obs)
    np.testing.assert_array_equal(again.step(a)[0], o1)
    if kw.get("random_users") or env_id.endswith("QkdNoma-v0"):
        other = gym.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point", **kw)
        assert not np.array_equal(other.reset(seed=4)[0], obs)


@pytest.mark.parametrize("env_id", secure_env.ENV_IDS)
def test_vector_env_rejects_bad_actions_and_keywords(env_id):
    venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    venv.reset(seed=0)
    shape = venv.action_space.shape
    with pytest.raises(ValueError):
        venv.step(np.full(shape, np.nan, dtype=np.float32))
    with pytest.raises(ValueError):
        venv.step(np.zeros((3,) + shape[1:], dtype=np.float32))
    with pytest.raises(ValueError, match="nonsense"):
        gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", nonsense=1)


def test_sb3_adapter_matches_the_vector_env_and_reports_terminal_observations():
    from agents.vec_adapter import NativeVecEnv

    kw = dict(num_slots=3, end_xy=(60.0, 0.0), num_subcarriers=4)
    venv = NativeVecEnv("secure_env/UavSecureOfdma-v0", 2, **kw)
    venv.seed(5)
    obs = venv.reset()
    raw = gym.make_vec("secure_env/UavSecureOfdma-v0", num_envs=2, vectorization_mode="vector_entry_point",
                       autoreset_mode=AutoresetMode.SAME_STEP, **kw)
    np.testing.assert_array_equal(obs, raw.reset(seed=[5, 6])[0])
    rng = np.random.default_rng(1)
    for step in range(3):
        a = rng.uniform(-1, 1, (2,) + venv.action_space.shape).astype(np.float32)
        obs, rew, done, infos = venv.step(a)
        o2, r2, t2, tr2, i2 = raw.step(a)
        np.testing.assert_array_equal(obs, o2)
        np.testing.assert_allclose(rew, r2.astype(np.float32))
        np.testing.assert_array_equal(done, t2 | tr2)
    assert done.all()
    for i in range(2):
        np.testing.assert_array_equal(infos[i]["terminal_observation"], i2["final_obs"][i])
        assert infos[i]["TimeLimit.truncated"] is False
        assert infos[i]["episode_metrics"]["energy_efficiency_bits_per_joule"] == pytest.approx(
            i2["episode_metrics"]["energy_efficiency_bits_per_joule"][i])


def test_train_py_vectorized_runs_and_writes_a_learning_curve(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "vec"
    res = subprocess.run([sys.executable, str(root / "train.py"), "--env", "secure_env/QkdNoma-v0", "--vectorized",
                          "--timesteps", "512",
                          "--hp", "n_steps=32", "--hp", "batch_size=64", "--eval-episodes", "1",
                          "--env-kw", "frames_per_episode=4", "--out", str(out), "--no-progress"],
                         cwd=root, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert res.returncode == 0, res.stderr
    assert list((out / "monitor").glob("native-*.monitor.csv"))
    assert (out / "learning_curve.png").is_file() and (out / "scores.json").is_file()


@pytest.mark.parametrize("env_id", ["secure_env/UavSecureOfdma-v0", "secure_env/QuantumUav-v0"])
@pytest.mark.parametrize("mode", ["full", "compact", "velocity", "velocity-set"])
def test_vector_env_bits_equal_the_single_envs_bit_for_bit(env_id, mode):
    """Whole missions of the default layout size (K = 3, N_F = 128): every bit count of the native
    vector env equals the single env's exactly (the batch sums each env's bits in subcarrier order,
    as the single env does; the former one-hot sum along N_F made 388 of 1176 rewards differ in
    their last bits)."""
    kw = dict(action_mode=mode, random_users=True)
    if mode == "velocity-set":
        kw = dict(action_mode="velocity", random_users=True, observation_mode="set", max_users=6)
    b = 4
    venv = gym.make_vec(env_id, num_envs=b, vectorization_mode="vector_entry_point", **kw)
    singles = [gym.make(env_id, **kw) for _ in range(b)]
    venv.reset(seed=20)
    for i, env in enumerate(singles):
        env.reset(seed=20 + i)
    venv.action_space.seed(1)
    for _ in range(49):   # within the first mission of every env (no autoreset step)
        a = venv.action_space.sample()
        obs_v, r_v, _, _, info_v = venv.step(a)
        for i, env in enumerate(singles):
            o, r, _, _, info = env.step(a[i])
            assert info["bits"] == info_v["bits"][i]
            np.testing.assert_array_equal(info["bits_per_user"], info_v["bits_per_user"][i])
            # the flight's float and array paths can still differ in a float64's last bit (seen:
            # flight power once in 196 slots), visible in float32 only where a feature is near zero
            assert r == pytest.approx(r_v[i], rel=1e-13, abs=1e-13)
            assert info["energy_j"] == pytest.approx(info_v["energy_j"][i], rel=1e-13)
            np.testing.assert_allclose(o, obs_v[i], rtol=1e-6, atol=1e-12)
