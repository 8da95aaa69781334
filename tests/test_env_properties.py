"""Property-based tests (hypothesis): over drawn valid configurations and arbitrary finite actions the
envs stay finite and inside their spaces; drawn invalid configurations raise ``ValueError`` naming
the field.

Valid configurations draw a few scenario keywords per id across their documented ranges (the
dataclass field metadata of :mod:`secure_env.scenarios`, which the env docstrings point to), and for
the UAV ids every ``action_mode`` and ``safety_layer`` in (True, False, None). Actions mix values in
[-1, 1], the bounds, and any finite float64.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import secure_env  # noqa: F401  (registers the ids)
from secure_env.core.flight import ROTOR_PRESETS
from secure_env.scenarios import QkdNomaScenario, QuantumUavScenario, UavOfdmaScenario

QKD_ID, UAV_ID, QUANTUM_ID = "secure_env/QkdNoma-v0", "secure_env/UavSecureOfdma-v0", "secure_env/QuantumUav-v0"
SCENARIO_CLS = {QKD_ID: QkdNomaScenario, UAV_ID: UavOfdmaScenario, QUANTUM_ID: QuantumUavScenario}

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def log_uniform(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Floats spread over decades from ``lo`` to ``hi`` (> 0), both included."""
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda e: float(min(max(10.0 ** e, lo), hi)))


# -- valid configurations -------------------------------------------------------------------------
@st.composite
def qkd_noma_config(draw: st.DrawFn) -> dict[str, Any]:
    kw = draw(st.fixed_dictionaries({
        "num_users": st.integers(1, 6),
        "frames_per_episode": st.integers(1, 3),
    }, optional={
        "p_max_dbm": st.floats(-30.0, 60.0),
        "noise_dbm": st.floats(-250.0, 30.0),
        "bandwidth_hz": log_uniform(1e-3, 1e12),
        "frame_s": log_uniform(1e-6, 1e6),
        "photons_m": st.integers(1, 10 ** 9),
        "alpha_beta": st.floats(1e-9, 0.5),
        "light_speed_mps": log_uniform(1.0, 1e12),
        "multiple_access": st.sampled_from(["noma", "tdma"]),
    }))
    area = draw(log_uniform(1e-3, 1e7))
    kw["area_m"] = area
    kw["min_distance_m"] = min(area * math.sqrt(0.5) * draw(st.floats(1e-6, 1.0)), 1e6)
    return kw


@st.composite
def uav_config(draw: st.DrawFn, quantum: bool) -> dict[str, Any]:
    random_users = draw(st.booleans())
    kw = draw(st.fixed_dictionaries({
        "num_slots": st.integers(1, 4),
        "num_subcarriers": st.integers(1, 12),
        "action_mode": st.sampled_from(["full", "compact", "velocity"]),
        "safety_layer": st.sampled_from([True, False, None]),
        "random_users": st.just(random_users),
        "num_users": st.integers(1, 4) if random_users else st.just(3),
    }, optional={
        "slot_s": log_uniform(1e-2, 1e4),
        "v_max_mps": log_uniform(1e-1, 1e3),
        "a_max_mps2": log_uniform(1e-2, 1e4),
        "p_max_dbm": st.floats(-30.0, 100.0),
        "circuit_power_dbm": st.floats(-100.0, 80.0),
        "peak_power_w": log_uniform(1e-6, 1e6),
        "gamma_tol": log_uniform(1e-6, 1e9),
        "eve_radius_m": st.floats(0.0, 1e4),
        "eve_xy": st.tuples(st.floats(-2e3, 2e3), st.floats(-2e3, 2e3)),
        "r_min_bps": st.one_of(st.just(0.0), log_uniform(1.0, 1e12)),
        "altitude_m": log_uniform(1e-3, 1e5),
        "beta0_db": st.floats(-200.0, 0.0),
        "noise_psd_dbm_hz": st.floats(-250.0, 0.0),
        "bandwidth_hz": log_uniform(1e-3, 1e12),
        "rotor": st.sampled_from(sorted(ROTOR_PRESETS)),
        "leakage_penalty": st.floats(0.0, 1e9),
        "qos_penalty": st.floats(0.0, 1e9),
        "destination_penalty": st.floats(0.0, 1e9),
        "observation_mode": st.sampled_from(["flat", "set"]),
    }))
    if kw.get("observation_mode") == "set" and draw(st.booleans()):
        kw["max_users"] = kw["num_users"] + draw(st.integers(0, 3))     # padded user tokens
    if quantum:
        kw.update(draw(st.fixed_dictionaries({}, optional={
            "photons_m": st.integers(1, 10 ** 9),
            "alpha_beta": st.floats(1e-9, 0.5),
            "light_speed_mps": log_uniform(1.0, 1e12),
            "qkd_source_power_w": st.floats(0.0, 1e6),
            "qkd_enabled": st.booleans(),
        })))
    # q_F anywhere the UAV can reach in N slots (the scenario refuses farther ones), coordinates in range
    base = SCENARIO_CLS[QUANTUM_ID if quantum else UAV_ID]
    reach = kw.get("v_max_mps", base.v_max_mps) * kw.get("slot_s", base.slot_s) * kw["num_slots"]
    frac = draw(st.floats(0.0, 1.0))
    angle = draw(st.floats(-math.pi, math.pi))
    dist = min(frac * reach * (1.0 - 1e-9), 5e6)
    kw["end_xy"] = (dist * math.cos(angle), dist * math.sin(angle))
    return kw


