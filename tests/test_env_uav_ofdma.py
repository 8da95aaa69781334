"""UavSecureOfdma-v0: Gymnasium conformance, seeding, hand-worked slots, reward bookkeeping, limits.

Expected slot numbers are recomputed in the test from the paper's formulas written out in plain
Python (LoS gain, Shannon rate per subcarrier, rotary-wing power with U_tip = Omega R, worst-case
eavesdropper distance), from the action codec as documented in the env's docstring.
"""
from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import secure_env  # noqa: F401  (registers the env)
from secure_env.core import uav_ofdma as model
from secure_env.envs.uav_ofdma import UavSecureOfdmaEnv

ENV_ID = "secure_env/UavSecureOfdma-v0"


def make(**kw):
    return gym.make(ENV_ID, **kw)


def p_fly_hand(v):
    """Eq. (4) with Table I: P0 = 580.65, P_I = 790.67, U_tip = 400 * 0.5, v0 = 7.2, d0 0.3, rho 1.225, s 0.05, A 0.79."""
    return (580.65 * (1 + 3 * v ** 2 / 200.0 ** 2)
            + 790.67 * math.sqrt(math.sqrt(1 + v ** 4 / (4 * 7.2 ** 4)) - v ** 2 / (2 * 7.2 ** 2))
            + 0.5 * 0.3 * 1.225 * 0.05 * 0.79 * v ** 3)


def action_for(vx, vy, total, weights, users, *, k=3, nf=128, v_max=30.0, peak=10.0):
    """The documented encoding written out: a = [v/V_max, 2 P/P_peak - 1, 2 w - 1, (2u+1)/K - 1]."""
    a = [vx / v_max, vy / v_max, 2 * total / peak - 1]
    a += [2 * w - 1 for w in weights]
    a += [(2 * u + 1) / k - 1 for u in users]
    assert len(a) == 3 + 2 * nf
    return np.array(a, dtype=np.float32)


# --------------------------------------------------------------------------------------------
# API conformance
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(), dict(num_users=1, user_xy=[[300.0, 50.0]]),
                                dict(random_users=True, num_users=5), dict(num_subcarriers=4),
                                dict(rotor="zeng2019", eve_radius_m=0.0)])
def test_check_env_passes_without_warnings(kw):
    env = make(**kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    env.close()
    assert not [str(w.message) for w in caught]


def test_spaces_match_the_documented_sizes():
    env = make(num_users=4, num_subcarriers=16, random_users=True)
    assert env.action_space.shape == (3 + 2 * 16,)
    assert env.observation_space.shape == (12 + 3 * 4,)
    assert env.action_space.dtype == np.float32 and env.observation_space.dtype == np.float32


def test_render_rgb_array_draws_an_image():
    env = make(render_mode="rgb_array")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    img = env.render()
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
    assert img.std() > 0  # not a blank canvas
    plain = make()
    plain.reset(seed=0)
    assert plain.render() is None


@pytest.mark.parametrize("bad", [np.full(259, np.nan), np.full(259, np.inf), np.zeros(258), np.zeros((1, 259))])
def test_bad_actions_raise_value_error(bad):
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(bad)


def test_one_nan_among_valid_values_raises():
    env = make()
    env.reset(seed=0)
    a = np.zeros(259, dtype=np.float32)
    a[100] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        env.step(a)


@pytest.mark.parametrize("kw, field", [
    (dict(num_users=0), "num_users"), (dict(gamma_tol=float("nan")), "gamma_tol"),
    (dict(peak_power_w=-1.0), "peak_power_w"), (dict(eve_xy=(1.0,)), "eve_xy"),
    (dict(user_xy=[[0.0, 0.0]]), "user_xy"), (dict(end_xy=(5000.0, 0.0)), "end_xy"),
    (dict(nonsense=1), "nonsense"), (dict(rotor="jet"), "rotor"),
])
def test_invalid_keywords_raise_value_error_naming_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        make(**kw)


def test_invalid_render_mode_raises():
    with pytest.raises(ValueError, match="render_mode"):
        UavSecureOfdmaEnv(render_mode="human")


# --------------------------------------------------------------------------------------------
# Seeding and determinism
# --------------------------------------------------------------------------------------------
def _rollout(env, seed, actions):
    obs, info = env.reset(seed=seed)
    out = [(obs.copy(), None)]
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append((obs.copy(), r, term, trunc, {k: v for k, v in info.items() if k != "episode_metrics"}))
        if term:
            break
    return out, info


def _same(x, y):
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    if isinstance(x, (tuple, list)):
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y))
    return np.array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("random_users", [False, True])
