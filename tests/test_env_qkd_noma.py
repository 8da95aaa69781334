"""QkdNoma-v0: Gymnasium API conformance, seeding, info contents and frame physics through the env.

Expected secure rates are recomputed in the test with plain formulas (eqs. (4), (8)-(10) and the
action codec as documented), from the channel the env reported BEFORE the step.
"""
from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import secure_env  # noqa: F401  (registers the env)
from secure_env.envs.qkd_noma import QkdNomaEnv

ENV_ID = "secure_env/QkdNoma-v0"
NOISE_W = 10.0 ** (-104.0 / 10.0) * 1e-3
P_MAX_W = 1.0
B = 1e6
T = 1.0
C = 3e8
M = 10
AB = 0.5


def make(**kw):
    return gym.make(ENV_ID, **kw)


def hand_frame(action, gains, dist, *, k, tdma=False, ab=AB, m=M, p_max=P_MAX_W, noise=NOISE_W,
               bw=B, frame=T, c=C):
    """Plain-Python model of one frame from the documented codec and the paper's equations."""
    a = [min(max(float(x), -1.0), 1.0) for x in action]
    eps = [10.0 ** (-3.0 * (1.0 - a[i]) / 2.0) for i in range(k)]            # 1e-3 ** ((1-a)/2)
    w = [10.0 ** (8.0 * (a[k + i] - 1.0) / 2.0) for i in range(k)]           # 8 decades
    split = [x / sum(w) for x in w]
    t_qkd = [dist[i] / c * math.ceil(8.0 * m / eps[i] ** 2) for i in range(k)]
    t_data = frame - sum(t_qkd)
    big_a = 4.0 * ab * ab
    err = [big_a * e * e / (2.0 * (1.0 - e) ** 2 + e * e) for e in eps]
    rate = []
    for i in range(k):
        if tdma:
            rate.append(split[i] * bw * math.log2(1.0 + gains[i] * p_max / noise))
        else:
            interf = sum(split[j] * p_max for j in range(k)
                         if (gains[j], j) > (gains[i], i))
            sinr = gains[i] * split[i] * p_max / (gains[i] * interf + noise)
            rate.append(bw * math.log2(1.0 + sinr))
    frac = max(t_data, 0.0) / frame
    secure = [frac * (1.0 - err[i]) * rate[i] for i in range(k)]
    return {"eps": eps, "split": split, "t_qkd": t_qkd, "t_data": t_data, "err": err,
            "rate": rate, "secure": secure, "min": min(secure), "feasible": t_data >= 0.0}


# --------------------------------------------------------------------------------------------
# API conformance
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(num_users=1), dict(num_users=2), dict(num_users=3),
                                dict(multiple_access="tdma"),
                                dict(num_users=3, multiple_access="tdma")])
def test_check_env_passes_without_warnings(kw):
    env = make(**kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    env.close()
    msgs = [f"{w.category.__name__}: {w.message} ({w.filename})" for w in caught]
    from_checker = [s for s in msgs if "gymnasium" in s]
    assert not from_checker, from_checker
    assert not msgs, msgs


def test_check_env_with_rgb_array_render_mode():
    env = make(render_mode="rgb_array")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    env.close()
    assert not [str(w.message) for w in caught if "gymnasium" in w.filename]


def run_episode(seed, actions, **kw):
    env = make(**kw)
    obs, info = env.reset(seed=seed)
    record = {"obs": [obs], "reset_info": info, "rewards": [], "infos": [], "flags": [],
              "positions": env.unwrapped.current_frame()["position_m"]}
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        record["obs"].append(obs)
        record["rewards"].append(r)
        record["infos"].append(info)
        record["flags"].append((term, trunc))
    env.close()
    return record


def assert_info_equal(i1, i2):
    assert set(i1) == set(i2)
    for key in i1:
        if isinstance(i1[key], dict):
            assert i1[key] == i2[key], key
        else:
            np.testing.assert_array_equal(np.asarray(i1[key]), np.asarray(i2[key]), err_msg=key)


def test_same_seed_gives_identical_episodes():
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1.0, 1.0, size=(20, 4)).astype(np.float32)
    actions[:, :2] = np.abs(actions[:, :2])  # mostly feasible eps ...
    actions[5, :2] = -1.0                     # ... and one infeasible frame
    e1 = run_episode(42, actions)
    e2 = run_episode(42, actions)
    assert len(e1["rewards"]) == 20
    for o1, o2 in zip(e1["obs"], e2["obs"]):
        np.testing.assert_array_equal(o1, o2)
    assert e1["rewards"] == e2["rewards"]
    assert e1["flags"] == e2["flags"]
    assert_info_equal(e1["reset_info"], e2["reset_info"])
    np.testing.assert_array_equal(e1["positions"], e2["positions"])
    for i1, i2 in zip(e1["infos"], e2["infos"]):
        assert_info_equal(i1, i2)
    assert e1["flags"][-1] == (False, True)


