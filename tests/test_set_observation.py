"""The set observation (``observation_mode="set"``) and the order-free encoder (issue 24).

Tokens against hand-computed values; permuting the users permutes the tokens and changes neither
the encoder's output nor a PPO policy's action; padded tokens are zeros and cannot reach the
encoder's output; a model with the encoder saves and loads in a fresh process; the factory
resolves the encoder by name; bad scenario keywords are refused. (Single env == native vector env
in the set mode: tests/test_vector_envs.py.)
"""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import secure_env  # noqa: F401  (registers the envs)
from agents.encoders import EXTRACTORS, UserSetExtractor, masked_pool
from agents.factory import complete_extractor_kwargs, resolve_policy_kwargs, validate_hyperparams
from secure_env.core.tokens import USER_TOKEN_WIDTH, global_size, set_layout
from secure_env.scenarios import make_scenario

ROOT = Path(__file__).resolve().parents[1]
UAV = "secure_env/UavSecureOfdma-v0"
QUANTUM = "secure_env/QuantumUav-v0"
W = USER_TOKEN_WIDTH
# a small layout worked by hand: L = max(||qF - q0||, V_max tau) = max(400, 60) = 400 m
SMALL = dict(user_xy=((100.0, 50.0), (300.0, -40.0)), num_users=2, eve_xy=(200.0, 0.0), eve_radius_m=20.0,
             start_xy=(0.0, 0.0), end_xy=(400.0, 0.0), num_slots=10, slot_s=2.0, v_max_mps=30.0,
             r_min_bps=1e4, num_subcarriers=8)
USERS3 = ((250.0, 150.0), (520.0, -160.0), (760.0, 120.0))


def split(obs: np.ndarray, layout: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    g = layout["global_dim"]
    return obs[..., :g], obs[..., g:].reshape(obs.shape[:-1] + (layout["num_tokens"], layout["token_dim"]))


# -- the observation --------------------------------------------------------------------------------
def test_default_is_the_flat_observation_and_set_mode_keeps_its_geometry():
    flat = gym.make(UAV, action_mode="velocity")
    assert flat.unwrapped.scenario.observation_mode == "flat" and flat.unwrapped.observation_layout is None
    assert flat.observation_space.shape == (12 + 3 * 3 + 6,)
    explicit = gym.make(UAV, action_mode="velocity", observation_mode="flat")
    o1, _ = flat.reset(seed=3)
    o2, _ = explicit.reset(seed=3)
    np.testing.assert_array_equal(o1, o2)
    for mode, g in (("full", 13), ("compact", 19), ("velocity", 19)):
        env = gym.make(UAV, action_mode=mode, observation_mode="set", max_users=5)
        lay = env.unwrapped.observation_layout
        assert lay == {"global_dim": g, "token_dim": W, "num_tokens": 5} == set_layout(env.unwrapped.scenario)
        assert env.observation_space.shape == (g + 5 * W,) and global_size(mode != "full") == g
        flat_obs, _ = gym.make(UAV, action_mode=mode).reset(seed=4)
        obs, _ = env.reset(seed=4)
        np.testing.assert_array_equal(obs[:12], flat_obs[:12])       # the 12 geometry features, as flat


def test_tokens_equal_hand_computed_values_and_padding_is_zero():
    env = gym.make(UAV, action_mode="velocity", observation_mode="set", max_users=4, **SMALL)
    lay = env.unwrapped.observation_layout
    obs, _ = env.reset(seed=0)
    glob, tok = split(obs, lay)
    big_l, need = 400.0, 10 * 2.0 * 1e4

    def expected(qx: float, qy: float, delivered: np.ndarray, slot: int) -> np.ndarray:
        rows = []
        for (ux, uy), b in zip(SMALL["user_xy"], delivered):
            dx, dy = ux - qx, uy - qy
            rows.append([dx / big_l, dy / big_l, math.hypot(dx, dy) / big_l, min(b / need, 1.0),
                         max(-1.0, min(1.0, (need * (slot + 1) / 10 - b) / need)),
                         (math.hypot(ux - 200.0, uy) - 20.0) / big_l, 1.0])
        return np.array(rows + [[0.0] * W] * 2)

    np.testing.assert_allclose(tok, expected(0.0, 0.0, np.zeros(2), 0), rtol=1e-6, atol=1e-7)
    assert glob[-1] == pytest.approx(2 / 4)                  # K / M
    assert glob[10] == pytest.approx(20.0 / big_l)           # the disc's radius stays global
    np.testing.assert_allclose(glob[8:10], [200.0 / big_l, 0.0], atol=1e-7)
    delivered = np.zeros(2)
    for slot in range(1, 4):
        obs, _, _, _, info = env.step(np.array([0.8, 0.3], dtype=np.float32))
        delivered += info["bits_per_user"]
        qx, qy = info["position_m"]
        glob, tok = split(obs, lay)
        np.testing.assert_allclose(tok, expected(qx, qy, delivered, slot), rtol=1e-5, atol=1e-6)
        assert not tok[2:].any()                              # padded tokens: every entry 0


def _permuted_pair(perm: tuple[int, ...], **kw):
    base = gym.make(UAV, action_mode="velocity", observation_mode="set", max_users=5, user_xy=USERS3, **kw)
    other = gym.make(UAV, action_mode="velocity", observation_mode="set", max_users=5,
                     user_xy=tuple(USERS3[i] for i in perm), **kw)
    return base, other


@pytest.mark.parametrize("perm", [(2, 0, 1), (1, 0, 2)])
def test_permuting_the_users_permutes_the_tokens_only(perm):
    base, other = _permuted_pair(perm)
    lay = base.unwrapped.observation_layout
    o1, _ = base.reset(seed=0)
    o2, _ = other.reset(seed=0)
    rng = np.random.default_rng(1)
    for step in range(8):
        g1, t1 = split(o1, lay)
        g2, t2 = split(o2, lay)
        # global: equal (the tie of slot 0, every user equally behind, goes to the nearest user)
        np.testing.assert_allclose(g2, g1, rtol=1e-5, atol=1e-6, err_msg=f"step {step}")
        np.testing.assert_allclose(t2[:3], t1[list(perm)], rtol=1e-5, atol=1e-6, err_msg=f"step {step}")
        assert not t1[3:].any() and not t2[3:].any()
        a = rng.uniform(-1, 1, 2).astype(np.float32)
        o1, *_ = base.step(a)
        o2, *_ = other.step(a)


def test_the_flat_layout_features_keep_their_first_in_order_tie():
    """Only the set mode breaks the slot-0 tie by distance: the flat observation is unchanged."""
    from secure_env.core.uav_actions import SlotState, layout_features

    s = make_scenario("cai2019", action_mode="velocity", user_xy=USERS3[::-1])
    users = np.array(s.user_xy)
    one = SlotState(0.0, 0.0, 0.0, 0.0, 0, users, np.zeros(3))
    flat = layout_features(one, s, 1000.0)
    free = layout_features(one, s, 1000.0, order_free=True)
    np.testing.assert_allclose(flat[4:], users[0] / 1000.0)        # first in order
    np.testing.assert_allclose(free[4:], users[2] / 1000.0)        # nearest (250, 150)
    batch = layout_features(SlotState(np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2, int),
                                      np.stack([users, users]), np.zeros((2, 3))), s, 1000.0, order_free=True)
    np.testing.assert_array_equal(batch[0], free)


