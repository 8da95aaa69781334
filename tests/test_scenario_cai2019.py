"""Scenario of Cai et al. 2019 (``cai2019`` preset): spec defaults, derived constants, validation,
overrides (keywords and dicts) and random user drops.

Expected values come from the recommended defaults (docs/models/uav_ofdma.md) and are worked
out by hand here (dBm -> W, B / N_F, ...).
"""
from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest

from secure_env.core.flight import CAI2019_TABLE_I, ZENG2019
from secure_env.core.uav_ofdma import sample_users
from secure_env.scenarios import PRESETS, UavOfdmaScenario, make_scenario

DEFAULT_USERS = ((250.0, 150.0), (500.0, -150.0), (750.0, 150.0))


# --------------------------------------------------------------------------------------------
# defaults and derived constants
# --------------------------------------------------------------------------------------------
def test_defaults_are_the_specs():
    s = make_scenario("cai2019")
    assert PRESETS["cai2019"] is UavOfdmaScenario
    assert s == UavOfdmaScenario()
    assert make_scenario({}, default="cai2019") == s
    assert (s.num_users, s.num_subcarriers, s.num_slots) == (3, 128, 50)
    assert s.slot_s == 2.0
    assert s.bandwidth_hz == 1e6
    assert s.noise_psd_dbm_hz == -110.0
    assert s.beta0_db == -40.0
    assert s.altitude_m == 100.0
    assert s.p_max_dbm == 65.0
    assert s.r_min_bps == 1e4
    assert s.circuit_power_dbm == 30.0
    assert s.v_max_mps == 30.0
    assert s.a_max_mps2 == 5.0
    assert s.gamma_tol == 0.5
    assert s.peak_power_w == 10.0
    assert s.eve_radius_m == 50.0
    assert s.start_xy == (0.0, 0.0)
    assert s.end_xy == (1000.0, 0.0)
    assert s.eve_xy == (500.0, 0.0)
    assert s.user_xy == DEFAULT_USERS
    assert s.random_users is False
    assert s.rotor == "cai2019"
    x0, y0 = s.user_area_xy[0]
    x1, y1 = s.user_area_xy[1]
    assert x0 < x1 and y0 < y1


def test_derived_constants_by_hand():
    s = make_scenario("cai2019")
    assert s.subcarrier_hz == 7812.5                                     # 1 MHz / 128
    # -110 dBm/Hz = 1e-11 mW/Hz = 1e-14 W/Hz, times 7812.5 Hz
    assert s.noise_w == pytest.approx(7.8125e-11, rel=1e-12)
    assert isinstance(s.noise_w, float)
    # -71.07 dBm per subcarrier (spec §12)
    assert 10.0 * math.log10(s.noise_w / 1e-3) == pytest.approx(-71.07, abs=0.005)
    assert s.beta0 == pytest.approx(1e-4, rel=1e-12)                    # -40 dB
    assert s.gamma0 == pytest.approx(1e-4 / 7.8125e-11, rel=1e-12) == 1.28e6
    assert s.p_max_w == pytest.approx(10.0 ** 3.5, rel=1e-12)            # 65 dBm = 3162.3 W
    assert s.p_max_w == pytest.approx(3162.28, abs=0.01)
    assert s.circuit_power_w == pytest.approx(1.0, rel=1e-12)            # 30 dBm
    assert s.dv_max_mps == 10.0                                          # 5 m/s^2 * 2 s
    assert s.trip_m == 1000.0
    assert s.mission_s == 100.0
    assert s.rotor_params is CAI2019_TABLE_I
    assert make_scenario("cai2019", rotor="zeng2019").rotor_params is ZENG2019


def test_derived_constants_follow_overrides():
    s = make_scenario("cai2019", bandwidth_hz=2e6, num_subcarriers=64, noise_psd_dbm_hz=-120.0,
                      beta0_db=-50.0, p_max_dbm=60.0, circuit_power_dbm=20.0, a_max_mps2=2.5,
                      slot_s=3.0, start_xy=(100.0, 0.0), end_xy=(400.0, 400.0))
    assert s.subcarrier_hz == 31250.0
    assert s.noise_w == pytest.approx(1e-15 * 31250.0, rel=1e-12)
    assert s.beta0 == pytest.approx(1e-5, rel=1e-12)
    assert s.gamma0 == pytest.approx(1e-5 / (1e-15 * 31250.0), rel=1e-12)
    assert s.p_max_w == pytest.approx(1000.0, rel=1e-12)
    assert s.circuit_power_w == pytest.approx(0.1, rel=1e-12)
    assert s.dv_max_mps == 7.5
    assert s.trip_m == 500.0                                             # 300-400-500 triangle
    assert s.mission_s == 150.0


