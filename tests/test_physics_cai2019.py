"""Hand-worked checks of the Cai et al. 2019 physics (secure_env.core: flight, secrecy, ofdma, uav_ofdma).

Every expected value is worked out in the test itself: by arithmetic written out with ``math``, by
a plain-Python formula written independently of the library, or by a second route (brute force
over a dense grid), following docs/models/uav_ofdma.md (the reconstructed model and its defaults).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from secure_env.core.flight import (
    CAI2019_TABLE_I,
    ROTOR_PRESETS,
    ZENG2019,
    flight_power,
    hover_constants,
    induced_slack,
)
from secure_env.core.ofdma import energy_efficiency, los_gain, squared_distance, subcarrier_rate, total_power
from secure_env.core.secrecy import (
    leakage_power_cap,
    leakage_snr,
    worst_case_eve_distance_sq,
    worst_case_eve_distance_sq_xy,
)
from secure_env.core.uav_ofdma import (
    LEAKAGE_RTOL,
    SlotConstants,
    action_size,
    advance,
    cap_transmit_power,
    decode_action,
    encode_action,
    project_velocity,
    project_velocity_xy,
    slot_outcome,
    straight_line,
    trajectory_outcome,
)
from secure_env.scenarios import make_scenario

# gamma0 = beta0 / (N0 W) = 1e-4 / (1e-14 W/Hz * 7812.5 Hz) = 1.28e6 m^2/W  (spec §13)
GAMMA0 = 1e-4 / (1e-14 * 7812.5)
W_HZ = 1e6 / 128  # 7812.5 Hz


# --------------------------------------------------------------------------------------------
# plain-Python reference formulas (written independently of the library)
# --------------------------------------------------------------------------------------------
def ref_p_fly(v, p0=580.65, pi=790.67, omega=400.0, radius=0.5, v0=7.2, d0=0.3, rho=1.225,
              s=0.05, area=0.79):
    """Spec §3 eq. (4) / §13 reference code, one float at a time."""
    u_tip = omega * radius
    blade = p0 * (1.0 + 3.0 * v * v / (u_tip * u_tip))
    induced = pi * math.sqrt(math.sqrt(1.0 + v ** 4 / (4.0 * v0 ** 4)) - v * v / (2.0 * v0 * v0))
    parasite = 0.5 * d0 * rho * s * area * v ** 3
    return blade + induced + parasite


def ref_p_fly_zeng(v):
    return ref_p_fly(v, p0=79.86, pi=88.63, omega=300.0, radius=0.4, v0=4.03, d0=0.6, rho=1.225,
                     s=0.05, area=0.503)


def constants(**overrides) -> SlotConstants:
    """SlotConstants of the cai2019 preset with scenario overrides."""
    return SlotConstants.from_scenario(make_scenario("cai2019", **overrides))


# --------------------------------------------------------------------------------------------
# flight power (spec §3, eq. (4), Table I)
# --------------------------------------------------------------------------------------------
# spec §3 table (v0 = 7.2); 0, 10, 21.5, 30 are the acceptance values
P_FLY_TABLE = [(0.0, 1371.3), (5.0, 1284.3), (10.0, 1107.6), (15.0, 985.2), (20.0, 938.5),
               (21.5, 936.1), (25.0, 948.2), (30.0, 1005.3), (40.0, 1257.1)]


@pytest.mark.parametrize("speed,expected", P_FLY_TABLE)
def test_flight_power_spec_table(speed, expected):
    assert float(flight_power(speed)) == pytest.approx(expected, abs=0.1)
    assert float(flight_power(speed, ROTOR_PRESETS["cai2019"])) == pytest.approx(expected, abs=0.1)
    # and the plain formula agrees to rounding
    assert float(flight_power(speed)) == pytest.approx(ref_p_fly(speed), rel=1e-12)


def test_flight_power_hover_is_p0_plus_pi_and_batches():
    # V = 0: P0 (1 + 0) + P_I sqrt(1 - 0) + 0 = 580.65 + 790.67
    assert float(flight_power(0.0)) == pytest.approx(1371.32, rel=1e-13)
    speeds = np.array([[0.0, 3.0, 7.0], [12.5, 33.3, 50.0]])
    got = flight_power(speeds)
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, [[ref_p_fly(float(v)) for v in row] for row in speeds], rtol=1e-12)
    # the zeng2019 preset follows the same formula with its own constants
    for v in (0.0, 4.0, 10.0, 18.0, 30.0):
        assert float(flight_power(v, ZENG2019)) == pytest.approx(ref_p_fly_zeng(v), rel=1e-12)
    assert float(flight_power(0.0, ZENG2019)) == pytest.approx(79.86 + 88.63, rel=1e-13)


def test_flight_power_minimum_near_21_5():
    v = np.linspace(0.0, 40.0, 400_001)  # 0.1 mm/s grid
    p = flight_power(v)
    v_star = float(v[np.argmin(p)])
    assert v_star == pytest.approx(21.5, abs=0.05)
    assert float(p.min()) == pytest.approx(936.1, abs=0.1)
    # decreasing before, increasing after
    assert np.all(np.diff(p[v <= 21.4]) < 0.0)
    assert np.all(np.diff(p[v >= 21.6]) > 0.0)
    # maximum-range speed (min energy per metre, spec §3): about 38.3 m/s
    vr = np.linspace(1.0, 60.0, 590_001)
    assert float(vr[np.argmin(flight_power(vr) / vr)]) == pytest.approx(38.3, abs=0.05)


def test_table_i_constants_from_hidden_parameters():
    delta, k, weight, rho, s, area, omega, radius = 0.012, 0.1, 100.0, 1.225, 0.05, 0.79, 400.0, 0.5
    # by hand, the Zeng et al. formulas
    p0_hand = delta / 8.0 * rho * s * area * omega ** 3 * radius ** 3
    pi_hand = (1.0 + k) * weight ** 1.5 / math.sqrt(2.0 * rho * area)
    v0_hand = math.sqrt(weight / (2.0 * rho * area))
    # written out: 0.0015 * 1.225 * 0.05 * 0.79 * 200^3 and 1.1 * 1000 / sqrt(1.9355)
    assert p0_hand == pytest.approx(0.0015 * 1.225 * 0.05 * 0.79 * 8e6, rel=1e-14)
    assert pi_hand == pytest.approx(1100.0 / math.sqrt(1.9355), rel=1e-14)
    assert p0_hand == pytest.approx(580.65, abs=5e-3)
    assert pi_hand == pytest.approx(790.6715, abs=5e-4)
    assert v0_hand == pytest.approx(7.188, abs=5e-4)
    # the library's hover_constants gives the same
    p0, pi, v0 = hover_constants(delta, k, weight, rho, s, area, omega, radius)
    assert (p0, pi, v0) == pytest.approx((p0_hand, pi_hand, v0_hand), rel=1e-12)
    # and the preset carries the printed (rounded) table values
    r = CAI2019_TABLE_I
    assert r.profile_power_w == pytest.approx(p0, abs=0.005)
    assert r.induced_power_w == pytest.approx(pi, abs=0.005)
    assert r.induced_velocity_mps == pytest.approx(v0, abs=0.05)   # 7.19 printed as 7.2
    assert r.induced_velocity_mps == 7.2
    assert r.tip_speed_mps == pytest.approx(omega * radius) == 200.0
    assert (r.fuselage_drag_ratio, r.air_density, r.solidity, r.disc_area_m2) == (0.3, 1.225, 0.05, 0.79)
    # 1/2 d0 rho s A = 0.5 * 0.3 * 1.225 * 0.05 * 0.79
    assert r.parasite_coeff == pytest.approx(0.5 * 0.3 * 1.225 * 0.05 * 0.79, rel=1e-14)


def test_zeng2019_constants_from_hidden_parameters():
    delta, k, weight, rho, s, omega, radius = 0.012, 0.1, 20.0, 1.225, 0.05, 300.0, 0.4
    area = 0.503  # = pi R^2 = 0.50265
    assert math.pi * radius ** 2 == pytest.approx(area, abs=5e-4)
    p0_hand = delta / 8.0 * rho * s * area * omega ** 3 * radius ** 3
    pi_hand = (1.0 + k) * weight ** 1.5 / math.sqrt(2.0 * rho * area)
    v0_hand = math.sqrt(weight / (2.0 * rho * area))
    p0, pi, v0 = hover_constants(delta, k, weight, rho, s, area, omega, radius)
    assert (p0, pi, v0) == pytest.approx((p0_hand, pi_hand, v0_hand), rel=1e-12)
    r = ZENG2019
    assert ROTOR_PRESETS["zeng2019"] is ZENG2019
    assert r.profile_power_w == 79.86 and r.profile_power_w == pytest.approx(p0, abs=0.005)
    assert r.induced_power_w == 88.63 and r.induced_power_w == pytest.approx(pi, abs=0.005)
    assert r.induced_velocity_mps == 4.03 and r.induced_velocity_mps == pytest.approx(v0, abs=0.005)
    assert r.tip_speed_mps == pytest.approx(omega * radius) == 120.0
    assert (r.fuselage_drag_ratio, r.air_density, r.solidity, r.disc_area_m2) == (0.6, 1.225, 0.05, 0.503)


@pytest.mark.parametrize("rotor", [CAI2019_TABLE_I, ZENG2019])
def test_induced_slack_identity(rotor):
    v0 = rotor.induced_velocity_mps
    speeds = np.array([0.0, 0.5, 3.0, 7.2, 10.0, 21.5, 30.0, 60.0])
    chi = induced_slack(speeds, rotor)
    assert chi.shape == speeds.shape
    assert np.all(chi > 0.0)
    # (49) at equality: chi^-2 = chi^2 + V^2 / v0^2
    np.testing.assert_allclose(chi ** -2, chi ** 2 + speeds ** 2 / v0 ** 2, rtol=1e-10)
    # chi(0) = 1, and chi is the positive root of x^4 + (V/v0)^2 x^2 - 1 = 0 (solve the quadratic in x^2)
    assert float(chi[0]) == 1.0
    for v, c in zip(speeds, chi):
        b = (v / v0) ** 2
        x2 = (-b + math.sqrt(b * b + 4.0)) / 2.0
        assert c == pytest.approx(math.sqrt(x2), rel=1e-9)
    # P_fly = P0 (1 + 3V^2/U^2) + P_I chi + parasite (spec eq. (47) at equality)
    rebuilt = (rotor.profile_power_w * (1.0 + 3.0 * speeds ** 2 / rotor.tip_speed_mps ** 2)
               + rotor.induced_power_w * chi + rotor.parasite_coeff * speeds ** 3)
    np.testing.assert_allclose(flight_power(speeds, rotor), rebuilt, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# worst-case eavesdropper distance and leakage (spec §2, §5, C7)
# --------------------------------------------------------------------------------------------
def brute_disc_min_sq(q, eve, r, h, n_rad=120, n_ang=1440):
    """min over a polar grid of the disc of H^2 + ||q - p||^2, and an upper bound of the grid's
    distance error (the farthest a disc point can be from the nearest grid point on the rim)."""
    if r == 0.0:
        pts = np.array([eve])
    else:
        rad = np.linspace(0.0, r, n_rad)
        ang = np.linspace(0.0, 2.0 * math.pi, n_ang, endpoint=False)
        pts = eve + np.stack([np.outer(rad, np.cos(ang)).ravel(), np.outer(rad, np.sin(ang)).ravel()], axis=-1)
    d2 = h * h + np.sum((pts - q) ** 2, axis=-1)
    spacing = max(r / (n_rad - 1), r * math.pi / n_ang) if r > 0 else 0.0
    return float(d2.min()), spacing


def test_worst_case_eve_distance_matches_brute_force():
    rng = np.random.default_rng(7)
    h = 100.0
    eve = np.array([500.0, 0.0])
    uav = eve + rng.uniform(-300.0, 300.0, size=(4, 6, 2))
    uav[0, 0] = eve                    # right over the centre
    uav[0, 1] = eve + [10.0, -5.0]     # inside every disc with r >= 12
    radius = rng.choice([0.0, 10.0, 25.0, 50.0, 150.0], size=(4, 6))
    radius[0, :2] = 50.0
    got = worst_case_eve_distance_sq(uav, eve, radius, h)
    assert got.shape == (4, 6)
    n_inside = 0
    for idx in np.ndindex(4, 6):
        q, r = uav[idx], float(radius[idx])
        bf, spacing = brute_disc_min_sq(q, eve, r, h)
        # the closed form is the minimum: no grid point is closer ...
        assert got[idx] <= bf + 1e-9 * bf, idx
        # ... and the grid gets within its resolution of it
        dist = math.sqrt(got[idx])
        assert bf <= (dist + spacing) ** 2 + 1e-9, idx
        if np.linalg.norm(q - eve) <= r:
            n_inside += 1
            assert got[idx] == h * h, idx
        if r == 0.0:
            assert got[idx] == pytest.approx(h * h + float(np.sum((q - eve) ** 2)), rel=1e-12)
    assert n_inside >= 2
    assert np.any(radius == 0.0)


def test_worst_case_eve_distance_hand_values_and_broadcasting():
    # 300 m away, r = 100: gap 200 -> 100^2 + 200^2 = 50000
    assert float(worst_case_eve_distance_sq([300.0, 0.0], [0.0, 0.0], 100.0, 100.0)) == 50000.0
    # (3, 4) * 100 = 500 m away, r = 0: 1e4 + 25e4
    assert float(worst_case_eve_distance_sq([300.0, 400.0], [0.0, 0.0], 0.0, 100.0)) == 260000.0
    # inside: altitude only
    assert float(worst_case_eve_distance_sq([30.0, 40.0], [0.0, 0.0], 50.0, 100.0)) == 10000.0
    # a batch of radii against one UAV, a batch of eavesdroppers against one UAV
    got = worst_case_eve_distance_sq([300.0, 0.0], [0.0, 0.0], np.array([0.0, 100.0, 300.0, 400.0]), 100.0)
    np.testing.assert_allclose(got, [1e4 + 9e4, 1e4 + 4e4, 1e4, 1e4], rtol=1e-15)
    got = worst_case_eve_distance_sq([0.0, 0.0], np.array([[0.0, 200.0], [0.0, 50.0]]), 100.0, 10.0)
    np.testing.assert_allclose(got, [100.0 + 1e4, 100.0], rtol=1e-15)


def test_leakage_hand_values_defaults():
    s = make_scenario("cai2019")
    assert s.gamma0 == pytest.approx(1.28e6, rel=1e-12)
    assert GAMMA0 == pytest.approx(1.28e6, rel=1e-12)
    # spec §14 item 5: gamma_tol = 1 -> 7.8 mW at 100 m, 31 mW at 200 m, 78 mW at 316 m
    caps = leakage_power_cap(1.0, GAMMA0, np.array([100.0, 200.0, 316.0]) ** 2)
    np.testing.assert_allclose(caps, [1e4 / 1.28e6, 4e4 / 1.28e6, 99856.0 / 1.28e6], rtol=1e-12)
    assert float(caps[0]) == pytest.approx(7.8125e-3, rel=1e-12)
    np.testing.assert_allclose(caps, [7.8e-3, 31e-3, 78e-3], rtol=0.01)
    # default gamma_tol = 0.5 halves it
    assert float(leakage_power_cap(0.5, GAMMA0, 1e4)) == pytest.approx(3.90625e-3, rel=1e-12)
    # 1 W at 100 m leaks 1.28e6 / 1e4 = 128
    assert float(leakage_snr(1.0, GAMMA0, 1e4)) == pytest.approx(128.0, rel=1e-12)
    # p beta0 / (N0 W d^2) written out: 0.01 W * 1e-4 / (1e-14 * 7812.5 * 5e4)
    assert float(leakage_snr(0.01, GAMMA0, 5e4)) == pytest.approx(0.01 * 1e-4 / (1e-14 * 7812.5 * 5e4),
                                                                  rel=1e-12)


def test_leakage_at_cap_is_exactly_gamma_tol():
    rng = np.random.default_rng(3)
    d2 = 1e4 + rng.uniform(0.0, 1e6, size=(5, 4))
    for gamma_tol in (0.1, 0.5, 1.0, 10.0):
        cap = leakage_power_cap(gamma_tol, GAMMA0, d2)
        assert cap.shape == (5, 4)
        np.testing.assert_allclose(leakage_snr(cap, GAMMA0, d2), gamma_tol, rtol=1e-13)
        np.testing.assert_allclose(cap, gamma_tol * d2 / GAMMA0, rtol=1e-13)
        # leakage is linear in power
        np.testing.assert_allclose(leakage_snr(2.5 * cap, GAMMA0, d2), 2.5 * gamma_tol, rtol=1e-13)


# --------------------------------------------------------------------------------------------
# OFDMA links (spec §2, §5, §6)
# --------------------------------------------------------------------------------------------
def test_squared_distance_and_los_gain_hand_values():
    users = np.array([[0.0, 0.0], [100.0, 100.0], [400.0, -400.0]])
    # from (100, 0) at H = 100: 1e4 + 1e4; 1e4 + 0 + 1e4; 1e4 + 9e4 + 16e4
    d2 = squared_distance([100.0, 0.0], users, 100.0)
    np.testing.assert_allclose(d2, [2e4, 2e4, 2.6e5], rtol=1e-15)
    np.testing.assert_allclose(los_gain([100.0, 0.0], users, 100.0, 1e-4), [5e-9, 5e-9, 1e-4 / 2.6e5], rtol=1e-14)
    # batch of UAV positions (2, 3, 2) against K = 3 users -> (2, 3, 3)
    q = np.arange(12.0).reshape(2, 3, 2) * 10.0
    got = squared_distance(q, users, 50.0)
    assert got.shape == (2, 3, 3)
    for i, j, k in np.ndindex(2, 3, 3):
        dx, dy = q[i, j] - users[k]
        assert got[i, j, k] == pytest.approx(2500.0 + dx * dx + dy * dy, rel=1e-14)
    # per-batch users (2, 3, K, 2)
    per = np.broadcast_to(users, (2, 3, 3, 2)) + 1.0
    got = squared_distance(q, per, 50.0)
    assert got.shape == (2, 3, 3)
    assert got[1, 2, 0] == pytest.approx(2500.0 + (q[1, 2, 0] - 1.0) ** 2 + (q[1, 2, 1] - 1.0) ** 2)


def test_subcarrier_rate_hand_values():
    # p g = 127 -> log2(128) = 7 bit/s/Hz; p g = 3 * 85 = 255 -> 8; p = 0 -> 0
    got = subcarrier_rate([1.0, 3.0, 0.0], [127.0, 85.0, 1e9], W_HZ)
    np.testing.assert_allclose(got, [7.0 * 7812.5, 8.0 * 7812.5, 0.0], rtol=1e-14)
    # the whole chain: 1 W at 100 m straight below: SNR = gamma0 / 1e4 = 128
    g = los_gain([0.0, 0.0], [[0.0, 0.0]], 100.0, 1e-4) / (1e-14 * 7812.5)
    assert float(subcarrier_rate(1.0, g, W_HZ)[0]) == pytest.approx(7812.5 * math.log2(129.0), rel=1e-12)


def test_total_power_and_energy_efficiency_ratio_of_sums():
    np.testing.assert_allclose(total_power([2.0, 0.5], 1.0, [1000.0, 900.0]), [1003.0, 901.5], rtol=1e-15)
    bits = np.array([1.0, 100.0])
    energy = np.array([1.0, 10.0])
    # ratio of sums 101 / 11, not the mean of ratios (1 + 10) / 2 = 5.5
    assert float(energy_efficiency(bits, energy)) == pytest.approx(101.0 / 11.0, rel=1e-14)
    assert float(energy_efficiency(bits, energy)) != pytest.approx(5.5)
    b2 = np.array([[1.0, 100.0], [4.0, 4.0]])
    e2 = np.array([[1.0, 10.0], [2.0, 6.0]])
    np.testing.assert_allclose(energy_efficiency(b2, e2, axis=-1), [101.0 / 11.0, 1.0], rtol=1e-14)
    np.testing.assert_allclose(energy_efficiency(b2, e2, axis=0), [5.0 / 3.0, 104.0 / 16.0], rtol=1e-14)


# --------------------------------------------------------------------------------------------
# action codec
# --------------------------------------------------------------------------------------------
def codec_constants(num_users, num_subcarriers, v_max=30.0, peak=10.0):
    base = constants()
    return dataclasses.replace(base, num_users=num_users, num_subcarriers=num_subcarriers,
                               v_max_mps=v_max, peak_power_w=peak)


def random_plan(rng, c, batch=()):
    v = rng.uniform(-c.v_max_mps, c.v_max_mps, size=batch + (2,))
    p = rng.exponential(1.0, size=batch + (c.num_subcarriers,))
    p[rng.random(p.shape) < 0.2] = 0.0                      # some silent subcarriers
    total = rng.uniform(0.0, c.peak_power_w, size=batch)
    sums = p.sum(axis=-1)
    p = np.where(sums[..., None] > 0, p / np.where(sums > 0, sums, 1.0)[..., None] * total[..., None], 0.0)
    u = rng.integers(0, c.num_users, size=batch + (c.num_subcarriers,))
    return v, p, u


@pytest.mark.parametrize("num_users,num_subcarriers,batch", [(3, 128, ()), (1, 5, (7,)), (4, 16, (3, 2)),
                                                            (7, 9, (20,)), (64, 33, (4,))])
def test_encode_decode_round_trip(num_users, num_subcarriers, batch):
    rng = np.random.default_rng(num_users * 100 + num_subcarriers)
    c = codec_constants(num_users, num_subcarriers, v_max=25.0, peak=3.0)
    for _ in range(5):
        v, p, u = random_plan(rng, c, batch)
        a = encode_action(v, p, u, c)
        assert a.dtype == np.float32
        assert a.shape == batch + (action_size(num_subcarriers),) == batch + (3 + 2 * num_subcarriers,)
        assert np.all(np.abs(a) <= 1.0)
        v2, p2, u2 = decode_action(a, c)
        np.testing.assert_allclose(v2, v, rtol=0, atol=c.v_max_mps * 1.2e-7)
        np.testing.assert_allclose(p2, p, rtol=1e-6, atol=c.peak_power_w * 1.2e-7)
        np.testing.assert_allclose(p2.sum(axis=-1), p.sum(axis=-1), rtol=1e-6, atol=c.peak_power_w * 1.2e-7)
        np.testing.assert_array_equal(u2, u)
        assert u2.dtype.kind == "i"


def test_encode_decode_round_trip_extremes():
    c = codec_constants(3, 4, v_max=30.0, peak=10.0)
    # full power on one subcarrier, full speed corners, every user
    for v, p, u in [([30.0, -30.0], [10.0, 0.0, 0.0, 0.0], [0, 1, 2, 2]),
                    ([-30.0, 30.0], [0.0, 0.0, 0.0, 0.0], [2, 2, 2, 2]),
                    ([0.0, 0.0], [2.5, 2.5, 2.5, 2.5], [0, 0, 0, 0]),
                    ([1.0, 2.0], [1e-3, 0.0, 5.0, 1.0], [1, 0, 1, 2])]:
        v2, p2, u2 = decode_action(encode_action(v, p, u, c), c)
        np.testing.assert_allclose(v2, v, atol=30.0 * 1.2e-7)
        np.testing.assert_allclose(p2, p, rtol=1e-6, atol=10.0 * 1.2e-7)
        np.testing.assert_array_equal(u2, u)


def test_decode_action_hand_values_and_edge_cases():
    c = codec_constants(4, 4, v_max=30.0, peak=10.0)
    # velocity 30 a; total 10 (a + 1)/2; weights (a + 1)/2 -> shares; user floor((a + 1) 4 / 2)
    a = np.array([0.5, -1.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, -0.5, 0.0, 0.5])
    v, p, u = decode_action(a, c)
    np.testing.assert_allclose(v, [15.0, -30.0], rtol=1e-15)
    # total 5 W; weights 1, 0.5, 0, 0.5 -> shares 0.5, 0.25, 0, 0.25
    np.testing.assert_allclose(p, [2.5, 1.25, 0.0, 1.25], rtol=1e-15)
    np.testing.assert_array_equal(u, [0, 1, 2, 3])          # the boundaries -0.5, 0, 0.5 open a new user
    # just below each boundary: the lower user; +1 is clipped to K - 1
    below = np.array([0.0, 0.0, 1.0, -1.0, -1.0, -1.0, -1.0, -0.5 - 1e-9, -1e-9, 0.5 - 1e-9, 1.0])
    _, p, u = decode_action(below, c)
    np.testing.assert_array_equal(u, [0, 1, 2, 3])
    # all weights -1: equal shares of the total (10 W / 4)
    np.testing.assert_allclose(p, [2.5] * 4, rtol=1e-15)
    # total -1: no power at all, whatever the weights
    _, p, _ = decode_action(np.array([0, 0, -1.0, 1, 0, 0.3, -1, 0, 0, 0, 0]), c)
    np.testing.assert_array_equal(p, np.zeros(4))
    # values outside [-1, 1] are clipped first
    wild = np.array([7.0, -3.0, 5.0, 2.0, -9.0, -9.0, -9.0, -4.0, 1.5, 100.0, -1.2])
    v, p, u = decode_action(wild, c)
    v_ref, p_ref, u_ref = decode_action(np.clip(wild, -1.0, 1.0), c)
    np.testing.assert_allclose(v, [30.0, -30.0])
    np.testing.assert_allclose(p, [10.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(u, [0, 3, 3, 0])
    np.testing.assert_array_equal(v, v_ref)
    np.testing.assert_array_equal(p, p_ref)
    np.testing.assert_array_equal(u, u_ref)
    # batched: rows decode independently
    batch = np.stack([a, below, wild])
    vb, pb, ub = decode_action(batch, c)
    assert vb.shape == (3, 2) and pb.shape == (3, 4) and ub.shape == (3, 4)
    np.testing.assert_array_equal(ub[2], [0, 3, 3, 0])
    np.testing.assert_allclose(pb[1], [2.5] * 4)


def test_decode_user_boundaries_for_three_users():
    c = codec_constants(3, 1)
    # K = 3: user k for a in [-1 + 2k/3, -1 + 2(k+1)/3); the centres (2k + 1)/3 - 1 map to k
    for k, centre in enumerate([-2.0 / 3.0, 0.0, 2.0 / 3.0]):
        _, _, u = decode_action(np.array([0.0, 0.0, 0.0, 0.0, centre], dtype=np.float32), c)
        assert int(u[0]) == k
    for a, k in [(-1.0, 0), (-0.34, 0), (-0.33, 1), (0.33, 1), (0.34, 2), (1.0, 2)]:
        _, _, u = decode_action(np.array([0.0, 0.0, 0.0, 0.0, a]), c)
        assert int(u[0]) == k, a


INVALID_ENCODE = [
    ("velocity beyond v_max", [30.1, 0.0], [1.0, 1.0, 0.0, 0.0], [0, 1, 2, 0]),
    ("velocity beyond -v_max", [0.0, -31.0], [1.0, 1.0, 0.0, 0.0], [0, 1, 2, 0]),
    ("negative power", [0.0, 0.0], [1.0, -0.1, 0.0, 0.0], [0, 1, 2, 0]),
    ("total above peak", [0.0, 0.0], [5.0, 5.0, 0.5, 0.0], [0, 1, 2, 0]),
    ("infinite power", [0.0, 0.0], [np.inf, 0.0, 0.0, 0.0], [0, 1, 2, 0]),
    ("user = K", [0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0, 1, 3, 0]),
    ("negative user", [0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0, -1, 2, 0]),
    ("non-integer user", [0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0, 1.5, 2.0, 0.0]),
    ("float user", [0.0, 0.0], [1.0, 1.0, 0.0, 0.0], np.array([0.0, 1.0, 2.0, 0.0])),
    ("too few powers", [0.0, 0.0], [1.0, 1.0, 0.0], [0, 1, 2, 0]),
    ("too many users", [0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0, 1, 2, 0, 1]),
    ("3-D velocity", [0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0, 1, 2, 0]),
]


@pytest.mark.parametrize("why,v,p,u", INVALID_ENCODE, ids=[row[0] for row in INVALID_ENCODE])
def test_encode_action_rejects_invalid_input(why, v, p, u):
    c = codec_constants(3, 4, v_max=30.0, peak=10.0)
    with pytest.raises(ValueError):
        encode_action(v, p, u, c)


def test_encode_action_accepts_limits():
    c = codec_constants(3, 4, v_max=30.0, peak=10.0)
    a = encode_action([30.0, -30.0], [10.0, 0.0, 0.0, 0.0], [2, 0, 1, 2], c)
    np.testing.assert_allclose(a[:3], [1.0, -1.0, 1.0])


@pytest.mark.parametrize("v,p", [([np.nan, 0.0], [1.0, 0.0, 0.0, 0.0]),
                                 ([0.0, 0.0], [np.nan, 1.0, 0.0, 0.0])], ids=["nan-velocity", "nan-power"])
def test_encode_action_rejects_nan(v, p):
    # NaN is outside every documented range ("Raises ValueError outside those ranges"); it must not
    # be encoded silently into a NaN action
    c = codec_constants(3, 4, v_max=30.0, peak=10.0)
    with pytest.raises(ValueError):
        encode_action(v, p, [0, 1, 2, 0], c)


def test_encode_action_rejects_scalar_power_with_value_error():
    # a 0-d power for N_F = 1 is a shape error like any other, so ValueError (not IndexError)
    c = codec_constants(3, 1, v_max=30.0, peak=10.0)
    with pytest.raises(ValueError):
        encode_action([0.0, 0.0], 1.0, [0], c)


# --------------------------------------------------------------------------------------------
# kinematics
# --------------------------------------------------------------------------------------------
def brute_projection(x, prev, has_prev, v_max, dv_max, n_circle=36_000, n_rad=60, n_ang=360):
    """Nearest point to x among a sample of the feasible set {||v|| <= v_max} (intersected with
    {||v - prev|| <= dv_max} where has_prev): both boundary circles sampled densely plus a coarse
    polar grid of the interior, every sample outside the set dropped. Returns the point, its
    squared distance and the sample's resolution on the boundary."""
    ang = np.linspace(0.0, 2.0 * math.pi, n_circle, endpoint=False)
    ring = np.stack([np.cos(ang), np.sin(ang)], axis=-1)
    rad = np.linspace(0.0, 1.0, n_rad)
    a2 = np.linspace(0.0, 2.0 * math.pi, n_ang, endpoint=False)
    disc = np.stack([np.outer(rad, np.cos(a2)).ravel(), np.outer(rad, np.sin(a2)).ravel()], axis=-1)
    pts = [v_max * ring, v_max * disc]
    if has_prev:
        pts += [prev + dv_max * ring, prev + dv_max * disc]
    pts = np.concatenate(pts)
    keep = np.sum(pts ** 2, axis=-1) <= v_max ** 2 * (1 + 1e-12)
    if has_prev:
        keep &= np.sum((pts - prev) ** 2, axis=-1) <= dv_max ** 2 * (1 + 1e-12)
    pts = pts[keep]
    d2 = np.sum((pts - x) ** 2, axis=-1)
    i = int(np.argmin(d2))
    res = 2.0 * math.pi * max(v_max, dv_max) / n_circle
    return pts[i], float(d2[i]), res