# -- the encoder --------------------------------------------------------------------------------------
def _extractor(env: gym.Env, seed: int = 0) -> UserSetExtractor:
    torch.manual_seed(seed)
    return UserSetExtractor(env.observation_space, **env.unwrapped.observation_layout)


def _permute_tokens(obs: np.ndarray, lay: dict[str, int], order: np.ndarray) -> np.ndarray:
    g, t = split(obs, lay)
    return np.concatenate([g, t[order].ravel()]).astype(np.float32)


def test_the_encoder_is_invariant_to_user_order_and_blind_to_padding():
    env = gym.make(UAV, action_mode="velocity", observation_mode="set", max_users=6, random_users=True)
    lay = env.unwrapped.observation_layout
    ext = _extractor(env)
    obs, _ = env.reset(seed=5)
    for _ in range(3):
        obs, *_ = env.step(env.action_space.sample())
    x = torch.as_tensor(obs)[None]
    with torch.no_grad():
        ref = ext(x)
        assert ref.shape == (1, ext.features_dim) == (1, 64 * 3)
        rng = np.random.default_rng(0)
        for _ in range(5):                      # any order of all six tokens, padding included
            y = ext(torch.as_tensor(_permute_tokens(obs, lay, rng.permutation(6)))[None])
            torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-6)
        junk = obs.copy()                       # padded tokens (mask 0) full of anything
        g, t = split(junk, lay)
        t[3:, :-1] = rng.normal(0, 100, (3, W - 1))
        t[3, 0], t[4, 2] = np.nan, np.inf
        y = ext(torch.as_tensor(np.concatenate([g, t.ravel()]))[None])
        assert torch.equal(y, ref)
        # fewer tokens of padding change nothing either: the same users with max_users = 3
        env3 = gym.make(UAV, action_mode="velocity", observation_mode="set", random_users=True)
        o3, _ = env3.reset(seed=5)
        env.reset(seed=5)
        o6 = env.unwrapped._obs()
        ext3 = UserSetExtractor(env3.observation_space, **env3.unwrapped.observation_layout)
        ext3.load_state_dict(ext.state_dict())
        g3, g6 = split(o3, env3.unwrapped.observation_layout)[0], split(o6, lay)[0]
        assert g3[-1] == 1.0 and g6[-1] == 0.5        # K / M differs; the rest of the global part is equal
        np.testing.assert_array_equal(g3[:-1], g6[:-1])