def test_scenario_is_frozen_and_hashable():
    s = make_scenario("cai2019")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.num_users = 4  # type: ignore[misc]
    assert hash(s) == hash(make_scenario("cai2019"))


# --------------------------------------------------------------------------------------------
# overrides
# --------------------------------------------------------------------------------------------
# keyword -> (value, companion keywords needed to stay valid, expected normalised value)
OVERRIDES = {
    "num_users": (2, {"user_xy": ((0.0, 0.0), (1.0, 1.0))}, 2),
    "num_subcarriers": (64, {}, 64),
    "num_slots": (60, {}, 60),
    "slot_s": (3.0, {}, 3.0),
    "bandwidth_hz": (2e6, {}, 2e6),
    "noise_psd_dbm_hz": (-120.0, {}, -120.0),
    "beta0_db": (-50.0, {}, -50.0),
    "altitude_m": (150.0, {}, 150.0),
    "p_max_dbm": (60.0, {}, 60.0),
    "r_min_bps": (0.0, {}, 0.0),
    "circuit_power_dbm": (20.0, {}, 20.0),
    "v_max_mps": (40.0, {}, 40.0),
    "a_max_mps2": (2.5, {}, 2.5),
    "gamma_tol": (1.0, {}, 1.0),
    "peak_power_w": (1.0, {}, 1.0),
    "eve_radius_m": (0.0, {}, 0.0),
    "eve_xy": ((400.0, 10.0), {}, (400.0, 10.0)),
    "start_xy": ((100.0, 0.0), {}, (100.0, 0.0)),
    "end_xy": ((900.0, 50.0), {}, (900.0, 50.0)),
    "user_xy": (((1.0, 2.0), (3.0, 4.0), (5.0, 6.0)), {}, ((1.0, 2.0), (3.0, 4.0), (5.0, 6.0))),
    "random_users": (True, {}, True),
    "user_area_xy": (((-10.0, -20.0), (30.0, 40.0)), {}, ((-10.0, -20.0), (30.0, 40.0))),
    "rotor": ("zeng2019", {}, "zeng2019"),
    "leakage_penalty": (2.5, {}, 2.5),
    "qos_penalty": (0.0, {}, 0.0),
    "destination_penalty": (10.0, {}, 10.0),
    "action_mode": ("velocity", {}, "velocity"),
    "safety_layer": (False, {}, False),
    "observation_mode": ("set", {}, "set"),
    "max_users": (5.0, {"observation_mode": "set"}, 5),
    "eve_discs": ([[500, 0, 50], ["300", 10.0, 5]], {}, ((500.0, 0.0, 50.0), (300.0, 10.0, 5.0))),
    "random_eves": (True, {}, True),
    "num_eves": (3.0, {"random_eves": True}, 3),
    "eve_radius_range_m": ([10, 80], {"random_eves": True}, (10.0, 80.0)),
    "eve_area_xy": ([[0, -50], [800, 50]], {"random_eves": True}, ((0.0, -50.0), (800.0, 50.0))),
    "num_users_range": ([2, 4.0], {"random_users": True, "num_users": 4}, (2, 4)),
}


def test_override_table_covers_every_field():
    assert set(OVERRIDES) == {f.name for f in dataclasses.fields(UavOfdmaScenario)}


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_every_keyword_is_overridable(name):
    value, extra, expected = OVERRIDES[name]
    base = make_scenario("cai2019")
    assert getattr(base, name) != expected           # the override really changes something
    for s in (make_scenario("cai2019", **{name: value}, **extra),
              make_scenario({name: value, **extra}, default="cai2019"),
              make_scenario({name: value}, default="cai2019", **extra),
              UavOfdmaScenario(**{name: value}, **extra)):
        assert isinstance(s, UavOfdmaScenario)
        assert getattr(s, name) == expected
        # every other field keeps the preset's value
        for f in dataclasses.fields(UavOfdmaScenario):
            if f.name != name and f.name not in extra:
                assert getattr(s, f.name) == getattr(base, f.name), f.name


