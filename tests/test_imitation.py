"""Learning the flight from the planners (issue 24): demonstrations, the expert's labels, cloning."""
from __future__ import annotations

import numpy as np
import pytest

import secure_env  # noqa: F401
from agents import imitation
from agents.imitation import PretrainConfig, expert_action, planner_flights, pretrain_entry, rollouts

UAV = "secure_env/UavSecureOfdma-v0"
#: a short drawn mission keeps the planning to a fraction of a second per layout (its tight end lets
#: the safety layer's conservative reachability family bend planned flights, so it is off here)
SHORT = {"random_users": True, "num_slots": 20, "end_xy": (500.0, 0.0), "eve_xy": (250.0, 0.0),
         "user_area_xy": ((0.0, -200.0), (500.0, 200.0)), "action_mode": "velocity", "safety_layer": False}
#: the drawn-layout env the agents train in (paper mission, velocity mode, safety layer on)
DRAWN = {"random_users": True, "action_mode": "velocity"}


def test_expert_label_on_the_plan_is_the_planned_velocity_and_steers_back_off_it():
    plan_q = np.array([[10.0, 0.0], [25.0, 5.0], [40.0, 5.0]])
    # on the plan (at q[1] after slot 0): the velocity to q[2] over tau = 1 s, over V_max = 50
    a = expert_action(np.array([10.0, 0.0]), 1, plan_q, slot_s=1.0, v_max_mps=50.0)
    assert a == pytest.approx([15.0 / 50.0, 5.0 / 50.0])
    # off it, 3 m below: the velocity that gets back to the planned position in one slot
    a = expert_action(np.array([10.0, -3.0]), 1, plan_q, slot_s=1.0, v_max_mps=50.0)
    assert a == pytest.approx([15.0 / 50.0, 8.0 / 50.0])
    # far off: the unit-disc direction toward it
    a = expert_action(np.array([-990.0, 5.0]), 1, plan_q, slot_s=1.0, v_max_mps=50.0)
    assert a == pytest.approx([1.0, 0.0], abs=1e-7)


@pytest.mark.parametrize("kw", [SHORT, DRAWN], ids=["short-no-layer", "drawn-with-layer"])
def test_the_velocity_mode_flies_the_planner_flight_exactly(tmp_path, kw):
    """The demonstrations are the planner's own flight: the labels flown in the velocity mode
    reproduce every planned position (on the drawn-layout env the safety layer never bends them)."""
    plans = planner_flights(UAV, kw, [11, 12], "joint", tmp_path)
    env_positions = []
    data = rollouts(UAV, kw, plans)
    import gymnasium as gym

    slots = gym.make(UAV, **kw).unwrapped.scenario.num_slots
    assert len(data) == 2 * slots and data.dones.sum() == 2
    for seed, (plan_q, plan_v) in plans.items():
        env = gym.make(UAV, **kw)
        obs, info = env.reset(seed=seed)
        pos = np.asarray(info["position_m"])
        for n in range(slots):
            obs, _, term, trunc, info = env.step(expert_action(pos, n, plan_q, 1.0 * env.unwrapped.scenario.slot_s,
                                                               env.unwrapped.constants.v_max_mps))
            pos = np.asarray(info["position_m"])
            env_positions.append(np.max(np.abs(pos - plan_q[n])))
        env.close()
    assert max(env_positions) < 1e-3          # metres (float32 actions)


def test_planner_flights_are_cached_and_reused(tmp_path, monkeypatch):
    first = planner_flights(UAV, SHORT, [21], "algorithm3", tmp_path)
    calls = []
    from baselines.cai2019 import policies

    monkeypatch.setattr(policies.Algorithm3Policy, "predict", lambda *a, **k: calls.append(1))
    again = planner_flights(UAV, SHORT, [21], "algorithm3", tmp_path)
    assert not calls
    np.testing.assert_array_equal(first[21][0], again[21][0])
    # another env setting is another cache folder: planned again (and so the patched predict runs)
    try:
        planner_flights(UAV, {**SHORT, "eve_radius_m": 80.0}, [21], "algorithm3", tmp_path / "other")
    except Exception:  # noqa: BLE001 - the patched planner plans nothing; only the call matters
        pass
    assert calls