def check_projection(out, x, prev, has_prev, v_max, dv_max):
    tol = 1e-9 * v_max
    assert np.linalg.norm(out) <= v_max + tol
    if has_prev:
        assert np.linalg.norm(out - prev) <= dv_max + tol
    best, best_d2, res = brute_projection(x, prev, has_prev, v_max, dv_max)
    d2 = float(np.sum((out - x) ** 2))
    # no sampled feasible point is nearer to the command ...
    assert d2 <= best_d2 + 1e-9 * max(best_d2, 1.0)
    # ... and, the set being convex, ||y - p*||^2 <= ||y - x||^2 - ||p* - x||^2 for every feasible y,
    # which puts the answer near the best sample (the optimum is on the boundary unless x is
    # feasible, and the boundary is sampled every `res` metres)
    if d2 > 0.0:
        gap = 2.0 * res * math.sqrt(best_d2) + res * res
        assert np.linalg.norm(out - best) <= 2.0 * math.sqrt(gap) + 1e-9


def test_project_velocity_matches_brute_force():
    rng = np.random.default_rng(11)
    v_max, dv_max = 30.0, 10.0
    cases = []
    for _ in range(40):
        prev = rng.uniform(-1.0, 1.0, 2)
        prev *= rng.uniform(0.0, v_max) / max(np.linalg.norm(prev), 1e-12)
        x = rng.uniform(-60.0, 60.0, 2)
        cases.append((x, prev, True))
    # crafted: previous on the speed circle, command beyond it sideways (crossing-point case)
    cases.append((np.array([0.0, 45.0]), np.array([30.0, 0.0]), True))
    cases.append((np.array([40.0, 20.0]), np.array([0.0, 30.0]), True))
    # previous at rest: only ||v|| <= dv_max matters
    cases.append((np.array([25.0, 25.0]), np.array([0.0, 0.0]), True))
    # first slot: only the speed disc (prev ignored)
    cases.append((np.array([50.0, -10.0]), np.array([-30.0, 0.0]), False))
    cases.append((np.array([3.0, 4.0]), np.array([-30.0, 0.0]), False))
    for x, prev, has_prev in cases:
        out, flag = project_velocity(x, prev, has_prev, v_max, dv_max)
        assert out.shape == (2,)
        check_projection(out, x, prev, has_prev, v_max, dv_max)
        feasible = np.linalg.norm(x) <= v_max and (not has_prev or np.linalg.norm(x - prev) <= dv_max)
        assert bool(flag) == (not feasible)
        if feasible:
            np.testing.assert_array_equal(out, x)