def test_dict_keyword_and_instance_precedence():
    d = make_scenario({"gamma_tol": 2.0, "peak_power_w": 1.0}, default="cai2019", gamma_tol=3.0)
    assert (d.gamma_tol, d.peak_power_w) == (3.0, 1.0)                   # the keyword wins
    base = UavOfdmaScenario(eve_radius_m=150.0)
    assert make_scenario(base) is base
    s = make_scenario(base, peak_power_w=1.0)
    assert (s.eve_radius_m, s.peak_power_w) == (150.0, 1.0)
    # a dict is applied on top of the named default, not of yang2019
    assert isinstance(make_scenario({"gamma_tol": 1.0}, default="cai2019"), UavOfdmaScenario)


def test_yaml_style_lists_are_normalised_to_tuples_of_floats():
    s = make_scenario("cai2019", eve_xy=[400, 10], start_xy=[0, 0], end_xy=[1000, 0],
                      user_xy=[[1, 2], [3, 4], [5, 6]], user_area_xy=[[0, -100], [1000, 100]])
    assert s.eve_xy == (400.0, 10.0)
    assert s.user_xy == ((1.0, 2.0), (3.0, 4.0), (5.0, 6.0))
    assert s.user_area_xy == ((0.0, -100.0), (1000.0, 100.0))
    for pt in (s.eve_xy, s.start_xy, s.end_xy, *s.user_xy, *s.user_area_xy):
        assert type(pt) is tuple and len(pt) == 2
        assert all(type(x) is float for x in pt)
    assert type(s.user_xy) is tuple and type(s.user_area_xy) is tuple
    # the same through a dict (as loaded from YAML) and from numpy arrays
    d = make_scenario({"user_xy": [[1, 2], [3, 4], [5, 6]], "eve_xy": [400, 10]}, default="cai2019")
    assert d.user_xy == s.user_xy and d.eve_xy == s.eve_xy
    a = make_scenario("cai2019", user_xy=np.array([[1, 2], [3, 4], [5, 6]]), eve_xy=np.array([400.0, 10.0]))
    assert a.user_xy == s.user_xy and all(type(x) is float for pt in a.user_xy for x in pt)
    assert a.eve_xy == (400.0, 10.0) and all(type(x) is float for x in a.eve_xy)
    # equal to the tuple form, and hashable
    assert a == d == make_scenario("cai2019", user_xy=((1.0, 2.0), (3.0, 4.0), (5.0, 6.0)), eve_xy=(400.0, 10.0))
    hash(a)


