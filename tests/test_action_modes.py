"""Action modes (full, compact, velocity) and the safety layer of the UAV envs."""
from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import secure_env  # noqa: F401
from secure_env.core import uav_actions
from secure_env.core.flight import flight_power
from secure_env.core.safety import safe_velocity
from secure_env.core.uav_ofdma import project_velocity_xy

UAV_IDS = ("secure_env/UavSecureOfdma-v0", "secure_env/QuantumUav-v0")
REFERENCE = Path(__file__).parent / "data" / "full_mode_reference.json"


# -- the full mode is the env as it was before the action modes ----------------------------------
@pytest.mark.parametrize("env_id", UAV_IDS)
def test_full_mode_reproduces_the_previous_env_step_for_step(env_id):
    """tests/data/full_mode_reference.json was written by the env of commit ec34012 (before the
    action modes) for seeded random and extreme actions over two drawn layouts."""
    ref = json.loads(REFERENCE.read_text())[env_id]
    env = gym.make(env_id, **ref["kw"])
    assert env.unwrapped.scenario.action_mode == "full"
    rng = np.random.default_rng(123)
    obs_i = rew_i = 0
    for ep in range(2):
        o, _ = env.reset(seed=500 + ep)
        np.testing.assert_array_equal(o, np.asarray(ref["obs"][obs_i], dtype=np.float32))
        obs_i += 1
        while True:
            a = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            if rng.random() < 0.2:
                a = np.sign(a).astype(np.float32)
            o, r, t, _, info = env.step(a)
            np.testing.assert_array_equal(o, np.asarray(ref["obs"][obs_i], dtype=np.float32))
            assert r == pytest.approx(ref["reward"][rew_i], rel=1e-12, abs=1e-15)
            for key, value in ref["info"][rew_i].items():
                got = info["episode_metrics"][key[3:]] if key.startswith("em_") else info[key]
                assert float(got) == pytest.approx(value, rel=1e-12, abs=1e-300), key
            assert not info["safety_acted"]
            obs_i += 1
            rew_i += 1
            if t:
                break


# -- spaces -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", UAV_IDS)
@pytest.mark.parametrize("mode", uav_actions.ACTION_MODES)
def test_action_and_observation_sizes(env_id, mode):
    env = gym.make(env_id, action_mode=mode)
    k, nf = 3, 128
    qkd = env_id.endswith("QuantumUav-v0")
    want = {"full": 3 + 2 * nf + (k if qkd else 0), "compact": 3 + k + (k if qkd else 0), "velocity": 2}[mode]
    assert env.action_space.shape == (want,)
    assert env.observation_space.shape == (12 + 3 * k + (0 if mode == "full" else 6),)
    assert env.unwrapped._safety == (mode != "full")
    with pytest.raises(ValueError, match="shape"):
        env.reset(seed=0)
        env.step(np.zeros(want + 1, dtype=np.float32))


def test_check_env_passes_in_every_mode():
    from gymnasium.utils.env_checker import check_env

    for env_id in UAV_IDS:
        for mode in ("compact", "velocity"):
            check_env(gym.make(env_id, action_mode=mode).unwrapped, skip_render_check=True)


# -- decoding helpers ------------------------------------------------------------------------------
def test_apportion_is_largest_remainder():
    # 10 subcarriers at shares 0.5 / 0.3 / 0.2 -> 5 / 3 / 2; at 1/3 each -> 4 / 3 / 3 (ties: lower index)
    np.testing.assert_array_equal(uav_actions.apportion(np.array([5.0, 3.0, 2.0]), 10), [5, 3, 2])
    np.testing.assert_array_equal(uav_actions.apportion(np.ones(3), 10), [4, 3, 3])
    np.testing.assert_array_equal(uav_actions.apportion(np.zeros(3), 7), [3, 2, 2])
    # 7 at 0.45 / 0.45 / 0.1: raw 3.15 / 3.15 / 0.7 -> floors 3 / 3 / 0, the remainder to the 0.7
    np.testing.assert_array_equal(uav_actions.apportion(np.array([0.45, 0.45, 0.1]), 7), [3, 3, 1])
    batch = uav_actions.apportion(np.array([[5.0, 3.0, 2.0], [1.0, 1.0, 1.0]]), np.array([10, 10]))
    np.testing.assert_array_equal(batch, [[5, 3, 2], [4, 3, 3]])
    np.testing.assert_array_equal(uav_actions.counts_to_users(np.array([2, 0, 3]), 5), [0, 0, 2, 2, 2])


