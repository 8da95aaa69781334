"""QuantumUav-v0: the UAV env with a QKD phase per user and slot, its baselines and the eps search."""
from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import secure_env  # noqa: F401
from baselines import BASELINES
from baselines.quantum_uav import photons as Q
from baselines.quantum_uav.policies import Algorithm3QkdPolicy, StraightLineQkdPolicy
from secure_env.core import quantum_uav as qmodel
from secure_env.core import uav_ofdma as model
from secure_env.scenarios import make_scenario

ENV_ID = "secure_env/QuantumUav-v0"
UAV_ID = "secure_env/UavSecureOfdma-v0"


def error_hand(eps, ab=0.5):
    a = 4 * ab * ab
    return a * eps * eps / (2 * (1 - eps) ** 2 + eps * eps)


@pytest.mark.parametrize("kw", [dict(), dict(qkd_enabled=False), dict(num_users=1, user_xy=[[400.0, 60.0]]),
                                dict(qkd_source_power_w=2.0, photons_m=3)])
def test_check_env_passes_without_warnings(kw):
    env = gym.make(ENV_ID, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert not [str(w.message) for w in caught]
    assert env.action_space.shape == (3 + 2 * 128 + env.unwrapped.scenario.num_users,)


def test_qkd_switched_off_reproduces_the_uav_env_step_for_step():
    rng = np.random.default_rng(0)
    q_env = gym.make(ENV_ID, qkd_enabled=False, random_users=True)
    u_env = gym.make(UAV_ID, random_users=True)
    for seed in (3, 4):
        oq, _ = q_env.reset(seed=seed)
        ou, _ = u_env.reset(seed=seed)
        np.testing.assert_array_equal(oq, ou)
        for _ in range(50):
            a = rng.uniform(-1, 1, 259 + 3).astype(np.float32)
            oq, rq, tq, trq, iq = q_env.step(a)
            ou, ru, tu, tru, iu = u_env.step(a[:259])
            np.testing.assert_array_equal(oq, ou)
            assert rq == ru and tq == tu and trq == tru
            for key in ("bits", "energy_j", "leakage_snr_max", "cost"):
                assert iq[key] == iu[key], key
            assert iq["secure_bits"] == pytest.approx(iq["bits"], rel=1e-15)
            if tq:
                break
        for key, value in iu["episode_metrics"].items():
            assert iq["episode_metrics"][key] == pytest.approx(value, rel=1e-12), key
        assert iq["episode_metrics"]["secure_energy_efficiency_bits_per_joule"] == pytest.approx(
            iu["episode_metrics"]["energy_efficiency_bits_per_joule"], rel=1e-12)


def test_a_hand_worked_slot():
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    c = env.unwrapped.constants
    # hover at 10 m/s east, 4 W on 128 subcarriers all to user 0; QKD budgets 1e-3, 1e-4, 1e-5 tau
    uav = model.encode_action(np.array([10.0, 0.0]), np.full(128, 4.0 / 128), np.zeros(128, dtype=int), c)
    budgets = np.array([1e-3, 1e-4, 1e-5]) * 2.0
    a = np.concatenate([uav, qmodel.encode_qkd_action(budgets, 2.0).astype(np.float32)])
    _, reward, _, _, info = env.step(a)
    q = np.asarray(info["position_m"])
    np.testing.assert_allclose(q, [20.0, 0.0], atol=1e-5)
    users = [(250, 150), (500, -150), (750, 150)]
    expect_t, expect_e = [], []
    for k, (ux, uy) in enumerate(users):
        d = math.sqrt(100 ** 2 + (q[0] - ux) ** 2 + (q[1] - uy) ** 2)
        dec_budget = 2.0 * 10 ** (6.0 * (float(a[259 + k]) - 1.0) / 2)   # the documented decoding
        n = max(math.floor(dec_budget * 3e8 / d), 80)
        eps = math.sqrt(80 / n)          # the largest eps whose ceil(8 m / eps^2) is n
        expect_t.append(d / 3e8 * n)
        expect_e.append(error_hand(eps))
    np.testing.assert_allclose(info["qkd_time_s"], expect_t, rtol=1e-12)
    np.testing.assert_allclose(info["key_error_rate"], expect_e, rtol=1e-12)
    data = 2.0 - sum(expect_t)
    assert info["data_time_s"] == pytest.approx(data, rel=1e-12)
    gamma0 = 1.28e6
    d2 = 100 ** 2 + (q[0] - 250) ** 2 + (q[1] - 150) ** 2
    rate0 = 128 * (1e6 / 128) * math.log2(1 + (4.0 / 128) * gamma0 / d2)
    assert info["bits"] == pytest.approx(2.0 * rate0, rel=1e-6)
    assert info["secure_bits"] == pytest.approx((1 - expect_e[0]) * data * rate0, rel=1e-6)
    p_fly = info["flight_power_w"]
    energy = 2.0 * (1.0 + p_fly) + data * info["transmit_power_w"]
    assert info["energy_j"] == pytest.approx(energy, rel=1e-12)
    assert reward == pytest.approx(info["secure_bits"] / energy / 1000, rel=1e-9)


def test_qkd_overrun_is_flagged_penalised_and_sends_nothing():
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    a = np.zeros(262, dtype=np.float32)
    a[-3:] = 1.0                      # every user asks for the whole slot
    _, reward, _, _, info = env.step(a)
    assert info["qkd_overrun_s"] > 0 and info["data_time_s"] == 0.0
    assert info["secure_bits"] == 0.0
    assert info["cost"] >= info["qkd_overrun_s"] / 2.0
    assert reward < 0


@pytest.mark.parametrize("bad", [np.full(262, np.nan), np.zeros(259), np.zeros(263)])
def test_bad_actions_raise(bad):
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(bad)


@pytest.mark.parametrize("kw, field", [(dict(photons_m=0), "photons_m"), (dict(alpha_beta=0.7), "alpha_beta"),
                                       (dict(qkd_enabled="yes"), "qkd_enabled"),
                                       (dict(qkd_source_power_w=-1.0), "qkd_source_power_w"),
                                       (dict(light_speed_mps=0.0), "light_speed_mps")])
def test_invalid_keywords_raise(kw, field):
    with pytest.raises(ValueError, match=field):
        gym.make(ENV_ID, **kw)


def test_same_seed_same_episode():
    rng = np.random.default_rng(1)
    acts = rng.uniform(-1, 1, (50, 262)).astype(np.float32)
    out = []
    for _ in range(2):
        env = gym.make(ENV_ID, random_users=True)
        env.reset(seed=9)
        rec = []
        for a in acts:
            o, r, t, _, info = env.step(a)
            rec.append((o, r, info["secure_bits"], tuple(info["qkd_time_s"])))
            if t:
                break
        out.append(rec)
    assert all(np.array_equal(x[0], y[0]) and x[1:] == y[1:] for x, y in zip(*out))


# --------------------------------------------------------------------------------------------
# The per-slot eps search against dense grids
# --------------------------------------------------------------------------------------------
def _slot_case(seed):
    rng = np.random.default_rng(seed)
    s = make_scenario("quantum_uav", photons_m=int(rng.integers(1, 30)), alpha_beta=float(rng.uniform(0.2, 0.5)),
                      qkd_source_power_w=float(rng.choice([0.0, 5.0])))
    rate = rng.uniform(1e4, 3e6, 2)
    dist = rng.uniform(100, 900, 2)
    return s, rate, dist, float(rng.uniform(0, 10)), 1000.0 + float(rng.uniform(0, 400))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("eta", [0.0, 800.0])
def test_eps_search_is_within_a_tenth_of_a_percent_of_a_dense_grid(seed, eta):
    s, rate, dist, tx, fixed = _slot_case(seed)
    got = Q.best_photons(rate[None], dist[None], s, np.array([tx]), np.array([fixed]), eta,
                         start=None if eta == 0 else Q.best_photons(rate[None], dist[None], s, np.array([tx]),
                                                                    np.array([fixed]), 0.0))
    f_got = float(Q.slot_objective(got, rate[None], dist[None], s, np.array([tx]), np.array([fixed]), eta)[0])
    # dense 2-D grid over the photon counts of both users
    lo = 8.0 * s.photons_m
    axes = [np.unique(np.round(np.geomspace(lo, max(2.0 * 3e8 / d, lo), 900))) for d in dist]
    n1, n2 = np.meshgrid(*axes, indexing="ij")
    grid = np.stack([n1.ravel(), n2.ravel()], axis=1)
    f_grid = Q.slot_objective(grid, np.broadcast_to(rate, grid.shape), np.broadcast_to(dist, grid.shape), s,
                              np.full(len(grid), tx), np.full(len(grid), fixed), eta)
    best = float(f_grid.max())
    scale = abs(best) + eta * fixed * 2.0
    assert f_got >= best - 1e-3 * scale


def test_one_user_search_matches_exhaustive_integers():
    s = make_scenario("quantum_uav")
    rate, dist = np.array([[2e6]]), np.array([[150.0]])
    got = Q.best_photons(rate, dist, s, np.array([1.0]), np.array([1000.0]), 0.0)
    n = np.arange(80, 400_000, dtype=np.float64)[:, None]
    f = Q.slot_objective(n, np.broadcast_to(rate[0], n.shape), np.broadcast_to(dist[0], n.shape), s,
                         np.full(len(n), 1.0), np.full(len(n), 1000.0), 0.0)
    assert float(Q.slot_objective(got, rate, dist, s, np.array([1.0]), np.array([1000.0]), 0.0)[0]) >= f.max() * (1 - 1e-7)


# --------------------------------------------------------------------------------------------
# Baselines through the env
# --------------------------------------------------------------------------------------------
def test_baselines_registered():
    assert BASELINES[ENV_ID] == {"algorithm3_qkd": Algorithm3QkdPolicy, "straight_line_qkd": StraightLineQkdPolicy}


def test_straight_line_qkd_replays_its_planned_secure_efficiency():
    env = gym.make(ENV_ID)
    pol = StraightLineQkdPolicy(env)
    obs, _ = env.reset(seed=0)
    while True:
        obs, _, term, _, info = env.step(pol.predict(obs)[0])
        assert info["qkd_overrun_s"] == 0.0 and not info["leakage_violation"]
        if term:
            break
    m = info["episode_metrics"]
    assert m["secure_energy_efficiency_bits_per_joule"] == pytest.approx(pol.qkd_record["secure_ee_history"][-1],
                                                                         rel=1e-6)
    # QKD costs something, but little: above 99 % of the plain UAV efficiency of the same plan
    assert 0.99 * m["energy_efficiency_bits_per_joule"] < m["secure_energy_efficiency_bits_per_joule"] \
        < m["energy_efficiency_bits_per_joule"]
    assert m["min_rate_shortfall_bps"] == 0.0


def test_qkd_planner_rejects_the_plain_uav_env():
    with pytest.raises(ValueError, match="QuantumUav"):
        StraightLineQkdPolicy(gym.make(UAV_ID))