def test_a_cloned_policy_flies_the_planner_tour_on_a_training_layout(tmp_path):
    """Behaviour cloning on two layouts (no DAgger, no RL): the policy's own flight on a training
    layout stays within 5 % of the trip length (25 m of 500 m) of the planned positions."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    venv = VecNormalize(make_vec_env(UAV, n_envs=1, env_kwargs=SHORT), gamma=0.999)
    model = PPO("MlpPolicy", venv, seed=0, policy_kwargs={"net_arch": [128, 128]}, n_steps=64, batch_size=64)
    settings = {"env_id": UAV, "env_kwargs": SHORT, "seed": 0, "layout_pool": None}
    report = imitation.pretrain(model, settings, {"planner": "joint", "layouts": 2, "first_seed": 31,
                                                   "dagger_rounds": 1, "dagger_layouts": 1, "epochs": 400,
                                                   "batch_size": 32}, tmp_path)
    assert report["layouts"] == 2 and report["pairs"] == 3 * SHORT["num_slots"]
    plans = planner_flights(UAV, SHORT, [31], "joint", tmp_path)
    from agents.training import AgentPolicy

    flown = rollouts(UAV, SHORT, plans, AgentPolicy(model, venv))
    import gymnasium as gym

    env = gym.make(UAV, **SHORT)
    obs, info = env.reset(seed=31)
    worst = 0.0
    for n in range(SHORT["num_slots"]):
        action = model.predict(venv.normalize_obs(obs), deterministic=True)[0]
        obs, _, _, _, info = env.step(action)
        worst = max(worst, float(np.hypot(*(np.asarray(info["position_m"]) - plans[31][0][n]))))
    env.close()
    assert len(flown) == SHORT["num_slots"]
    assert worst < 25.0, worst
    # the exploration noise is set for fine-tuning
    assert float(model.policy.log_std.detach().mean()) == pytest.approx(PretrainConfig().log_std)


def test_pretrain_settings_are_checked():
    with pytest.raises(ValueError, match="unknown key 'layout'"):
        PretrainConfig.from_mapping({"layout": 3})
    with pytest.raises(ValueError, match=r"pretrain\.layouts must be an integer >= 1"):
        PretrainConfig.from_mapping({"layouts": 0})
    with pytest.raises(ValueError, match=r"pretrain\.dagger_rounds"):
        PretrainConfig.from_mapping({"dagger_rounds": -1})
    with pytest.raises(ValueError, match="not a baseline"):
        planner_flights(UAV, SHORT, [1], "oracle", None)


def test_where_pretraining_applies():
    entry = pretrain_entry(UAV, "ppo", {"random_users": True}, True)
    assert entry is not None and entry["planner"] in ("joint", "algorithm3")
    assert pretrain_entry(UAV, "ppo", {"random_users": True}, False) is None
    # by default: drawn UAV layouts only (the measured case), not the paper's fixed layout
    assert pretrain_entry(UAV, "ppo", {"random_users": True}, None) == entry
    assert pretrain_entry(UAV, "ppo", {}, None) is None
    assert pretrain_entry("secure_env/QuantumUav-v0", "ppo", {"random_users": True}, None) is None
    with pytest.raises(ValueError, match="no entry for sac"):
        pretrain_entry(UAV, "sac", {}, True)
    assert pretrain_entry("secure_env/QkdNoma-v0", "ppo", {}, None) is None


def test_drawn_uav_layouts_train_the_generalising_agent_by_default(tmp_path):
    """train.py's defaults (variants.yml + pretrain.yml): PPO on drawn UAV layouts gets the set
    observation, the Deep Sets encoder and the planner pretraining; the paper layout, an explicit
    flat observation and the benchmark's algorithms do not."""
    from agents.training import TrainConfig, prepare_run

    def settings(**kw):
        return prepare_run(TrainConfig(env_id=UAV, out=tmp_path / "r", **kw))

    drawn = settings(env_kwargs={"random_users": True})
    assert drawn["env_kwargs"]["observation_mode"] == "set"
    assert drawn["hyperparams"]["policy_kwargs"]["features_extractor_class"] == "user_set"
    assert drawn["hyperparams"]["normalize"]["norm_obs"] is False and drawn["timesteps"] >= 500_000
    assert drawn["pretrain"]["planner"] == "joint"
    paper = settings()
    assert "observation_mode" not in paper["env_kwargs"] and "pretrain" not in paper
    flat = settings(env_kwargs={"random_users": True, "observation_mode": "flat"}, pretrain=False)
    assert "features_extractor_class" not in flat["hyperparams"]["policy_kwargs"] and "pretrain" not in flat
    assert "pretrain" not in settings(env_kwargs={"random_users": True}, pretrain=False)
    plain = settings(env_kwargs={"random_users": True}, variants=False, pretrain=False)
    assert "observation_mode" not in plain["env_kwargs"]


def test_runs_that_differ_only_in_what_the_agent_sees_share_planned_flights(tmp_path, monkeypatch):
    planner_flights(UAV, SHORT, [41], "algorithm3", tmp_path)
    calls = []
    from baselines.cai2019 import policies

    monkeypatch.setattr(policies.Algorithm3Policy, "predict", lambda *a, **k: calls.append(1))
    planner_flights(UAV, {**SHORT, "observation_mode": "set", "max_users": 5, "action_mode": "compact"}, [41],
                    "algorithm3", tmp_path)
    assert not calls