def test_reserved_counts_pay_the_debt_with_the_fewest_subcarriers():
    got = uav_actions.reserved_counts(np.array([0.0, 250.0, 100.0]), np.array([10.0, 100.0, 100.0]), 8)
    np.testing.assert_array_equal(got, [0, 3, 1])
    # debts beyond the band share it in proportion
    got = uav_actions.reserved_counts(np.array([600.0, 200.0]), np.array([100.0, 100.0]), 4)
    np.testing.assert_array_equal(got, [3, 1])


# -- the velocity mode's rule on a slot worked out by hand ------------------------------------------
def test_velocity_rule_matches_a_slot_worked_by_hand():
    """K = 2 users at (0, 0) and (300, 0), N_F = 4, N = 2 slots of 2 s, R_min = 400 kbit/s,
    eavesdropper disc (500, 0) r 50 m; command 15 m/s east from q0 = (0, 0), no safety layer.

    q1 = (30, 0). Budget min(10 W, P_max - P_C - P_fly) = 10 W -> 2.5 W per subcarrier, but the
    leakage cap at q1 is gamma_tol d_E,min^2 / gamma0 = 0.5 (1e4 + 420^2) / 4e4 = 2.33 W
    (gamma0 = beta0 / (N0 W) = 1e-4 / (1e-14 * 2.5e5) = 4e4). Owed after slot 1: N tau R_min / 2 =
    800 kbit each. Bits per subcarrier: user 0 (d^2 = 1e4 + 30^2) 2 * 2.5e5 log2(1 + 2.33 * 4e4 /
    10900) = 1.63 Mbit -> 1 subcarrier; user 1 (d^2 = 1e4 + 270^2) 0.54 Mbit -> 2. The last
    subcarrier goes to the nearer user 0: users [0, 0, 1, 1], all at 2.33 W.
    """
    kw = dict(num_users=2, user_xy=((0.0, 0.0), (300.0, 0.0)), num_subcarriers=4, num_slots=2,
              end_xy=(100.0, 0.0), r_min_bps=4e5, action_mode="velocity", safety_layer=False)
    env = gym.make("secure_env/UavSecureOfdma-v0", **kw)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0.5, 0.0], dtype=np.float32))
    cap = 0.5 * (100.0 ** 2 + 420.0 ** 2) / 4e4
    assert cap == pytest.approx(2.33, abs=1e-9)
    assert 10.0 / 4 > cap
    bits0 = 2 * 2.5e5 * math.log2(1 + cap * 4e4 / (1e4 + 30.0 ** 2))
    bits1 = 2 * 2.5e5 * math.log2(1 + cap * 4e4 / (1e4 + 270.0 ** 2))
    assert math.ceil(8e5 / bits0) == 1 and math.ceil(8e5 / bits1) == 2
    expected = np.array([2 * bits0, 2 * bits1])
    np.testing.assert_allclose(info["bits_per_user"], expected, rtol=1e-12)
    assert info["transmit_power_w"] == pytest.approx(4 * cap, rel=1e-12)
    assert info["safety_reserved_subcarriers"] == 3
    np.testing.assert_allclose(info["position_m"], [30.0, 0.0])
    p_fly = float(flight_power(15.0, env.unwrapped.constants.rotor))
    assert info["energy_j"] == pytest.approx(2.0 * (4 * cap + 1.0 + p_fly), rel=1e-12)
    assert not info["leakage_violation"]