CONFIGS = {QKD_ID: qkd_noma_config(), UAV_ID: uav_config(quantum=False), QUANTUM_ID: uav_config(quantum=True)}

finite_action_entry = st.one_of(st.floats(-1.0, 1.0), st.sampled_from([-1.0, 1.0, 0.0]),
                                st.floats(allow_nan=False, allow_infinity=False))


# -- checks ----------------------------------------------------------------------------------------
def assert_finite_numbers(value: Any, where: str) -> None:
    """Every number in ``value`` (scalars, arrays, nested dicts) is finite."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert_finite_numbers(v, f"{where}[{k!r}]")
    elif isinstance(value, np.ndarray):
        if value.dtype == object:
            for i, v in enumerate(value):
                if v is not None:
                    assert_finite_numbers(v, f"{where}[{i}]")
        elif np.issubdtype(value.dtype, np.number):
            assert np.isfinite(value).all(), f"{where} = {value!r} is not finite"
    elif isinstance(value, (bool, np.bool_)):
        pass
    elif isinstance(value, numbers.Number):
        assert math.isfinite(float(value)), f"{where} = {value!r} is not finite"


def _make_env(env_id: str, kw: dict[str, Any]) -> gym.Env:
    return gym.make(env_id, **kw).unwrapped


def _run_episode(env: gym.Env, seed: int, actions: list[np.ndarray]) -> None:
    obs, info = env.reset(seed=seed)
    assert obs in env.observation_space and np.isfinite(obs).all(), obs
    assert_finite_numbers(info, "reset info")
    for t, a in enumerate(actions):
        obs, reward, terminated, truncated, info = env.step(a)
        assert isinstance(reward, float) and math.isfinite(reward), (t, reward)
        assert np.isfinite(obs).all(), (t, obs)
        assert obs in env.observation_space, (t, obs)
        assert_finite_numbers(info, f"info at step {t}")
        assert (terminated or truncated) == (t == len(actions) - 1), t      # the documented episode length
    assert "episode_metrics" in info


@st.composite
def env_case(draw: st.DrawFn, env_id: str) -> tuple[dict[str, Any], int, list[np.ndarray]]:
    kw = draw(CONFIGS[env_id])
    env = _make_env(env_id, kw)       # sizes of the spaces follow from the config
    shape = env.action_space.shape
    horizon = kw.get("frames_per_episode", kw.get("num_slots"))
    acts = draw(st.lists(arrays(np.float64, shape, elements=finite_action_entry), min_size=horizon,
                         max_size=horizon))
    return kw, draw(st.integers(0, 2 ** 31 - 1)), acts


@pytest.mark.parametrize("env_id", [QKD_ID, UAV_ID, QUANTUM_ID])
def test_drawn_valid_configs_and_finite_actions_stay_finite_and_in_space(env_id: str) -> None:
    @FAST
    @given(case=env_case(env_id))
    def check(case: tuple[dict[str, Any], int, list[np.ndarray]]) -> None:
        kw, seed, actions = case
        _run_episode(_make_env(env_id, kw), seed, actions)

    check()


@pytest.mark.parametrize("env_id", [UAV_ID, QUANTUM_ID])
@pytest.mark.parametrize("mode", ["full", "compact", "velocity"])
def test_every_action_mode_and_safety_setting_stays_finite(env_id: str, mode: str) -> None:
    """Each mode x safety layer gets examples of its own (the drawn configs above mix them)."""
    @settings(FAST, max_examples=40)
    @given(case=env_case(env_id), safety=st.sampled_from([True, False, None]))
    def check(case: tuple[dict[str, Any], int, list[np.ndarray]], safety: bool | None) -> None:
        kw, seed, actions = case
        kw = dict(kw, action_mode=mode, safety_layer=safety)
        env = _make_env(env_id, kw)
        acts = [np.resize(a, env.action_space.shape) for a in actions]
        _run_episode(env, seed, acts)

    check()


@pytest.mark.parametrize("env_id", [QKD_ID, UAV_ID, QUANTUM_ID])
def test_native_vector_env_stays_finite_and_in_space(env_id: str) -> None:
    @settings(FAST, max_examples=60)
    @given(case=env_case(env_id), data=st.data(), autoreset=st.sampled_from(["NextStep", "SameStep"]))
    def check(case: tuple[dict[str, Any], int, list[np.ndarray]], data: st.DataObject, autoreset: str) -> None:
        kw, seed, actions = case
        venv = gym.make_vec(env_id, num_envs=2, autoreset_mode=autoreset, **kw)
        obs, info = venv.reset(seed=seed)
        assert obs in venv.observation_space
        for t, a in enumerate(actions + actions[:1]):        # through an autoreset
            other = data.draw(arrays(np.float64, a.shape, elements=finite_action_entry))
            obs, reward, terminated, truncated, info = venv.step(np.stack([a, other]))
            assert np.isfinite(obs).all() and obs in venv.observation_space, (t, obs)
            assert np.isfinite(reward).all(), (t, reward)
            assert_finite_numbers(info, f"info at step {t}")

    check()


# -- invalid configurations ------------------------------------------------------------------------
def invalid_values(meta: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values a field with validation metadata ``meta`` must refuse."""
    bad_type = st.sampled_from(["1", [1.0], {"x": 1}] + ([] if meta.get("optional") else [None]))
    kind = meta["kind"]
    if kind == "number":
        # a string Python reads as a number ("1e2") is a number (issue 18: YAML reads 1e2 as a
        # string); strings that are no number are not, nor are numeric strings out of range
        not_a_number = st.sampled_from(["one", "1x", "", "1,5", [1.0], {"x": 1}]
                                       + ([] if meta.get("optional") else [None]))   # optional: None = default
        options = [not_a_number, st.sampled_from([math.nan, math.inf, -math.inf, True, "nan", "inf"])]
        lo, hi = meta["lo"], meta["hi"]
        if lo is not None:
            below = st.floats(-1e300, lo, exclude_max=not meta["lo_open"]) if lo > -1e300 else st.nothing()
            options.append(below)
        if hi is not None:
            options.append(st.floats(hi, 1e300, exclude_min=not meta["hi_open"]))
            options.append(st.floats(hi, 1e300, exclude_min=True).map(repr))   # "1e+300" and the like
        if meta["integer"]:
            lo_i = 1 if lo is None else lo
            hi_i = 1e6 if hi is None else min(hi, 1e6)
            options.append(st.floats(lo_i, hi_i).filter(lambda x: x != int(x)))
        return st.one_of(*options)
    if kind == "choice":
        return st.one_of(bad_type, st.text(max_size=8).filter(lambda s: s not in meta["options"]))
    if kind == "flag":
        values = [0, 1, "true", "yes", 1.0, [True]] + ([] if meta["optional"] else [None])
        return st.sampled_from(values)
    if kind == "point":
        return st.one_of(bad_type, st.just((1.0,)), st.just((1.0, 2.0, 3.0)), st.just((math.nan, 0.0)),
                         st.just((0.0, math.inf)), st.just(("a", 0.0)),
                         *([st.just((meta["hi"] * 10.0, 0.0))] if meta["hi"] is not None else []))
    if kind == "points":
        return st.one_of(st.just("abc"), st.just(5.0), st.just([(math.nan, 0.0)]), st.just([(1.0,)]),
                         st.just([(0.0, 0.0), (1.0, 2.0, 3.0)]))
    if kind == "discs":
        # empty, not a list, a pair, a negative, NaN or too large radius, a non-finite centre
        return st.one_of(st.just([]), st.just("abc"), st.just(5.0), st.just([(0.0, 0.0)]),
                         st.just([(0.0, 0.0, 1.0), (1.0, 2.0)]),
                         st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6),
                                   st.floats(-1e6, 0.0, exclude_max=True)).map(lambda d: [d]),
                         st.just([(0.0, 0.0, math.nan)]), st.just([(0.0, 0.0, meta["r_max"] * 2.0)]),
                         st.just([(math.inf, 0.0, 1.0)]), st.just([(0.0, 0.0, "r")]))
    raise AssertionError(f"unknown field kind {kind!r}")