def test_different_seeds_differ():
    actions = np.zeros((3, 4), dtype=np.float32)
    e1 = run_episode(1, actions)
    e2 = run_episode(2, actions)
    assert not np.array_equal(e1["obs"][0], e2["obs"][0])
    assert not np.array_equal(e1["reset_info"]["distance_m"], e2["reset_info"]["distance_m"])
    assert e1["rewards"] != e2["rewards"]


@pytest.mark.parametrize("bad", [
    np.array([np.nan, 0.0, 0.0, 0.0], dtype=np.float32),
    np.array([0.0, 0.0, 0.0, np.nan]),
    np.array([0.0, np.inf, 0.0, 0.0], dtype=np.float32),
    np.array([0.0, 0.0, -np.inf, 0.0]),
    np.zeros(3, dtype=np.float32),
    np.zeros(6, dtype=np.float32),
    np.zeros((1, 4), dtype=np.float32),
    np.zeros((2, 2), dtype=np.float32),
])
def test_bad_actions_raise_value_error(bad):
    env = make().unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(bad)
    # the env is still usable after the rejected action
    _, _, _, _, info = env.step(np.zeros(4, dtype=np.float32))
    assert info["feasible"] in (True, False)


# --------------------------------------------------------------------------------------------
# info contents and physics through the env
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 3])
def test_info_keys_and_shapes(k):
    env = make(num_users=k)
    obs, info = env.reset(seed=3)
    assert obs.shape == (2 * k,) and obs.dtype == np.float32
    assert info["channel_gain"].shape == (k,)
    assert info["distance_m"].shape == (k,)
    assert np.all(info["channel_gain"] > 0.0)
    assert np.all(info["distance_m"] >= 1.0)
    assert np.all(info["distance_m"] <= 1000.0 * math.sqrt(0.5) + 1e-9)
    _, _, _, _, info = env.step(np.zeros(2 * k, dtype=np.float32))
    for key in ("channel_gain", "distance_m", "qkd_time_s", "secure_rate_bps", "basis_prob",
                "error_rate", "power_w"):
        assert np.asarray(info[key]).shape == (k,), key
    for key in ("data_time_s", "min_secure_rate_bps", "cost"):
        assert isinstance(info[key], float), key
    assert isinstance(info["feasible"], bool)
    assert info["cost"] >= 0.0
    env.close()