def test_project_velocity_hand_values():
    # first slot: (60, 80) has speed 100 -> scaled to 30 along the same direction
    out, flag = project_velocity([60.0, 80.0], [0.0, 0.0], False, 30.0, 10.0)
    np.testing.assert_allclose(out, [18.0, 24.0], rtol=1e-14)
    assert bool(flag)
    # previous (20, 0), command (40, 0): acceleration disc -> (30, 0), also on the speed circle
    out, _ = project_velocity([40.0, 0.0], [20.0, 0.0], True, 30.0, 10.0)
    np.testing.assert_allclose(out, [30.0, 0.0], rtol=1e-14)
    # previous (0, 0), command (0, -25): acceleration disc radius 10 -> (0, -10)
    out, _ = project_velocity([0.0, -25.0], [0.0, 0.0], True, 30.0, 10.0)
    np.testing.assert_allclose(out, [0.0, -10.0], rtol=1e-14, atol=1e-14)
    # previous (30, 0) on the speed circle, command (30, 30): the crossing point of |v| = 30 and
    # |v - (30, 0)| = 10 with positive y: x = (900 - 100 + 900) / 60 = 85/3, y = sqrt(900 - x^2)
    out, flag = project_velocity([30.0, 30.0], [30.0, 0.0], True, 30.0, 10.0)
    xc = 85.0 / 3.0
    np.testing.assert_allclose(out, [xc, math.sqrt(900.0 - xc * xc)], rtol=1e-12)
    assert bool(flag)
    # feasible commands are returned unchanged
    out, flag = project_velocity([12.0, -5.0], [10.0, 0.0], True, 30.0, 10.0)
    np.testing.assert_array_equal(out, [12.0, -5.0])
    assert not bool(flag)


