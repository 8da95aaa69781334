"""PPO timesteps per second with SB3's DummyVecEnv vs the native vector env (no assertions).

Usage::

    PYTHONPATH=. python benchmarks/training_speed.py [--timesteps 16384] [--n-envs 8,64]
                                                     [--out runs/benchmarks/training_speed.json]

For each env id and each number of envs it trains PPO (MlpPolicy, n_steps = 2048 / n_envs rounded
up to at least 16, batch 256, one epoch-set per rollout as in the defaults, torch on one thread)
for ``--timesteps`` on (a) ``make_vec_env`` (a DummyVecEnv of single envs, what train.py uses by
default) and (b) :func:`agents.vec_adapter.make_native_vec_env` (what ``train.py --vectorized``
uses), and reports total timesteps over the wall time of ``learn()`` (SB3's own fps overstates
PPO throughput), and the ratio native / Dummy.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parent))   # sibling helper module
from report import machine, write_report  # noqa: E402

try:
    import secure_env
except ModuleNotFoundError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import secure_env


def measure(env_id: str, n_envs: int, vectorized: bool, timesteps: int, seed: int) -> float:
    """Timesteps/s of PPO's learn() on one venv kind."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from agents.vec_adapter import make_native_vec_env

    torch.set_num_threads(1)
    venv = make_native_vec_env(env_id, n_envs, seed) if vectorized else make_vec_env(env_id, n_envs=n_envs, seed=seed)
    n_steps = max(16, -(-2048 // n_envs))
    model = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=256, seed=seed, verbose=0)
    t0 = time.perf_counter()
    model.learn(timesteps)
    elapsed = time.perf_counter() - t0
    done = model.num_timesteps
    venv.close()
    return done / elapsed


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timesteps", type=int, default=16384)
    p.add_argument("--n-envs", default="8,64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ids", default=",".join(secure_env.ENV_IDS))
    p.add_argument("--out", default="runs/benchmarks/training_speed.json")
    args = p.parse_args(argv)
    rows = []
    print(f"{'env':<32} {'n_envs':>6} {'Dummy ts/s':>11} {'native ts/s':>12} {'native/Dummy':>13}")
    for env_id in [x for x in args.ids.split(",") if x]:
        for n in (int(x) for x in args.n_envs.split(",")):
            dummy = measure(env_id, n, False, args.timesteps, args.seed)
            native = measure(env_id, n, True, args.timesteps, args.seed)
            rows.append({"env": env_id, "n_envs": n, "dummy_timesteps_per_s": dummy,
                         "native_timesteps_per_s": native, "native_over_dummy": native / dummy})
            print(f"{env_id:<32} {n:>6} {dummy:>11.0f} {native:>12.0f} {native / dummy:>13.2f}")
    result = {"timesteps": args.timesteps, **machine(), "rows": rows}
    write_report(result, args.out)
    return result


if __name__ == "__main__":
    main()