@pytest.mark.parametrize("k,tdma", [(1, False), (2, False), (3, False), (2, True), (3, True)])
def test_step_plays_the_channel_reported_before_it(k, tdma):
    env = make(num_users=k, multiple_access="tdma" if tdma else "noma")
    _, info = env.reset(seed=11)
    rng = np.random.default_rng(5)
    for _ in range(4):
        gains = [float(g) for g in info["channel_gain"]]
        dist = [float(d) for d in info["distance_m"]]
        action = np.concatenate([rng.uniform(0.2, 1.0, k), rng.uniform(-1.0, 1.0, k)]).astype(
            np.float32)
        ref = hand_frame(action, gains, dist, k=k, tdma=tdma)
        _, reward, _, _, info = env.step(action)
        np.testing.assert_allclose(info["basis_prob"], ref["eps"], rtol=1e-12)
        np.testing.assert_allclose(info["qkd_time_s"], ref["t_qkd"], rtol=1e-12)
        assert info["data_time_s"] == pytest.approx(ref["t_data"], rel=1e-12)
        np.testing.assert_allclose(info["error_rate"], ref["err"], rtol=1e-12)
        np.testing.assert_allclose(info["secure_rate_bps"], ref["secure"], rtol=1e-9)
        assert info["min_secure_rate_bps"] == pytest.approx(ref["min"], rel=1e-9)
        assert info["feasible"] is True
        assert info["cost"] == 0.0
        # reward = min secure rate / bandwidth when feasible
        assert reward == pytest.approx(ref["min"] / B, rel=1e-9)
        assert reward == pytest.approx(info["min_secure_rate_bps"] / B, rel=1e-12)
    env.close()


def test_observation_encodes_reported_channel():
    env = make(num_users=2)
    obs, info = env.reset(seed=8)
    for _ in range(3):
        g, d = info["channel_gain"], info["distance_m"]
        snr_db = [10.0 * math.log10(float(x) * P_MAX_W / NOISE_W) for x in g]
        expected = [(s - 40.0) / 20.0 for s in snr_db] + [float(x) / (1000.0 / math.sqrt(2.0))
                                                          for x in d]
        expected = [min(max(x, -10.0), 10.0) for x in expected]
        np.testing.assert_allclose(obs, expected, rtol=1e-6, atol=1e-6)
        obs, _, _, _, info = env.step(np.full(4, 0.5, dtype=np.float32))
    env.close()


def test_users_fixed_within_episode_fading_changes_each_step():
    env = make(num_users=3, frames_per_episode=10)
    _, info = env.reset(seed=21)
    dists = [info["distance_m"]]
    gains = [info["channel_gain"]]
    for _ in range(10):
        _, _, _, _, info = env.step(np.full(6, 0.4, dtype=np.float32))
        dists.append(info["distance_m"])
        gains.append(info["channel_gain"])
    for d in dists[1:]:
        np.testing.assert_array_equal(d, dists[0])
    # the distances are those of the users' positions (base station at the origin)
    pos = env.unwrapped.current_frame()["position_m"]
    for (x, y), d in zip(pos, dists[0]):
        assert max(math.hypot(float(x), float(y)), 1.0) == pytest.approx(float(d), rel=1e-12)
    # fading = h / 10^(-L(d)/10), with L(d) = 17 + 30 log10 d written out here
    pl = np.array([10.0 ** (-(17.0 + 30.0 * math.log10(float(x))) / 10.0) for x in dists[0]])
    fading = np.array(gains) / pl
    assert np.all(fading > 0.0)
    assert np.all(np.diff(fading, axis=0) != 0.0)  # every user, every step
    # a new episode moves the users
    _, info = env.reset(seed=22)
    assert not np.array_equal(info["distance_m"], dists[0])
    env.close()