def test_same_seed_same_episode(random_users):
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (50, 259)).astype(np.float32)
    a, info_a = _rollout(make(random_users=random_users), 7, actions)
    b, info_b = _rollout(make(random_users=random_users), 7, actions)
    assert _same(a, b)
    assert info_a["episode_metrics"] == info_b["episode_metrics"]


def test_random_users_differ_across_seeds_and_stay_in_their_area():
    env = make(random_users=True, user_area_xy=[[100.0, -50.0], [900.0, 50.0]])
    users = []
    for seed in (1, 2):
        env.reset(seed=seed)
        u = env.unwrapped.geometry()["user_xy"]
        assert np.all(u[:, 0] >= 100) and np.all(u[:, 0] <= 900)
        assert np.all(u[:, 1] >= -50) and np.all(u[:, 1] <= 50)
        users.append(u)
    assert not np.allclose(users[0], users[1])
    fixed = make()
    fixed.reset(seed=1)
    np.testing.assert_array_equal(fixed.unwrapped.geometry()["user_xy"],
                                  [[250, 150], [500, -150], [750, 150]])


# --------------------------------------------------------------------------------------------
# One slot by hand
# --------------------------------------------------------------------------------------------
def test_first_slot_matches_a_hand_computation():
    env = make()
    env.reset(seed=0)
    # 12 m/s east, 2 W total: 64 subcarriers with weight 1 and 64 with weight 0.5; users 0,1,2 cyclic
    weights = [1.0 if i < 64 else 0.5 for i in range(128)]
    users = [i % 3 for i in range(128)]
    a = action_for(12.0, 0.0, 2.0, weights, users)
    _, reward, term, trunc, info = env.step(a)
    # decoded exactly as the docstring says (float32 rounding only)
    af = a.astype(np.float64)
    v = 30.0 * af[0]
    total = 10.0 * (af[2] + 1) / 2
    w = (af[3:131] + 1) / 2
    p = total * w / w.sum()
    q = (2.0 * v, 0.0)                                   # q[1] = q0 + tau v[1]
    gamma0 = 1e-4 / (10 ** (-110 / 10) * 1e-3 * 1e6 / 128)
    assert gamma0 == pytest.approx(1.28e6)
    user_xy = [(250, 150), (500, -150), (750, 150)]
    bits = [0.0, 0.0, 0.0]
    for i in range(128):
        ux, uy = user_xy[users[i]]
        d2 = 100.0 ** 2 + (q[0] - ux) ** 2 + (q[1] - uy) ** 2
        bits[users[i]] += 2.0 * (1e6 / 128) * math.log2(1 + p[i] * gamma0 / d2)
    np.testing.assert_allclose(info["bits_per_user"], bits, rtol=1e-10)
    assert info["bits"] == pytest.approx(sum(bits), rel=1e-10)
    assert info["flight_power_w"] == pytest.approx(p_fly_hand(v), rel=1e-9)
    assert info["energy_j"] == pytest.approx(2.0 * (total + 1.0 + p_fly_hand(v)), rel=1e-9)
    gap = max(math.hypot(q[0] - 500, q[1]) - 50.0, 0.0)
    d_e2 = 100.0 ** 2 + gap ** 2
    assert info["leakage_snr_max"] == pytest.approx(p.max() * gamma0 / d_e2, rel=1e-9)
    assert info["leakage_violation"] == (p.max() * gamma0 / d_e2 > 0.5 * (1 + 1e-5))
    np.testing.assert_allclose(info["position_m"], q, rtol=1e-12)
    # first reward: EE_1 / 1000 minus the leakage penalty
    ee1 = sum(bits) / info["energy_j"]
    excess = max(p.max() * gamma0 / d_e2 / 0.5 - (1 + 1e-5), 0.0)
    assert reward == pytest.approx(ee1 / 1000 - excess, rel=1e-9)
    assert not term and not trunc