def _validated_fields(env_id: str) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(SCENARIO_CLS[env_id]) if "kind" in f.metadata]


@pytest.mark.parametrize("env_id", [QKD_ID, UAV_ID, QUANTUM_ID])
def test_drawn_invalid_configs_raise_value_error_naming_the_field(env_id: str) -> None:
    fields = _validated_fields(env_id)

    @settings(FAST, max_examples=150)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        f = data.draw(st.sampled_from(fields), label="field")
        value = data.draw(invalid_values(dict(f.metadata)), label="value")
        with pytest.raises(ValueError, match=f.name):
            gym.make(env_id, **{f.name: value})
        with pytest.raises(ValueError, match=f.name):
            gym.make_vec(env_id, num_envs=2, **{f.name: value})

    check()


@st.composite
def cross_field_violation(draw: st.DrawFn, env_id: str) -> tuple[str, dict[str, Any]]:
    """Values valid one by one that the scenario refuses together: (the field to name, keywords)."""
    if env_id == QKD_ID:
        area = draw(log_uniform(1e-3, 1e6))
        over = draw(st.floats(1.0 + 1e-9, 1e3))
        return "min_distance_m", {"area_m": area, "min_distance_m": min(area * math.sqrt(0.5) * over, 1e6)}
    kind = draw(st.sampled_from(["user_xy", "user_area_xy", "end_xy"]))
    if kind == "user_xy":
        k = draw(st.integers(1, 6))
        n = draw(st.integers(0, 6).filter(lambda n: n != k))
        return kind, {"num_users": k, "user_xy": [(float(i), 0.0) for i in range(n)], "random_users": False}
    if kind == "user_area_xy":
        x0, y0 = draw(st.floats(-1e3, 1e3)), draw(st.floats(-1e3, 1e3))
        x1 = draw(st.floats(-1e3, x0)) if draw(st.booleans()) else draw(st.floats(x0 + 1.0, 2e3))
        y1 = draw(st.floats(-1e3, y0)) if x1 > x0 else draw(st.floats(-1e3, 2e3))
        return kind, {"user_area_xy": [(x0, y0), (x1, y1)], "random_users": True}
    slots, v, tau = draw(st.integers(1, 50)), draw(log_uniform(0.1, 1e3)), draw(log_uniform(0.01, 100.0))
    far = min(v * tau * slots * draw(st.floats(1.0 + 1e-6, 100.0)), 1e7)
    assume(far > v * tau * slots * (1.0 + 1e-9))
    angle = draw(st.floats(-math.pi, math.pi))
    return kind, {"num_slots": slots, "v_max_mps": v, "slot_s": tau,
                  "start_xy": (0.0, 0.0), "end_xy": (far * math.cos(angle), far * math.sin(angle))}