def test_infeasible_action_flagged_with_negative_reward():
    env = make()
    _, info = env.reset(seed=4)
    dist = [float(d) for d in info["distance_m"]]
    action = np.array([-1.0, -1.0, 0.0, 0.0], dtype=np.float32)
    _, reward, terminated, truncated, info2 = env.step(action)
    # eps = 1e-3: ceil(80 / 1e-6) = 8e7 photons each, t_k = d_k / c * 8e7 (tens of seconds)
    t = [d / C * 8e7 for d in dist]
    np.testing.assert_allclose(info2["qkd_time_s"], t, rtol=1e-12)
    assert sum(t) > 10.0
    assert info2["feasible"] is False
    np.testing.assert_array_equal(info2["secure_rate_bps"], [0.0, 0.0])
    assert info2["min_secure_rate_bps"] == 0.0
    assert info2["cost"] == pytest.approx(sum(t) - T, rel=1e-12)
    assert reward == pytest.approx(-(sum(t) - T) / T, rel=1e-12)
    assert reward < 0.0
    assert not terminated and not truncated
    # the episode goes on: a feasible frame after it
    _, reward, _, _, info3 = env.step(np.array([0.5, 0.5, 0.0, 0.0], dtype=np.float32))
    assert info3["feasible"] is True and reward > 0.0
    env.close()


def test_truncation_and_episode_metrics():
    n = 7
    env = make(frames_per_episode=n)
    _, info = env.reset(seed=13)
    rates, feas = [], []
    for i in range(n):
        a = np.array([0.4, 0.4, 0.9, 0.3], dtype=np.float32)
        if i == 2:
            a[:2] = -1.0  # one infeasible frame: counts 0 in the mean
        _, reward, terminated, truncated, info = env.step(a)
        rates.append(info["min_secure_rate_bps"])
        feas.append(info["feasible"])
        assert terminated is False
        if info["feasible"]:
            assert reward == pytest.approx(info["min_secure_rate_bps"] / B, rel=1e-12)
        if i < n - 1:
            assert truncated is False
            assert "episode_metrics" not in info
    assert truncated is True
    assert feas.count(False) == 1 and rates[2] == 0.0
    em = info["episode_metrics"]
    mean = 0.0
    for r in rates:
        mean += r
    mean /= n
    assert em["mean_min_secure_rate_bps"] == pytest.approx(mean, rel=1e-12)
    assert em["frames"] == n
    assert em["infeasible_frames"] == 1
    # a fresh episode starts counting from zero
    env.reset(seed=14)
    for i in range(n):
        _, _, _, truncated, info = env.step(np.array([0.4, 0.4, 0.9, 0.3], dtype=np.float32))
    assert truncated is True and info["episode_metrics"]["frames"] == n
    assert info["episode_metrics"]["infeasible_frames"] == 0
    env.close()


def test_default_episode_length_is_20():
    env = make()
    env.reset(seed=0)
    flags = [env.step(np.zeros(4, dtype=np.float32))[3] for _ in range(20)]
    assert flags == [False] * 19 + [True]
    env.close()


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------
def test_render_rgb_array():
    env = make(render_mode="rgb_array")
    env.reset(seed=0)
    img = env.render()
    assert isinstance(img, np.ndarray) and img.dtype == np.uint8
    assert img.ndim == 3 and img.shape[2] == 3 and img.shape[0] > 10 and img.shape[1] > 10
    env.step(np.array([0.4, 0.4, 0.5, 0.5], dtype=np.float32))
    img2 = env.render()
    assert isinstance(img2, np.ndarray) and img2.dtype == np.uint8
    assert img2.shape == img.shape
    assert not np.array_equal(img, img2)  # the frame's eps and powers are drawn after a step
    env.close()


def test_render_none_returns_none():
    env = make()
    env.reset(seed=0)
    assert env.unwrapped.render() is None
    env.close()


@pytest.mark.parametrize("mode", ["human", "ansi", "rgb"])
def test_invalid_render_mode_raises(mode):
    with pytest.raises(ValueError, match="render_mode"):
        QkdNomaEnv(render_mode=mode)


@pytest.mark.parametrize("mode", ["ansi", "rgb"])
def test_invalid_render_mode_raises_through_gym_make(mode):
    # ("human" is not tested here: gym.make legitimately wraps rgb_array envs in HumanRendering)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gym.make's own "not in the possible render_modes" warning
        with pytest.raises(ValueError, match="render_mode"):
            gym.make(ENV_ID, render_mode=mode)