def test_project_velocity_batched():
    rng = np.random.default_rng(5)
    v_max, dv_max = 20.0, 8.0
    x = rng.uniform(-40.0, 40.0, (3, 5, 2))
    prev = rng.uniform(-1.0, 1.0, (3, 5, 2))
    prev *= (rng.uniform(0.0, v_max, (3, 5)) / np.linalg.norm(prev, axis=-1))[..., None]
    has_prev = rng.random((3, 5)) < 0.7
    has_prev[0, 0], has_prev[0, 1] = False, True
    x[0, 2] = prev[0, 2] + [1.0, 1.0]  # feasible
    out, flag = project_velocity(x, prev, has_prev, v_max, dv_max)
    assert out.shape == (3, 5, 2) and flag.shape == (3, 5)
    for idx in np.ndindex(3, 5):
        single, single_flag = project_velocity(x[idx], prev[idx], has_prev[idx], v_max, dv_max)
        np.testing.assert_allclose(out[idx], single, rtol=1e-13, atol=1e-13)
        assert bool(flag[idx]) == bool(single_flag)
        check_projection(out[idx], x[idx], prev[idx], bool(has_prev[idx]), v_max, dv_max)
    np.testing.assert_array_equal(out[0, 2], x[0, 2])
    assert not bool(flag[0, 2])