def test_observation_matches_the_documented_layout():
    env = make()
    obs, _ = env.reset(seed=0)
    # at q0 = (0, 0), hovering, 50 slots left, L = 1000 m
    np.testing.assert_allclose(obs[:8], [0, 0, 0, 0, 1.0, 1.0, 0.0, (50 * 60 - 1000) / 1000], atol=1e-6)
    np.testing.assert_allclose(obs[8:11], [0.5, 0.0, 0.05], atol=1e-6)
    cap = 128 * 0.5 * (100.0 ** 2 + 450.0 ** 2) / 1.28e6
    assert obs[11] == pytest.approx(math.log10(cap / 10.0), abs=1e-5)
    np.testing.assert_allclose(obs[12:18], [0.25, 0.15, 0.5, -0.15, 0.75, 0.15], atol=1e-6)
    np.testing.assert_allclose(obs[18:21], 0.0)
    a = action_for(10.0, 0.0, 0.0, [0.0] * 128, [0] * 128)
    obs, *_ = env.step(a)
    np.testing.assert_allclose(obs[:2], [0.02, 0.0], atol=1e-6)
    np.testing.assert_allclose(obs[2:5], [1 / 3, 0.0, 49 / 50], atol=1e-6)
    assert env.observation_space.contains(obs)


# --------------------------------------------------------------------------------------------
# Limits, projections, penalties, episode end
# --------------------------------------------------------------------------------------------
def test_random_actions_never_break_speed_or_acceleration_limits():
    env = make()
    env.reset(seed=3)
    rng = np.random.default_rng(3)
    prev = None
    for _ in range(50):
        _, _, term, _, info = env.step(rng.uniform(-1, 1, 259).astype(np.float32))
        v = info["velocity_mps"]
        assert np.linalg.norm(v) <= 30.0 + 1e-9
        if prev is not None:
            assert np.linalg.norm(v - prev) <= 10.0 + 1e-9
        prev = v
        assert info["transmit_power_w"] <= 10.0 * (1 + 1e-12)
    assert term


def test_velocity_command_beyond_the_limits_is_projected_and_reported():
    env = make()
    env.reset(seed=0)
    _, _, _, _, info = env.step(action_for(30.0, 30.0, 0.0, [0.0] * 128, [0] * 128))
    np.testing.assert_allclose(info["velocity_mps"], [30 / math.sqrt(2)] * 2, rtol=1e-6)
    assert info["velocity_projected"]
    _, _, _, _, info = env.step(action_for(-30.0, -30.0, 0.0, [0.0] * 128, [0] * 128))
    # from (21.2, 21.2) the acceleration disc of radius 10 m/s is the binding set
    assert np.linalg.norm(info["velocity_mps"] - [30 / math.sqrt(2)] * 2) == pytest.approx(10.0, rel=1e-9)
    assert info["velocity_projected"]


def test_total_power_limit_scales_transmit_power():
    # P_max just above P_C + P_fly(10 m/s): only about 1.4 W is left for transmission
    p_max_w = 1.0 + p_fly_hand(10.0) + 1.4
    env = make(p_max_dbm=10 * math.log10(p_max_w * 1e3))
    env.reset(seed=0)
    _, _, _, _, info = env.step(action_for(10.0, 0.0, 10.0, [1.0] * 128, [0] * 128))
    assert info["power_projected"]
    speed = float(np.linalg.norm(info["velocity_mps"]))      # 10 m/s up to float32 rounding
    assert info["transmit_power_w"] == pytest.approx(p_max_w - 1.0 - p_fly_hand(speed), rel=1e-9)
    assert info["transmit_power_w"] == pytest.approx(1.4, rel=1e-4)
    assert info["cost_power"] == 0.0