def test_numeric_fields_are_normalised():
    s = make_scenario("cai2019", num_users=3.0, num_subcarriers=np.int64(64), num_slots=50.0, slot_s=2,
                      random_users=np.bool_(True))
    assert type(s.num_users) is int and s.num_users == 3
    assert type(s.num_subcarriers) is int and s.num_subcarriers == 64
    assert type(s.num_slots) is int and s.num_slots == 50
    assert type(s.slot_s) is float and s.slot_s == 2.0
    assert s.random_users is True


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
NAN, INF = float("nan"), float("inf")
INVALID = [
    ("num_users", 0), ("num_users", -1), ("num_users", 2.5), ("num_users", True), ("num_users", "three"), ("num_users", "2.5"), ("num_users", "1e3"),
    ("num_users", NAN), ("num_users", 65),
    ("num_subcarriers", 0), ("num_subcarriers", 1.5), ("num_subcarriers", None),
    ("num_slots", 0), ("num_slots", INF), ("num_slots", -50),
    ("slot_s", 0.0), ("slot_s", -2.0), ("slot_s", NAN), ("slot_s", INF), ("slot_s", True), ("slot_s", "two"), ("slot_s", "-2"),
    ("bandwidth_hz", 0), ("bandwidth_hz", -1e6), ("bandwidth_hz", NAN),
    ("noise_psd_dbm_hz", NAN), ("noise_psd_dbm_hz", 1.0), ("noise_psd_dbm_hz", -INF),
    ("beta0_db", 10.0), ("beta0_db", INF), ("beta0_db", "-40 dB"), ("beta0_db", "1e1"),
    ("altitude_m", 0.0), ("altitude_m", -100.0), ("altitude_m", NAN),
    ("p_max_dbm", NAN), ("p_max_dbm", 200.0), ("p_max_dbm", False),
    ("r_min_bps", -1.0), ("r_min_bps", INF),
    ("circuit_power_dbm", INF), ("circuit_power_dbm", NAN),
    ("v_max_mps", 0.0), ("v_max_mps", -30.0), ("v_max_mps", NAN),
    ("a_max_mps2", 0.0), ("a_max_mps2", -5.0), ("a_max_mps2", NAN),
    ("gamma_tol", 0.0), ("gamma_tol", -0.5), ("gamma_tol", False), ("gamma_tol", INF),
    ("peak_power_w", 0.0), ("peak_power_w", -10.0), ("peak_power_w", "10 W"), ("peak_power_w", "0"), ("peak_power_w", NAN),
    ("eve_radius_m", -1.0), ("eve_radius_m", NAN), ("eve_radius_m", True),
    ("eve_xy", (1.0,)), ("eve_xy", (1.0, 2.0, 3.0)), ("eve_xy", ("a", 2.0)), ("eve_xy", (NAN, 0.0)),
    ("eve_xy", (True, 0.0)), ("eve_xy", "ab"), ("eve_xy", 5.0), ("eve_xy", (1e8, 0.0)), ("eve_xy", None),
    ("start_xy", (INF, 0.0)), ("start_xy", (0.0,)),
    ("end_xy", None), ("end_xy", (1.0,)), ("end_xy", (1000.0, "zero")), ("end_xy", (1000.0, "1e9")),
    ("user_xy", ((1.0, 2.0), (3.0,), (5.0, 6.0))), ("user_xy", (("a", 2.0), (1.0, 1.0), (2.0, 2.0))),
    ("user_xy", 5), ("user_xy", "xy"), ("user_xy", ((1.0, 2.0), (3.0, 4.0))),
    ("user_xy", ((1.0, 2.0), (3.0, 4.0), (5.0, 6.0), (7.0, 8.0))), ("user_xy", ((1.0, NAN), (3.0, 4.0), (5.0, 6.0))),
    ("random_users", 1), ("random_users", 0), ("random_users", "yes"), ("random_users", None),
    ("random_users", 1.0),
    ("user_area_xy", ((0.0, 0.0),)), ("user_area_xy", ((10.0, 0.0), (0.0, 10.0))),
    ("user_area_xy", ((0.0, 10.0), (10.0, 0.0))), ("user_area_xy", ((0.0, 0.0), (0.0, 10.0))),
    ("user_area_xy", ((0.0, 0.0), (10.0, 0.0))), ("user_area_xy", ((0.0, 0.0), (1.0, 1.0), (2.0, 2.0))),
    ("user_area_xy", ((0.0, "a"), (1.0, 1.0))),
    ("rotor", "foo"), ("rotor", 1), ("rotor", None),
    ("leakage_penalty", -1.0), ("qos_penalty", NAN), ("destination_penalty", INF),
    ("action_mode", "speed"), ("action_mode", None), ("action_mode", 1),
    ("safety_layer", 1), ("safety_layer", "on"), ("safety_layer", 0.0),
    ("end_xy", (3000.01, 0.0)), ("end_xy", (2500.0, 2000.0)),   # beyond v_max tau N = 3000 m
]


@pytest.mark.parametrize("name,value", INVALID, ids=[f"{n}={v!r}" for n, v in INVALID])
def test_invalid_value_raises_naming_field(name, value):
    with pytest.raises(ValueError, match=re.escape(name)):
        make_scenario("cai2019", **{name: value})
    with pytest.raises(ValueError, match=re.escape(name)):
        make_scenario({name: value}, default="cai2019")
    with pytest.raises(ValueError, match=re.escape(name)):
        UavOfdmaScenario(**{name: value})


def test_user_count_must_match_num_users_unless_random():
    with pytest.raises(ValueError, match="user_xy"):
        make_scenario("cai2019", num_users=4)
    with pytest.raises(ValueError, match="num_users"):
        make_scenario("cai2019", num_users=2)
    # with random users the fixed list is not used, so its length does not matter
    s = make_scenario("cai2019", num_users=5, random_users=True)
    assert s.num_users == 5 and s.user_xy == DEFAULT_USERS
    s = make_scenario("cai2019", num_users=1, user_xy=[[10, 20]])
    assert s.user_xy == ((10.0, 20.0),)


def test_end_reachability_boundary():
    # reach = v_max * tau * N = 30 * 2 * 50 = 3000 m: exactly 3000 m is feasible (full speed all along)
    assert make_scenario("cai2019", end_xy=(3000.0, 0.0)).trip_m == 3000.0
    assert make_scenario("cai2019", start_xy=(-1800.0, 0.0), end_xy=(0.0, 2400.0)).trip_m == 3000.0
    # each factor of the reach matters: 1000 m needs v_max tau N >= 1000
    for kw in ({"num_slots": 16}, {"v_max_mps": 9.9}, {"slot_s": 0.6}):
        with pytest.raises(ValueError, match="end_xy"):
            make_scenario("cai2019", **kw)
    s = make_scenario("cai2019", num_slots=17)            # 30 * 2 * 17 = 1020 m
    assert s.num_slots == 17
    s = make_scenario("cai2019", v_max_mps=10.0)          # exactly 1000 m
    assert s.v_max_mps == 10.0