def test_advance_and_straight_line():
    np.testing.assert_allclose(advance([1.0, 2.0], [3.0, -4.0], 2.0), [7.0, -6.0], rtol=1e-15)
    # defaults: 1000 m in 50 slots of 2 s -> 10 m/s, 20 m per slot
    pos, vel = straight_line((0.0, 0.0), (1000.0, 0.0), 50, 2.0)
    assert pos.shape == (50, 2) and vel.shape == (50, 2)
    np.testing.assert_array_equal(vel, np.tile([10.0, 0.0], (50, 1)))
    np.testing.assert_allclose(pos[:, 0], 20.0 * np.arange(1, 51), rtol=1e-15)
    np.testing.assert_array_equal(pos[-1], [1000.0, 0.0])
    # an awkward one: constant velocity, consecutive positions tau v apart, ends at end_xy
    start, end, n, tau = np.array([0.3, 0.1]), np.array([123.456, -7.89]), 7, 1.3
    pos, vel = straight_line(start, end, n, tau)
    np.testing.assert_allclose(vel, np.tile((end - start) / (n * tau), (n, 1)), rtol=1e-15)
    np.testing.assert_allclose(np.diff(np.vstack([start, pos]), axis=0), tau * vel, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pos[-1], end, rtol=0, atol=1e-9)
    speeds = np.linalg.norm(vel, axis=-1)
    assert np.ptp(speeds) == 0.0
    # one slot: straight to the end
    pos, vel = straight_line((5.0, 5.0), (25.0, 5.0), 1, 4.0)
    np.testing.assert_allclose(pos, [[25.0, 5.0]])
    np.testing.assert_allclose(vel, [[5.0, 0.0]])