@pytest.mark.parametrize("env_id", [QKD_ID, UAV_ID, QUANTUM_ID])
def test_drawn_inconsistent_configs_raise_value_error_naming_the_field(env_id: str) -> None:
    @settings(FAST, max_examples=40)
    @given(case=cross_field_violation(env_id))
    def check(case: tuple[str, dict[str, Any]]) -> None:
        name, kw = case
        with pytest.raises(ValueError, match=name):
            gym.make(env_id, **kw)

    check()


@given(env_id=st.sampled_from([QKD_ID, UAV_ID, QUANTUM_ID]),
       render_mode=st.one_of(st.text(max_size=10).filter(lambda s: s != "rgb_array" and "%" not in s),  # gymnasium's
                                                                                     # own warning %-formats it
                             st.integers()),
       num_envs=st.one_of(st.integers(-5, 0), st.floats(0.5, 3.5).filter(lambda x: x != int(x)), st.just(True),
                          st.just("2")))
@settings(FAST, max_examples=30)
@pytest.mark.filterwarnings("ignore:.*render_mode.*:UserWarning")     # gym.make warns before the env refuses
def test_bad_render_mode_and_num_envs_raise_value_error_naming_them(env_id: str, render_mode: Any,
                                                                   num_envs: Any) -> None:
    if isinstance(render_mode, str):       # gym.make itself fails on a non-string render_mode (AttributeError)
        with pytest.raises(ValueError, match="render_mode"):
            gym.make(env_id, render_mode=render_mode)
    with pytest.raises(ValueError, match="render_mode"):
        gym.make_vec(env_id, num_envs=2, render_mode=render_mode)
    with pytest.raises(ValueError, match="num_envs"):
        gym.make_vec(env_id, num_envs=num_envs)