def test_unknown_keyword_lists_allowed_names():
    for call in (lambda: make_scenario("cai2019", foo=1),
                 lambda: make_scenario({"foo": 1}, default="cai2019")):
        with pytest.raises(ValueError) as exc:
            call()
        msg = str(exc.value)
        assert "foo" in msg
        for allowed in ("num_users", "num_subcarriers", "gamma_tol", "eve_radius_m", "user_xy",
                        "random_users", "user_area_xy", "rotor"):
            assert allowed in msg
    # a yang2019-only keyword is unknown here
    with pytest.raises(ValueError, match="alpha_beta"):
        make_scenario("cai2019", alpha_beta=0.5)


def test_validation_message_mentions_range():
    with pytest.raises(ValueError) as exc:
        make_scenario("cai2019", num_users=65)
    msg = str(exc.value)
    assert "num_users" in msg and "65" in msg and "64" in msg
    with pytest.raises(ValueError) as exc:
        make_scenario("cai2019", end_xy=(5000.0, 0.0))
    msg = str(exc.value)
    assert "end_xy" in msg and "3000" in msg


# --------------------------------------------------------------------------------------------
# random users
# --------------------------------------------------------------------------------------------
def test_fixed_users_are_returned_as_given():
    s = make_scenario("cai2019")
    u = sample_users(np.random.default_rng(0), s)
    np.testing.assert_array_equal(u, np.array(DEFAULT_USERS))
    u = sample_users(np.random.default_rng(0), s, (4, 2))
    assert u.shape == (4, 2, 3, 2)
    np.testing.assert_array_equal(u[3, 1], np.array(DEFAULT_USERS))
    u[0, 0, 0, 0] = -1.0                                    # a writable copy, not a view of the scenario
    assert s.user_xy == DEFAULT_USERS


def test_random_users_inside_area_reproducible_and_seed_dependent():
    s = make_scenario("cai2019", random_users=True, num_users=4, user_area_xy=[[-10, -20], [30, 40]])
    a = sample_users(np.random.default_rng(123), s)
    assert a.shape == (4, 2)
    assert np.all(a[:, 0] >= -10.0) and np.all(a[:, 0] <= 30.0)
    assert np.all(a[:, 1] >= -20.0) and np.all(a[:, 1] <= 40.0)
    # same seed -> same drop; other seeds -> other drops
    np.testing.assert_array_equal(a, sample_users(np.random.default_rng(123), s))
    others = [sample_users(np.random.default_rng(seed), s) for seed in (124, 0, 7)]
    for o in others:
        assert not np.allclose(o, a)
    # not the fixed users
    assert not np.allclose(a[:3], np.array(DEFAULT_USERS))
    # successive draws from one generator differ
    rng = np.random.default_rng(5)
    assert not np.allclose(sample_users(rng, s), sample_users(rng, s))


def test_random_users_cover_the_rectangle_uniformly():
    s = make_scenario("cai2019", random_users=True, user_area_xy=((0.0, -250.0), (1000.0, 250.0)))
    u = sample_users(np.random.default_rng(9), s, (20_000,))
    assert u.shape == (20_000, 3, 2)
    x, y = u[..., 0].ravel(), u[..., 1].ravel()
    assert x.min() >= 0.0 and x.max() <= 1000.0 and y.min() >= -250.0 and y.max() <= 250.0
    # uniform: mean at the centre, variance (width^2 / 12), each quarter of the box ~ 1/4
    # (60k draws; tolerances are > 6 standard errors)
    assert abs(float(x.mean()) - 500.0) < 6 * 1000.0 / math.sqrt(12 * 60_000)
    assert abs(float(y.mean())) < 6 * 500.0 / math.sqrt(12 * 60_000)
    assert float(x.var()) == pytest.approx(1000.0 ** 2 / 12.0, rel=0.03)
    assert float(y.var()) == pytest.approx(500.0 ** 2 / 12.0, rel=0.03)
    for xs in (x < 500.0, x >= 500.0):
        for ys in (y < 0.0, y >= 0.0):
            assert abs(float(np.mean(xs & ys)) - 0.25) < 0.011
    # x and y are drawn independently (no correlation)
    assert abs(float(np.corrcoef(x, y)[0, 1])) < 0.025