def test_masked_pool_ignores_padding_and_pools_an_empty_set_to_zero():
    h = torch.tensor([[[1.0, -2.0], [3.0, 5.0], [100.0, 100.0]], [[7.0, 7.0], [8.0, 8.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    out = masked_pool(h, mask)
    torch.testing.assert_close(out, torch.tensor([[2.0, 1.5, 3.0, 5.0], [0.0, 0.0, 0.0, 0.0]]))


def test_an_appended_token_group_is_pooled_on_its_own_and_order_free():
    """The layout leaves room for a second token group (e.g. eavesdropper discs) after the users."""
    space = gym.spaces.Box(-10, 10, (5 + 3 * 4 + 2 * 3,), np.float32)
    torch.manual_seed(0)
    ext = UserSetExtractor(space, global_dim=5, token_dim=4, num_tokens=3, extra_token_groups=[(2, 3)])
    assert ext.features_dim == 64 * 5
    x = torch.randn(1, 23)
    x[0, 5 + 3:17:4] = torch.tensor([1.0, 1.0, 0.0])       # user masks
    x[0, 17 + 2::3] = torch.tensor([1.0, 1.0])             # disc masks
    swapped = x.clone()
    swapped[0, 17:20], swapped[0, 20:23] = x[0, 20:23], x[0, 17:20]
    with torch.no_grad():
        torch.testing.assert_close(ext(swapped), ext(x))
    with pytest.raises(ValueError, match="does not match"):
        UserSetExtractor(space, global_dim=5, token_dim=4, num_tokens=3)


def _ppo(env: gym.Env, seed: int = 0):
    from stable_baselines3 import PPO

    kw = resolve_policy_kwargs({"policy_kwargs": {"features_extractor_class": "user_set",
                                                  "features_extractor_kwargs": env.unwrapped.observation_layout}})
    from stable_baselines3.common.logger import Logger

    model = PPO("MlpPolicy", env, n_steps=32, batch_size=32, n_epochs=1, seed=seed, device="cpu", **kw)
    model.set_logger(Logger(folder=None, output_formats=[]))     # no /tmp/SB3-<date> folder
    return model


def test_a_ppo_policy_on_the_encoder_acts_the_same_on_permuted_users():
    base, other = _permuted_pair((2, 0, 1))
    model = _ppo(base)
    model.learn(64)                               # trained weights, not only the initial ones
    o1, _ = base.reset(seed=0)
    o2, _ = other.reset(seed=0)
    for _ in range(6):
        a1, _ = model.predict(o1, deterministic=True)
        a2, _ = model.predict(o2, deterministic=True)
        np.testing.assert_allclose(a2, a1, rtol=1e-5, atol=1e-6)
        o1, *_ = base.step(a1)
        o2, *_ = other.step(a1)


def test_a_ppo_model_with_the_encoder_loads_in_a_fresh_process(tmp_path):
    env = gym.make(QUANTUM, action_mode="velocity", observation_mode="set", max_users=4, random_users=True)
    model = _ppo(env)
    model.learn(32)
    path = tmp_path / "model.zip"
    model.save(path)
    obs = np.stack([env.reset(seed=s)[0] for s in range(4)])
    np.save(tmp_path / "obs.npy", obs)
    want, _ = model.predict(obs, deterministic=True)
    code = ("import sys, numpy as np; import agents; from stable_baselines3 import PPO\n"
            "m = PPO.load(sys.argv[1], device='cpu')\n"
            "assert type(m.policy.features_extractor).__name__ == 'UserSetExtractor'\n"
            "a, _ = m.predict(np.load(sys.argv[2]), deterministic=True); np.save(sys.argv[3], a)\n")
    res = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "obs.npy"), str(tmp_path / "a.npy")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), want)


# -- the factory ------------------------------------------------------------------------------------
def test_the_factory_resolves_user_set_and_rejects_unknown_names():
    assert EXTRACTORS["user_set"] is UserSetExtractor
    kw = resolve_policy_kwargs({"gamma": 0.9, "policy_kwargs": {"features_extractor_class": "user_set",
                                                                "net_arch": [32]}})
    assert kw["policy_kwargs"] == {"features_extractor_class": UserSetExtractor, "net_arch": [32]}
    assert resolve_policy_kwargs({"policy_kwargs": {"net_arch": [8]}}) == {"policy_kwargs": {"net_arch": [8]}}
    with pytest.raises(ValueError, match=r"policy_kwargs.features_extractor_class='bag'") as err:
        resolve_policy_kwargs({"policy_kwargs": {"features_extractor_class": "bag"}})
    assert "\n" not in str(err.value) and "user_set" in str(err.value)
    base = {"policy": "MlpPolicy", "n_envs": 2, "normalize": False}
    with pytest.raises(ValueError, match=r"--hp policy_kwargs.features_extractor_class='agents.encoders"):
        validate_hyperparams("ppo", {**base, "policy_kwargs": {"features_extractor_class": "agents.encoders.X"}},
                             cli_keys=["policy_kwargs"])
    with pytest.raises(ValueError, match="features_extractor_kwargs"):
        validate_hyperparams("ppo", {**base, "policy_kwargs": {"features_extractor_class": "user_set",
                                                               "features_extractor_kwargs": [1, 2]}})
    for norm in (True, {"gamma": 0.999}):             # VecNormalize would rescale the masks
        with pytest.raises(ValueError, match="norm_obs: false"):
            validate_hyperparams("ppo", {**base, "normalize": norm,
                                         "policy_kwargs": {"features_extractor_class": "user_set"}})
    run, kwargs = validate_hyperparams("ppo", {**base, "normalize": {"gamma": 0.999, "norm_obs": False},
                                               "policy_kwargs": {"features_extractor_class": "user_set"}})
    assert kwargs["policy_kwargs"]["features_extractor_class"] == "user_set"       # still a name (run.json)
    lay = {"global_dim": 19, "token_dim": W, "num_tokens": 3}
    done = complete_extractor_kwargs({"policy_kwargs": {"features_extractor_class": "user_set",
                                                        "features_extractor_kwargs": {"hidden_dim": 32}}}, lay)
    assert done["policy_kwargs"]["features_extractor_kwargs"] == {**lay, "hidden_dim": 32}
    with pytest.raises(ValueError, match="observation_mode=set"):
        complete_extractor_kwargs({"policy_kwargs": {"features_extractor_class": "user_set"}}, None)


def test_train_py_settings_fill_the_layout_from_the_env(tmp_path):
    from agents.training import TrainConfig, prepare_run

    hp = {"policy_kwargs": {"features_extractor_class": "user_set"}, "normalize": {"norm_obs": False}}
    cfg = TrainConfig(env_id=UAV, timesteps=64, out=tmp_path / "run", hyperparams=hp,
                      env_kwargs={"observation_mode": "set", "random_users": True, "max_users": 4})
    settings = prepare_run(cfg)
    pk = settings["hyperparams"]["policy_kwargs"]
    assert pk["features_extractor_class"] == "user_set" and pk["net_arch"] == [64, 64]
    assert pk["features_extractor_kwargs"] == {"global_dim": 19, "token_dim": W, "num_tokens": 4}
    assert settings["hyperparams"]["normalize"] == {"gamma": 0.999, "norm_obs": False}
    with pytest.raises(ValueError, match="observation_mode=set"):
        prepare_run(TrainConfig(env_id=UAV, timesteps=64, out=tmp_path / "flat", hyperparams=hp))


# -- scenario keywords ------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, match", [
    (dict(observation_mode="bag"), r"observation_mode='bag' is invalid: expected one of \['flat', 'set'\]"),
    (dict(observation_mode="set", max_users=2), r"max_users=2 is out of range: it must be at least num_users=3"),
    (dict(observation_mode="set", max_users=0), r"max_users=0 is out of range"),
    (dict(observation_mode="set", max_users=65), r"max_users=65 is out of range"),
    (dict(observation_mode="set", max_users=3.5), r"max_users=3.5 is invalid"),
    (dict(observation_mode="set", max_users="many"), r"max_users='many' is invalid"),
    (dict(max_users=5), r"max_users=5 is invalid with observation_mode='flat'"),
])
@pytest.mark.parametrize("env_id", [UAV, QUANTUM])
def test_bad_observation_keywords_are_refused_naming_the_field(env_id, kw, match):
    with pytest.raises(ValueError, match=match):
        gym.make(env_id, **kw)


def test_max_users_defaults_to_num_users():
    s = make_scenario("quantum_uav", observation_mode="set", num_users=2, random_users=True)
    assert s.max_users is None and s.user_tokens == 2
    assert make_scenario("cai2019", observation_mode="set", max_users=3).user_tokens == 3
    assert make_scenario("cai2019", observation_mode="set", max_users=7.0).max_users == 7