# --------------------------------------------------------------------------------------------
# power caps and slot accounting
# --------------------------------------------------------------------------------------------
def test_cap_transmit_power():
    c = constants()
    assert c.p_max_w == pytest.approx(10.0 ** 3.5, rel=1e-12)      # 65 dBm
    assert c.circuit_power_w == pytest.approx(1.0, rel=1e-12)
    # defaults: P_max - P_C - P_fly >> 10 W, so the peak power binds: 20 W -> halved
    p, p_fly, over = cap_transmit_power([4.0, 6.0, 10.0], 10.0, c)
    np.testing.assert_allclose(p, [2.0, 3.0, 5.0], rtol=1e-14)
    assert float(p_fly) == pytest.approx(ref_p_fly(10.0), rel=1e-12)
    assert bool(over)
    # within the budget: untouched
    p, _, over = cap_transmit_power([4.0, 6.0], 10.0, c)
    np.testing.assert_array_equal(p, [4.0, 6.0])
    assert not bool(over)
    # P_max binds: hover costs 580.65 + 790.67 = 1371.32 W, P_C = 1 W, P_max = 1375.32 W -> 3 W left
    c2 = dataclasses.replace(c, p_max_w=1375.32)
    p, p_fly, over = cap_transmit_power([2.0, 2.0], 0.0, c2)
    assert float(p_fly) == pytest.approx(1371.32, rel=1e-13)
    np.testing.assert_allclose(p, [1.5, 1.5], rtol=1e-9)
    assert bool(over)
    # at 20 m/s the flight power is lower, so more is left: 1375.32 - 1 - P_fly(20)
    left = 1375.32 - 1.0 - ref_p_fly(20.0)
    p, _, _ = cap_transmit_power([300.0, 200.0], 20.0, dataclasses.replace(c2, peak_power_w=1e6))
    np.testing.assert_allclose(p, [0.6 * left, 0.4 * left], rtol=1e-9)
    # nothing left (flight alone exceeds P_max): zero power, not negative
    p, _, over = cap_transmit_power([1.0, 2.0], 0.0, dataclasses.replace(c, p_max_w=1000.0))
    np.testing.assert_array_equal(p, [0.0, 0.0])
    assert bool(over)
    # batched over slots with different speeds: each row scaled to its own budget
    speeds = np.array([0.0, 20.0, 40.0])
    c3 = dataclasses.replace(c, p_max_w=1300.0, peak_power_w=500.0)
    p, p_fly, over = cap_transmit_power(np.full((3, 2), 200.0), speeds, c3)
    budgets = [max(min(500.0, 1300.0 - 1.0 - ref_p_fly(float(v))), 0.0) for v in speeds]
    np.testing.assert_allclose(p.sum(axis=-1), [min(400.0, b) for b in budgets], rtol=1e-9)
    np.testing.assert_allclose(p_fly, [ref_p_fly(float(v)) for v in speeds], rtol=1e-12)
    np.testing.assert_array_equal(over, [b < 400.0 for b in budgets])


