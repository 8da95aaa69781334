"""Beyond the paper: does optimisation on top of a trained agent beat both?

    python -m agents.refine RUN_DIR [--eval-episodes N]

Loads the agent of a UAV training run (``RUN_DIR/model.zip``, its VecNormalize statistics and the
env keywords of ``RUN_DIR/run.json``), and scores on the same held-out seeds: the agent, the
agent's flight refined by Algorithm 3's alternation and the joint SCA
(:class:`baselines.cai2019.refine.RefinedTrajectoryPolicy`; the source flies the agent over the episode's
layout in its own action mode), and every baseline of the env. Writes ``refined.json`` and
``refined.md`` into RUN_DIR.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation import (baseline_policies, format_scoreboard, held_out_seeds, make_env, scoreboard,
                               write_scoreboard)

def agent_flight_source(agent: Any, env_id: str, env_kwargs: dict[str, Any]) -> Any:
    """A :data:`baselines.cai2019.refine.TrajectorySource` flying ``agent`` (deterministic) over a layout:
    an env of the run's keywords whose episode is given the layout's users and eavesdropper discs
    (``set_layout``: the observation the agent saw there); returns (positions, velocities)."""
    def source(geo: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        env = make_env(env_id, **env_kwargs)
        try:
            env.reset(seed=0)
            obs = env.unwrapped.set_layout(geo["user_xy"], geo.get("eve_discs"))
            pos, vel = [], []
            while True:
                action, _ = agent.predict(obs, deterministic=True)
                obs, _, terminated, truncated, info = env.step(action)
                pos.append(info["position_m"])
                vel.append(info["velocity_mps"])
                if terminated or truncated:
                    break
        finally:
            env.close()
        return np.asarray(pos, dtype=np.float64), np.asarray(vel, dtype=np.float64)

    return source


def load_agent(run_dir: Path, env_id: str, env_kwargs: dict[str, Any], algo: str) -> Any:
    """The run's final model behind SB3's predict (observation normalisation included)."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from agents.factory import algo_class
    from agents.training import AgentPolicy

    model = algo_class(algo).load(run_dir / "model.zip")
    vn = None
    if (run_dir / "vecnormalize.pkl").exists():
        vn = VecNormalize.load(str(run_dir / "vecnormalize.pkl"), make_vec_env(env_id, n_envs=1, env_kwargs=env_kwargs))
        vn.training = False
        vn.norm_reward = False
    return AgentPolicy(model, vn)


def main(argv: list[str] | None = None) -> int:
    from agents.cli import OneLineParser

    p = OneLineParser(prog="python -m agents.refine", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", help="a training run of a UAV env (holds run.json and model.zip)")
    p.add_argument("--eval-episodes", type=int, default=3, help="held-out episodes (default 3)")
    args = p.parse_args(argv)
    run_dir = Path(args.run_dir)
    try:
        record = json.loads((run_dir / "run.json").read_text())
        env_id, algo = record["env_id"], record.get("algo", "ppo")
        env_kwargs = dict(record.get("env_kwargs") or {})
    except (OSError, ValueError, KeyError) as err:
        p.error(f"{run_dir}: not a finished training run ({type(err).__name__}: {err})")
    if not (run_dir / "model.zip").exists():
        p.error(f"{run_dir}: no model.zip (train first)")
    if args.eval_episodes < 1:
        p.error(f"--eval-episodes must be >= 1, got {args.eval_episodes}")
    from baselines.cai2019.refine import RefinedTrajectoryPolicy
    from baselines.quantum_uav.policies import RefinedQkdTrajectoryPolicy

    base = make_env(env_id, **env_kwargs).unwrapped
    if not hasattr(base, "geometry"):
        p.error(f"{env_id} has no UAV flight to refine")
    qkd = hasattr(base.scenario, "qkd_enabled")
    agent = load_agent(run_dir, env_id, env_kwargs, algo)
    source = agent_flight_source(agent, env_id, env_kwargs)
    refined_cls = RefinedQkdTrajectoryPolicy if qkd else RefinedTrajectoryPolicy

    class Refined(refined_cls):  # type: ignore[misc, valid-type]
        """The planner bound to this run's agent as its source (the scorer builds it as cls(env))."""

        def __init__(self, env: Any) -> None:
            super().__init__(env, source)

    baselines = baseline_policies(env_id)
    policies = {algo: agent, f"{algo}+joint": Refined, **baselines}
    board = scoreboard(policies, env_id, held_out_seeds(args.eval_episodes), baseline_names=list(baselines),
                       **env_kwargs)
    out = run_dir / "refined"
    write_scoreboard(board, out)
    print(format_scoreboard(board))
    print(f"\nwrote {out / 'scores.json'} and {out / 'scores.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