def test_compact_mode_decodes_shares_power_and_qkd_budgets():
    env = gym.make("secure_env/QuantumUav-v0", action_mode="compact", safety_layer=False, num_subcarriers=10,
                   r_min_bps=0.0)
    env.reset(seed=0)
    # total power 5 W (a = 0), shares 0.5 / 0.3 / 0.2 -> 5 / 3 / 2 subcarriers at 0.5 W each,
    # QKD budgets tau 10^(3 (a - 1)) for a = 1, 2/3, 1/3 -> 2 s (capped by the slot), 0.2 s, 0.02 s
    w = np.array([0.5, 0.3, 0.2]) / 0.5
    a = np.concatenate([[0.0, 0.0, 0.0], 2 * w - 1, [1.0, 2 / 3, 1 / 3]]).astype(np.float32)
    u = env.unwrapped
    d = uav_actions.decide_slot(a.astype(np.float64), "compact", False, u.constants, u.scenario,
                                uav_actions.SlotState(0.0, 0.0, 0.0, 0.0, 0, u._users, np.zeros(3)))
    np.testing.assert_array_equal(d["user"], [0] * 5 + [1] * 3 + [2] * 2)
    np.testing.assert_allclose(d["power_w"], np.full(10, 0.5), rtol=1e-6)
    np.testing.assert_allclose(d["qkd_budget_s"], [2.0, 0.2, 0.02], rtol=1e-5)


# -- the safety layer -------------------------------------------------------------------------------
def _adversarial_actions(rng, policy, shape, step):
    """Five action streams: uniform, full speed west, zig-zag at the bounds, everything +1,
    random signs."""
    if policy == 0:
        return rng.uniform(-1, 1, shape)
    a = np.ones(shape)
    if policy == 1:
        a[0], a[1] = -1.0, 0.0
    elif policy == 2:
        a[0], a[1] = 0.0, 1.0 if step % 8 < 4 else -1.0
    elif policy == 4:
        a = np.sign(rng.uniform(-1, 1, shape))
    return a


@pytest.mark.parametrize("env_id", UAV_IDS)
@pytest.mark.parametrize("mode", ["compact", "velocity", "full"])
@pytest.mark.parametrize("kw", [dict(), dict(eve_radius_m=150.0, peak_power_w=1.0),
                                dict(eve_radius_m=150.0, end_xy=(800.0, 300.0))])
def test_safety_layer_never_leaks_and_always_reaches_qf(env_id, mode, kw):
    """200 episodes of drawn layouts per case, random and adversarial actions (vector env)."""
    b = 200
    venv = gym.make_vec(env_id, num_envs=b, vectorization_mode="vector_entry_point", random_users=True,
                        action_mode=mode, safety_layer=True, **kw)
    obs, _ = venv.reset(seed=4000)
    rng = np.random.default_rng(1)
    shape = venv.single_action_space.shape
    done = np.zeros(b, dtype=bool)
    acted = 0.0
    n = venv.unwrapped.scenario.num_slots
    for step in range(n):
        acts = np.stack([_adversarial_actions(rng, i % 5, shape, step) for i in range(b)]).astype(np.float32)
        obs, _, term, _, info = venv.step(acts)
        assert np.isfinite(obs).all()
        assert not info["leakage_violation"].any()
        acted += info["safety_acted"].sum()
        if term.any():
            m = info["episode_metrics"]
            assert term.all()
            assert (m["leakage_violations"] == 0).all()
            assert (m["power_violations"] == 0).all()
            assert (m["final_position_error_m"] < 1e-6).all(), m["final_position_error_m"].max()
            assert (m["destination_reached"] == 1.0).all()
            done |= term
    assert done.all()
    assert acted > 0          # the adversarial streams do need the layer


def test_safety_layer_reports_what_it_did_in_the_single_env():
    env = gym.make("secure_env/UavSecureOfdma-v0", action_mode="compact", num_slots=10, end_xy=(500.0, 0.0))
    env.reset(seed=0)
    blends, cuts = [], []
    for _ in range(10):   # full speed west at full power: homing must act, and near the eavesdropper the cap
        _, _, t, _, info = env.step(np.array([-1.0, 0.0, 1.0, 1.0, 1.0, 1.0], dtype=np.float32))
        blends.append(info["safety_velocity_blend"])
        cuts.append(info["safety_power_cut_w"])
        assert 0.0 <= info["safety_velocity_blend"] <= 1.0
        assert info["safety_acted"] == (info["safety_velocity_blend"] > 0 or info["safety_power_cut_w"] > 0
                                        or info["safety_reserved_subcarriers"] > 0)
    assert info["episode_metrics"]["final_position_error_m"] < 1e-6
    assert max(blends) > 0.0 and max(cuts) > 0.0