def hand_slot_constants():
    # N_F = 4 of W = 31250 / 4 = 7812.5 Hz, so gamma0 = 1.28e6 m^2/W as in the defaults
    c = constants(num_subcarriers=4, bandwidth_hz=31250.0)
    assert c.subcarrier_hz == 7812.5 and c.gamma0 == pytest.approx(1.28e6, rel=1e-12)
    return c


def test_slot_outcome_hand_computed():
    c = hand_slot_constants()
    users = np.array([[250.0, 150.0], [500.0, -150.0], [750.0, 150.0]])
    q = np.array([250.0, 150.0])          # right above user 0
    v = np.array([6.0, 8.0])              # speed 10
    p = np.array([127.0 / 128.0, 255.0 / 128.0, 1.0, 0.0])
    u = np.array([0, 0, 1, 2])
    out = slot_outcome(q, v, p, u, users, c)
    # user 0: d^2 = 1e4, SNR/W = 128 -> SNRs 127 and 255 -> 7 + 8 bit/s/Hz
    # user 1: d^2 = 1e4 + 250^2 + 300^2 = 162500 -> SNR 1.28e6 / 162500; user 2: no power
    bits0 = 2.0 * 7812.5 * (7.0 + 8.0)
    bits1 = 2.0 * 7812.5 * math.log2(1.0 + 1.28e6 / 162500.0)
    np.testing.assert_allclose(out["bits_per_user"], [bits0, bits1, 0.0], rtol=1e-12)
    assert float(out["bits"]) == pytest.approx(bits0 + bits1, rel=1e-12)
    p_fly = ref_p_fly(10.0)
    assert float(out["flight_power_w"]) == pytest.approx(p_fly, rel=1e-12)
    p_tx = 382.0 / 128.0 + 1.0
    assert float(out["transmit_power_w"]) == pytest.approx(p_tx, rel=1e-14)
    assert float(out["energy_j"]) == pytest.approx(2.0 * (p_tx + 1.0 + p_fly), rel=1e-12)
    # eavesdropper: sqrt(250^2 + 150^2) - 50 from the disc -> d^2 = 1e4 + (sqrt(85000) - 50)^2
    de2 = 1e4 + (math.sqrt(85000.0) - 50.0) ** 2
    leak = (255.0 / 128.0) * 1.28e6 / de2
    assert float(out["leakage_snr_max"]) == pytest.approx(leak, rel=1e-12)
    assert float(out["leakage_excess"]) == pytest.approx(leak / 0.5 - 1.0 - LEAKAGE_RTOL, rel=1e-12)
    assert float(out["power_excess"]) == 0.0


def test_slot_outcome_leakage_excess_at_and_above_cap():
    c = hand_slot_constants()
    users = np.array([[250.0, 150.0], [500.0, -150.0], [750.0, 150.0]])
    q = np.array([500.0, 20.0])            # inside the 50 m disc: d_E,min = H = 100 m
    cap = 0.5 * 1e4 / 1.28e6               # gamma_tol H^2 / gamma0 = 3.90625 mW
    u = np.array([1, 1, 0, 2])
    out = slot_outcome(q, np.zeros(2), np.full(4, cap), u, users, c)
    assert float(out["leakage_snr_max"]) == pytest.approx(0.5, rel=1e-13)
    assert float(out["leakage_excess"]) == 0.0
    # within the float32 slack LEAKAGE_RTOL: still zero
    out = slot_outcome(q, np.zeros(2), np.array([cap * (1 + 0.5 * LEAKAGE_RTOL), 0.0, 0.0, 0.0]), u, users, c)
    assert float(out["leakage_excess"]) == 0.0
    # 1 % above the cap on one subcarrier: the relative excess beyond the slack
    out = slot_outcome(q, np.zeros(2), np.array([0.0, 1.01 * cap, cap, 0.0]), u, users, c)
    assert float(out["leakage_snr_max"]) == pytest.approx(0.505, rel=1e-12)
    assert float(out["leakage_excess"]) == pytest.approx(0.01 - LEAKAGE_RTOL, rel=1e-9)
    assert float(out["leakage_excess"]) > 0.0
    # hovering energy: 2 s * (4 cap + 1 W + 1371.32 W)
    out = slot_outcome(q, np.zeros(2), np.full(4, cap), u, users, c)
    assert float(out["energy_j"]) == pytest.approx(2.0 * (4 * cap + 1.0 + 1371.32), rel=1e-12)


