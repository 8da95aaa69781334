"""How far the Cai 2019 planners' plans move when the users move by a hair (a measurement, no assertions).

Usage::

    python benchmarks/planner_sensitivity.py [--seeds 7000001 7000008 7000015] [--copies 4]
                                             [--delta-m 1e-6] [--draw-seed 123]
                                             [--out runs/benchmarks/planner_sensitivity.json]

For each drawn layout (UavSecureOfdma-v0 with ``random_users=True``, ``reset(seed)``) it plans
Algorithm 3 and the joint refinement from it once on the drawn users and once on each of
``--copies`` copies whose user coordinates are moved by independent uniform draws in
[-delta, +delta] m (``numpy.random.default_rng([draw_seed, seed])``), and prints each plan's
energy efficiency (bits/J) and the relative spread max/min - 1 per layout and planner.

Why: Algorithm 3 is an alternation of a discrete step (sub-problem 1 rounds the schedule to whole
subcarriers) and SCA with a relative stop rule (1e-3 gain); on some layouts a difference in the
sixth digit of an iterate flips one of those choices and the plan ends at another local optimum,
up to a few percent away. A 1e-6 m move of the users (far below any physical meaning) is such a
difference. A spread above the tolerance you compare plans with says that the layout's plan is
not reproducible at that tolerance by any implementation, the original included.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    import baselines  # noqa: F401
except ModuleNotFoundError:  # run as a plain script without PYTHONPATH: use the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gymnasium as gym

import secure_env  # noqa: F401  (registers the ids)
from baselines.cai2019 import trajectory as tr

ENV_ID = "secure_env/UavSecureOfdma-v0"


def layout_spread(seed: int, copies: int, delta_m: float, draw_seed: int) -> dict[str, Any]:
    """Algorithm 3 and joint on drawn layout ``seed``, exact and with ``copies`` moved user sets
    (the moves drawn by ``numpy.random.default_rng([draw_seed, seed])``)."""
    rng = np.random.default_rng([draw_seed, seed])
    env = gym.make(ENV_ID, random_users=True)
    env.reset(seed=seed)
    scenario, users0 = env.unwrapped.scenario, env.unwrapped.geometry()["user_xy"]
    env.close()
    rows = []
    for i in range(copies + 1):
        users = users0 if i == 0 else users0 + rng.uniform(-delta_m, delta_m, users0.shape)
        t0 = time.perf_counter()
        a3 = tr.algorithm3(scenario, users)
        joint = tr.joint_refinement(scenario, a3, users)
        rows.append({"moved": i > 0, "algorithm3_ee": a3.energy_efficiency, "joint_ee": joint.energy_efficiency,
                     "algorithm3_outer_iterations": len(a3.history) - 1,
                     "wall_s": time.perf_counter() - t0})
    out: dict[str, Any] = {"seed": seed, "plans": rows}
    for key in ("algorithm3_ee", "joint_ee"):
        v = np.array([r[key] for r in rows])
        out[key.replace("_ee", "_spread")] = float(v.max() / v.min() - 1.0)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Plan, print a table and write the JSON report; returns 0."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[7_000_001, 7_000_008, 7_000_015],
                   help="reset seeds of the drawn layouts (default 7000001 7000008 7000015)")
    p.add_argument("--copies", type=int, default=4, help="moved copies of each layout's users (default 4)")
    p.add_argument("--delta-m", type=float, default=1e-6,
                   help="largest move of each user coordinate in m (default 1e-6)")
    p.add_argument("--draw-seed", type=int, default=123, help="seed of the moves (default 123)")
    p.add_argument("--out", type=Path, default=Path("runs/benchmarks/planner_sensitivity.json"))
    args = p.parse_args(argv)
    if min(args.seeds) < 0 or args.draw_seed < 0:
        p.error("--seeds and --draw-seed must be >= 0 (reset seeds)")
    if args.copies < 1:
        p.error(f"--copies must be >= 1, got {args.copies}")
    if not (np.isfinite(args.delta_m) and args.delta_m > 0):
        p.error(f"--delta-m must be a positive number of metres, got {args.delta_m}")
    if args.out.is_dir():
        p.error(f"--out {args.out} is a folder; give a file name")
    try:    # a bad --out fails here, before minutes of planning
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.touch()
    except OSError as exc:
        p.error(f"--out {args.out}: {exc.strerror}")
    minutes = len(args.seeds) * (args.copies + 1) * 2.0 / 60
    print(f"planner_sensitivity: expected runtime about {minutes:.1f} min on 2 cores", flush=True)

    layouts: list[dict[str, Any]] = []
    report = {"command": "python benchmarks/planner_sensitivity.py " + " ".join(argv if argv is not None
                                                                                 else sys.argv[1:]),
              "env_id": ENV_ID, "copies": args.copies, "delta_m": args.delta_m, "draw_seed": args.draw_seed,
              "layouts": layouts}
    print(f"Algorithm 3 and joint EE [bits/J]: drawn users, then {args.copies} copies moved by "
          f"<= {args.delta_m:g} m per coordinate")
    for seed in args.seeds:
        row = layout_spread(seed, args.copies, args.delta_m, args.draw_seed)
        layouts.append(row)
        a3 = " ".join(f"{r['algorithm3_ee']:9.2f}" for r in row["plans"])
        joint = " ".join(f"{r['joint_ee']:9.2f}" for r in row["plans"])
        print(f"  seed {seed}  algorithm3 {a3}   spread {row['algorithm3_spread']:.1e}", flush=True)
        print(f"  {'':12} joint      {joint}   spread {row['joint_spread']:.1e}", flush=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")    # after each layout: a stopped run keeps them
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