def test_safe_velocity_single_equals_batch_and_respects_the_discs():
    v_max, dv, tau, n = 30.0, 10.0, 2.0, 30
    rng = np.random.default_rng(7)
    qx, qy, pvx, pvy = np.zeros(16), np.zeros(16), np.zeros(16), np.zeros(16)
    end = (700.0, -100.0)
    for slot in range(n):
        c = rng.uniform(-v_max, v_max, (16, 2))
        cx, cy, _ = project_velocity_xy(c[:, 0], c[:, 1], pvx, pvy, np.full(16, slot > 0), v_max, dv)
        vx, vy, lam = safe_velocity(qx, qy, pvx, pvy, np.full(16, slot > 0), cx, cy, np.full(16, n - slot - 1),
                                    end, tau, v_max, dv)
        for i in range(16):
            single = safe_velocity(float(qx[i]), float(qy[i]), float(pvx[i]), float(pvy[i]), slot > 0,
                                   float(cx[i]), float(cy[i]), n - slot - 1, end, tau, v_max, dv)
            assert single == (vx[i], vy[i], lam[i])
        assert (np.hypot(vx, vy) <= v_max * (1 + 1e-9)).all()
        if slot:
            assert (np.hypot(vx - pvx, vy - pvy) <= dv * (1 + 1e-9)).all()
        qx, qy, pvx, pvy = qx + tau * vx, qy + tau * vy, vx, vy
    assert np.hypot(qx - end[0], qy - end[1]).max() < 1e-6


# -- the QKD rule of the velocity mode ---------------------------------------------------------------
def test_rule_photons_is_near_the_brute_force_best_count():
    """(tau - N d / c) (1 - e(sqrt(8 m / N))) over every N on a dense grid (eq. (4) written out
    here), against the rule's 64-point log grid: within 0.05 % of the best value."""
    from secure_env.core.quantum_uav import rule_photons

    env = gym.make("secure_env/QuantumUav-v0")
    u = env.unwrapped
    s, c = u.scenario, u.constants
    users = np.array([[30.0, 40.0], [400.0, 300.0], [1000.0, 0.0]])
    photons, dist = rule_photons(s, c, 0.0, 0.0, users)
    a = 4.0 * s.alpha_beta ** 2

    def value(n, d):
        eps = np.sqrt(8.0 * s.photons_m / n)
        err = a * eps ** 2 / (2.0 * (1.0 - eps) ** 2 + eps ** 2)
        return np.maximum(s.slot_s - n * d / s.light_speed_mps, 0.0) * (1.0 - err)

    for k in range(3):
        d = math.sqrt(100.0 ** 2 + float(users[k] @ users[k]))
        assert dist[k] == pytest.approx(d, rel=1e-12)
        dense = np.unique(np.floor(np.geomspace(80.0, s.slot_s * s.light_speed_mps / d, 200_000)))
        best = value(dense, d).max()
        assert value(photons[k], d) >= best * (1 - 5e-4)
        assert value(photons[k], d) <= best * (1 + 1e-12)


def test_secure_fraction_by_hand():
    """Budgets 1 ms, 10 us, 0 for users at 3-D distances d: N = max(floor(b c / d), 8 m),
    eps = sqrt(8 m / N), e = A eps^2 / (2 (1 - eps)^2 + eps^2), t = N d / c;
    fraction_k = (1 - e_k) (tau - sum t) / tau."""
    from secure_env.core.quantum_uav import secure_fraction

    env = gym.make("secure_env/QuantumUav-v0")
    u = env.unwrapped
    s, c = u.scenario, u.constants
    users = np.array([[0.0, 0.0], [300.0, 400.0], [600.0, 800.0]])
    budget = np.array([1e-3, 1e-5, 0.0])
    got = secure_fraction(s, c, budget, 0.0, 0.0, users)
    d = np.array([100.0, math.sqrt(100.0 ** 2 + 500.0 ** 2), math.sqrt(100.0 ** 2 + 1000.0 ** 2)])
    n = np.maximum(np.floor(budget * 3e8 / d), 80.0)
    assert n[0] == 3000.0 and n[2] == 80.0
    eps = np.sqrt(80.0 / n)
    err = 1.0 * eps ** 2 / (2.0 * (1.0 - eps) ** 2 + eps ** 2)          # A = 4 (1/2)^2 = 1
    t = n * d / 3e8
    np.testing.assert_allclose(got, (1.0 - err) * (2.0 - t.sum()) / 2.0, rtol=1e-12)