def test_slot_outcome_power_excess():
    c = dataclasses.replace(hand_slot_constants(), p_max_w=1000.0)
    users = np.array([[0.0, 0.0]] * 3)
    out = slot_outcome([0.0, 0.0], [0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0, 0, 0, 0], users, c)
    # hover 1371.32 + 1 + 1 W against 1000 W
    assert float(out["power_excess"]) == pytest.approx(1373.32 / 1000.0 - 1.0, rel=1e-12)


def test_trajectory_outcome_matches_per_slot_sums():
    c = hand_slot_constants()
    users = np.array([[250.0, 150.0], [500.0, -150.0], [750.0, 150.0]])
    n = 5
    rng = np.random.default_rng(2)
    vel = np.array([[10.0, 0.0], [0.0, 0.0], [25.0, 5.0], [30.0, 0.0], [3.0, -4.0]])   # unequal energies
    pos = np.cumsum(2.0 * vel, axis=0) + [100.0, 50.0]
    p = rng.uniform(0.0, 0.01, (n, 4))
    u = rng.integers(0, 3, (n, 4))
    out = trajectory_outcome(pos, vel, p, u, users, c)
    assert out["bits_per_user"].shape == (n, 3) and out["energy_j"].shape == (n,)
    # second route: a plain loop over slots, subcarriers and users
    bits = np.zeros((n, 3))
    energy = np.zeros(n)
    for t in range(n):
        for i in range(4):
            k = int(u[t, i])
            d2 = 1e4 + (pos[t, 0] - users[k, 0]) ** 2 + (pos[t, 1] - users[k, 1]) ** 2
            bits[t, k] += 2.0 * 7812.5 * math.log2(1.0 + p[t, i] * 1.28e6 / d2)
        energy[t] = 2.0 * (p[t].sum() + 1.0 + ref_p_fly(math.hypot(*vel[t])))
    np.testing.assert_allclose(out["bits_per_user"], bits, rtol=1e-11)
    np.testing.assert_allclose(out["energy_j"], energy, rtol=1e-11)
    assert out["total_bits"] == pytest.approx(bits.sum(), rel=1e-11)
    assert out["total_energy_j"] == pytest.approx(energy.sum(), rel=1e-11)
    # eq. (9): ratio of sums
    assert out["energy_efficiency_bits_per_joule"] == pytest.approx(bits.sum() / energy.sum(), rel=1e-11)
    assert out["energy_efficiency_bits_per_joule"] != pytest.approx(float(np.mean(bits.sum(axis=1) / energy)),
                                                                    rel=1e-6)
    # C6: mission-average rate = bits over N tau
    np.testing.assert_allclose(out["mean_rate_bps"], bits.sum(axis=0) / (n * 2.0), rtol=1e-11)
    # per-slot users (N, K, 2) give the same as broadcast users
    out2 = trajectory_outcome(pos, vel, p, u, np.broadcast_to(users, (n, 3, 2)), c)
    np.testing.assert_allclose(out2["bits_per_user"], bits, rtol=1e-11)


# --------------------------------------------------------------------------------------------
# the single env's scalar fast paths agree with the batched array paths
# --------------------------------------------------------------------------------------------
def test_scalar_fast_paths_match_batched_paths():
    rng = np.random.default_rng(21)
    # flight power: Python float in, Python float out, same value as the array path
    for v in (0.0, 7.3, 21.5, 33.0):
        f = flight_power(v)
        assert isinstance(f, float)
        assert f == pytest.approx(float(flight_power(np.array([v]))[0]), rel=1e-14)
        assert f == pytest.approx(ref_p_fly(v), rel=1e-12)
    # worst-case distance from offsets (floats) against the (..., 2) array version
    for _ in range(20):
        dx, dy = (float(t) for t in rng.uniform(-200.0, 200.0, 2))
        r = float(rng.choice([0.0, 30.0, 150.0]))
        got = worst_case_eve_distance_sq_xy(dx, dy, r, 100.0)
        gap = max(math.hypot(dx, dy) - r, 0.0)
        assert got == pytest.approx(1e4 + gap * gap, rel=1e-13)
        assert got == pytest.approx(float(worst_case_eve_distance_sq([dx, dy], [0.0, 0.0], r, 100.0)), rel=1e-13)
    # velocity projection on floats
    for _ in range(40):
        c = rng.uniform(-50.0, 50.0, 2)
        p = rng.uniform(-1.0, 1.0, 2)
        p *= rng.uniform(0.0, 30.0) / np.linalg.norm(p)
        has = bool(rng.random() < 0.8)
        vx, vy, proj = project_velocity_xy(float(c[0]), float(c[1]), float(p[0]), float(p[1]), has, 30.0, 10.0)
        arr, arr_proj = project_velocity(c, p, has, 30.0, 10.0)
        np.testing.assert_allclose([vx, vy], arr, rtol=1e-13, atol=1e-12)
        assert bool(proj) == bool(arr_proj)
    # one slot (1-D) against the same slot inside a batch, for decode, power cap and outcome
    c = hand_slot_constants()
    users = np.array([[250.0, 150.0], [500.0, -150.0], [750.0, 150.0]])
    actions = rng.uniform(-1.0, 1.0, (6, action_size(4)))
    actions[0, 3:7] = -1.0
    vb, pb, ub = decode_action(actions, c)
    speeds = np.linalg.norm(vb, axis=-1)
    pcb, pfb, ob = cap_transmit_power(pb * 40.0, speeds, c)
    pos = rng.uniform(0.0, 1000.0, (6, 2))
    outb = slot_outcome(pos, vb, pcb, ub, users, c)
    for t in range(6):
        v1, p1, u1 = decode_action(actions[t], c)
        np.testing.assert_allclose(v1, vb[t], rtol=1e-15)
        np.testing.assert_allclose(p1, pb[t], rtol=1e-13)
        np.testing.assert_array_equal(u1, ub[t])
        pc1, pf1, o1 = cap_transmit_power(p1 * 40.0, float(speeds[t]), c)
        np.testing.assert_allclose(pc1, pcb[t], rtol=1e-13)
        assert pf1 == pytest.approx(float(pfb[t]), rel=1e-13)
        assert bool(o1) == bool(ob[t])
        out1 = slot_outcome(pos[t], v1, pc1, u1, users, c)
        for key in ("bits_per_user", "bits", "energy_j", "flight_power_w", "transmit_power_w",
                    "leakage_snr_max", "leakage_excess", "power_excess"):
            np.testing.assert_allclose(out1[key], outb[key][t], rtol=1e-12, atol=1e-12, err_msg=key)