def test_return_telescopes_to_the_energy_efficiency_minus_penalties():
    rng = np.random.default_rng(5)
    env = make()
    env.reset(seed=5)
    ret, pen = 0.0, 0.0
    s = env.unwrapped.scenario
    while True:
        _, r, term, _, info = env.step(rng.uniform(-1, 1, 259).astype(np.float32))
        ret += r
        pen += s.leakage_penalty * (info["cost_leakage"] + info["cost_power"])
        if term:
            break
    pen += s.qos_penalty * info["cost_qos"] + s.destination_penalty * info["cost_destination"]
    m = info["episode_metrics"]
    assert m["energy_efficiency_bits_per_joule"] == pytest.approx(m["total_bits"] / m["total_energy_j"], rel=1e-12)
    assert ret == pytest.approx(m["energy_efficiency_bits_per_joule"] / 1000 - pen, rel=1e-9, abs=1e-9)
    assert pen > 0  # random actions leak and miss the destination


def test_hovering_misses_the_destination_and_is_penalised():
    env = make(num_slots=5, end_xy=(100.0, 0.0))
    env.reset(seed=0)
    hover = action_for(0.0, 0.0, 0.0, [0.0] * 128, [0] * 128)
    for _ in range(4):
        *_, info = env.step(hover)
        assert info["cost_destination"] == 0.0
    _, r, term, trunc, info = env.step(hover)
    assert term and not trunc
    m = info["episode_metrics"]
    assert m["final_position_error_m"] == pytest.approx(100.0)
    assert m["destination_reached"] == 0.0
    assert info["cost_destination"] == pytest.approx(100.0 / 60.0)
    # no bits at all: every user misses R_min entirely
    assert m["min_rate_shortfall_bps"] == pytest.approx(1e4)
    assert info["cost_qos"] == pytest.approx(3.0)
    assert r == pytest.approx(-(100.0 / 60.0) - 3.0)
    with pytest.raises(RuntimeError):
        env.step(hover)


def test_leakage_above_the_cap_is_flagged_and_at_the_cap_is_not():
    env = make(eve_xy=(20.0, 0.0), eve_radius_m=10.0)
    env.reset(seed=0)
    # at q[1] = (20, 0) the eavesdropper may be right below: cap = 0.5 * 100^2 / 1.28e6 W per subcarrier
    cap = 0.5 * 100.0 ** 2 / 1.28e6
    _, _, _, _, info = env.step(action_for(10.0, 0.0, 128 * cap, [1.0] * 128, [0] * 128))
    assert info["leakage_snr_max"] == pytest.approx(0.5, rel=1e-6)
    assert not info["leakage_violation"] and info["cost_leakage"] == 0.0
    _, r, _, _, info = env.step(action_for(10.0, 0.0, 128 * cap * 1.5, [1.0] * 128, [0] * 128))
    assert info["leakage_violation"]
    assert info["cost_leakage"] > 0.0 and info["cost"] >= info["cost_leakage"]


def test_encode_action_round_trips_through_the_env():
    env = make()
    env.reset(seed=0)
    c = env.unwrapped.constants
    rng = np.random.default_rng(0)
    power = rng.uniform(0, 1, 128)
    power *= 7.0 / power.sum()
    user = rng.integers(0, 3, 128)
    a = model.encode_action(np.array([8.0, -3.0]), power, user, c)
    _, _, _, _, info = env.step(a)
    np.testing.assert_allclose(info["velocity_mps"], [8.0, -3.0], rtol=1e-6)
    assert info["transmit_power_w"] == pytest.approx(7.0, rel=1e-6)
    q = np.array([16.0, -6.0])
    g = 1.28e6 / (1e4 + np.sum((q - np.array([[250, 150], [500, -150], [750, 150]])) ** 2, axis=1))
    rate = 2.0 * (1e6 / 128) * np.log2(1 + power * g[user])
    np.testing.assert_allclose(info["bits_per_user"], np.bincount(user, rate, 3), rtol=1e-5)