@pytest.mark.parametrize("env_id", [QKD_ID, UAV_ID, QUANTUM_ID])
def test_every_validated_field_refuses_a_string_naming_the_field(env_id: str) -> None:
    for f in _validated_fields(env_id):
        with pytest.raises(ValueError, match=f.name):
            gym.make(env_id, **{f.name: "not a valid value"})


# keywords gym.make or Python itself consume before the env sees them (``self=1`` is a TypeError
# from Python's call machinery, not a configuration our validation could name)
_MAKE_KEYWORDS = {"max_episode_steps", "autoreset", "apply_api_compatibility", "disable_env_checker",
                  "render_mode", "scenario", "self"}


@given(name=st.text(min_size=1, max_size=12).filter(lambda s: s.isidentifier() and s not in _MAKE_KEYWORDS
                                                     and s not in {f.name for f in dataclasses.fields(QuantumUavScenario)}),
    env_id=st.sampled_from([QKD_ID, UAV_ID, QUANTUM_ID]))
@settings(FAST, max_examples=20)
def test_unknown_keywords_raise_value_error_naming_them(name: str, env_id: str) -> None:
    with pytest.raises(ValueError, match=name):
        gym.make(env_id, **{name: 1})


# -- regressions found by the properties above -----------------------------------------------------
@pytest.mark.parametrize("env_id", [QKD_ID, UAV_ID, QUANTUM_ID])
@pytest.mark.parametrize("name", ["default", "preset"])
def test_a_keyword_named_like_make_scenarios_own_parameters_is_an_unknown_keyword(env_id: str, name: str) -> None:
    """Found by hypothesis: ``gym.make(id, default=1)`` raised TypeError (the envs passed their
    keywords to make_scenario(preset, default, **overrides), whose own parameters they hit)."""
    with pytest.raises(ValueError, match=f"unknown scenario keyword.*'{name}'"):
        gym.make(env_id, **{name: 1})


@pytest.mark.parametrize("env_id", [UAV_ID, QUANTUM_ID])
@pytest.mark.parametrize("tiny", [1e-155, 6.1e-160, 5e-324])
def test_a_tiny_previous_velocity_does_not_overflow_the_velocity_projection(env_id: str, tiny: float) -> None:
    """Found by hypothesis: a command of ~1e-155 V_max, then 0, made the single env's velocity
    projection (Python floats) square a ~1e156 m/s circle-crossing point: OverflowError."""
    env = gym.make(env_id, num_slots=2, num_subcarriers=1, end_xy=(0.0, 0.0), safety_layer=True).unwrapped
    env.reset(seed=0)
    first = np.full(env.action_space.shape, tiny)
    venv = gym.make_vec(env_id, num_envs=2, num_slots=2, num_subcarriers=1, end_xy=(0.0, 0.0), safety_layer=True)
    venv.reset(seed=0)
    for a in (first, np.zeros(env.action_space.shape)):
        obs, reward, *_, info = env.step(a)
        assert np.isfinite(obs).all() and math.isfinite(reward)
        with np.errstate(over="raise", invalid="raise"):     # and no overflow in the batched path either
            obs_v, reward_v, *_ = venv.step(np.stack([a, a]))
        np.testing.assert_array_equal(obs_v[0], obs)


def test_the_batched_safety_layer_tries_no_ramp_longer_than_the_slots_left(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by hypothesis (a 1-slot mission with a_max = 0.06 m/s^2 took 1.6-5 s per vector step):
    the batched safety layer looped over every ramp length up to ceil(2 V / dv) = 26 000 even where
    no env had more than one slot left; the single env stops at the slots left."""
    from secure_env.core import safety

    kw = dict(num_slots=2, num_subcarriers=1, slot_s=1.0, a_max_mps2=0.0631, v_max_mps=825.0, action_mode="compact",
              safety_layer=True, end_xy=(495.0, 339.0))
    assert safety._full_change_slots(825.0, 0.0631) > 20_000
    calls = {"n": 0}
    cruise = safety._cruise

    def counting(*args: Any) -> Any:
        calls["n"] += 1
        return cruise(*args)

    monkeypatch.setattr(safety, "_cruise", counting)
    venv = gym.make_vec(UAV_ID, num_envs=2, **kw)
    env = gym.make(UAV_ID, **kw).unwrapped
    venv.reset(seed=0)
    env.reset(seed=0)
    for _ in range(2):
        a = np.zeros(venv.action_space.shape)
        obs_v, *_ = venv.step(a)
        obs, *_ = env.step(a[0])
        np.testing.assert_array_equal(obs_v[0], obs)
    assert 0 < calls["n"] < 100
