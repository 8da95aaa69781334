"""Wall time per frame of the Yang et al. 2019 baselines (a measurement, not a test: no assertions).

Usage::

    PYTHONPATH=. python benchmarks/baselines_speed.py [--frames 50] [--seed 0] [--repeats 5]
                                                      [--out runs/benchmarks/baselines_speed.json]

On the default scenario (K = 2, P_max = 30 dBm, m = 10, |alpha||beta| = 0.5) it draws ``--frames``
seeded frames (positions + one fading draw, through the core sampling functions) and times, with
``time.perf_counter`` after one warm-up call of each solver:

- ``algorithm1``: one frame at a time (batch of 1);
- ``exhaustive``: one frame at a time, 100 random starts plus the default one;
- ``tdma``: one frame at a time;
- ``algorithm1_batched``: all frames in one call, time per frame = call time / frames, repeated
  ``--repeats`` times.

Then, on the default Cai 2019 scenario, it times the UAV planners (``--uav-repeats`` runs each):
sub-problem 1 on the straight line, Algorithm 3 (target: under 10 s on one core) and the joint
refinement from Algorithm 3's plan; then both planners once on each of ``--uav-layouts`` drawn
layouts (UavSecureOfdma-v0, ``random_users=True``), planning time per layout (median, p90, max).

It prints median, p90 and mean milliseconds per frame, the ratio of Algorithm 1's single-frame
median to the 5 ms planning target, and writes the same numbers as JSON.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

try:
    import baselines  # noqa: F401
except ModuleNotFoundError:  # run as a plain script without PYTHONPATH: use the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from baselines.yang2019.algorithm1 import algorithm1
from baselines.yang2019.exh import exhaustive
from baselines.yang2019.tdma import tdma
from secure_env.core import qkd_noma as model
from secure_env.scenarios import make_scenario

#: per-frame planning budget Algorithm 1 is compared with
TARGET_MS = 5.0


def draw_frames(scenario: Any, frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded frames -> (gains, distances), each (frames, K), via the core sampling functions."""
    _, distances, gains = model.sample_drops(np.random.default_rng(seed), scenario, (frames,))
    return gains, distances


def time_calls(calls: Sequence[Callable[[], Any]], per_call: int = 1) -> list[float]:
    """Wall time of each call in ms (divided by ``per_call`` frames), after one warm-up call."""
    calls[0]()
    out = []
    for call in calls:
        t0 = time.perf_counter()
        call()
        out.append((time.perf_counter() - t0) * 1e3 / per_call)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    """Median, p90, mean, min of a list of ms, plus the sample count."""
    a = np.asarray(ms)
    return {"median_ms": float(np.median(a)), "p90_ms": float(np.percentile(a, 90)),
            "mean_ms": float(a.mean()), "min_ms": float(a.min()), "samples": int(a.size)}


def uav_timings(repeats: int) -> dict[str, Any]:
    """Wall time (s) of the Cai 2019 planners on the default scenario, and their EE (bits/J).

    ``straight_line`` is sub-problem 1 on the straight path; ``algorithm3`` the full alternation
    (cvxpy + Clarabel, one process, each convex step compiled once per problem shape and re-solved); ``joint``
    the refinement started from Algorithm 3's plan (its own time only).
    """
    from baselines.cai2019 import power
    from baselines.cai2019 import trajectory as tr
    from secure_env.core import uav_ofdma

    s = make_scenario("cai2019")
    out: dict[str, Any] = {}
    times: dict[str, list[float]] = {"straight_line": [], "algorithm3": [], "joint": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        q, v = uav_ofdma.straight_line(s.start_xy, s.end_xy, s.num_slots, s.slot_s)
        sl = power.subproblem1(s, q, v)
        times["straight_line"].append(time.perf_counter() - t0)
        a3 = tr.algorithm3(s)
        times["algorithm3"].append(a3.wall_s)
        joint = tr.joint_refinement(s, a3)
        times["joint"].append(joint.wall_s)
        out["energy_efficiency_bits_per_joule"] = {"straight_line": sl.energy_efficiency,
                                                   "algorithm3": a3.energy_efficiency,
                                                   "joint": joint.energy_efficiency}
        out["algorithm3_outer_iterations"] = len(a3.history) - 1
    out["wall_s"] = {k: {"median": float(np.median(v)), "min": float(np.min(v)), "runs": len(v)}
                     for k, v in times.items()}
    out["algorithm3_target_s"] = 10.0
    print(f"Cai 2019 planners, default scenario, {repeats} runs [s wall time, one process]")
    for k, v in out["wall_s"].items():
        print(f"{k:>20} median {v['median']:7.3f}  min {v['min']:7.3f}   "
              f"EE {out['energy_efficiency_bits_per_joule'][k]:9.2f} bits/J")
    print(f"Algorithm 3 median / 10 s target = {out['wall_s']['algorithm3']['median'] / 10.0:.3f}")
    return out


def uav_layout_timings(layouts: int, seed: int) -> dict[str, Any]:
    """Planning time (s) per drawn layout of Algorithm 3 and the joint refinement (from Algorithm
    3's plan) on UavSecureOfdma-v0 with ``random_users=True``: the users of reset ``seed + i``
    (the env's own seeded draw), one plan each, median / p90 / max over the layouts."""
    import gymnasium as gym

    import secure_env  # noqa: F401  (registers the ids)
    from baselines.cai2019 import trajectory as tr

    env = gym.make("secure_env/UavSecureOfdma-v0", random_users=True)
    rows = []
    for i in range(layouts):
        env.reset(seed=seed + i)
        scenario, users = env.unwrapped.scenario, env.unwrapped.geometry()["user_xy"]
        a3 = tr.algorithm3(scenario, users)
        joint = tr.joint_refinement(scenario, a3, users)
        rows.append({"seed": seed + i, "algorithm3_s": a3.wall_s, "joint_s": joint.wall_s,
                     "algorithm3_ee": a3.energy_efficiency, "joint_ee": joint.energy_efficiency})
        print(f"  layout seed {seed + i}: algorithm3 {a3.wall_s:6.2f} s  joint {joint.wall_s:6.2f} s", flush=True)
    env.close()
    out: dict[str, Any] = {"layouts": rows}
    print(f"Cai 2019 planners on {layouts} drawn layouts (random_users=True, seeds {seed}..{seed + layouts - 1}) "
          f"[s per layout]")
    for key in ("algorithm3_s", "joint_s"):
        v = np.array([r[key] for r in rows])
        out[key] = {"median": float(np.median(v)), "p90": float(np.percentile(v, 90)), "max": float(v.max()),
                    "mean": float(v.mean())}
        print(f"{key[:-2]:>20} median {out[key]['median']:7.3f}  p90 {out[key]['p90']:7.3f}  "
              f"max {out[key]['max']:7.3f}  mean {out[key]['mean']:7.3f}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print a table and write the JSON report; returns 0."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=50, help="seeded frames to time (default 50)")
    p.add_argument("--seed", type=int, default=0, help="seed of the frames (default 0)")
    p.add_argument("--restarts", type=int, default=100, help="EXH random starts (default 100)")
    p.add_argument("--repeats", type=int, default=5, help="repeats of the batched call (default 5)")
    p.add_argument("--uav-repeats", type=int, default=3,
                   help="runs of each Cai 2019 planner on the default scenario (default 3; 0 skips)")
    p.add_argument("--uav-layouts", type=int, default=10,
                   help="drawn UavSecureOfdma-v0 layouts to plan with Algorithm 3 and joint (default 10; 0 skips)")
    p.add_argument("--layout-seed", type=int, default=7_000_000,
                   help="reset seed of the first drawn layout (default 7000000, apart from training seeds)")
    p.add_argument("--out", type=Path, default=Path("runs/benchmarks/baselines_speed.json"))
    args = p.parse_args(argv)
    if args.frames < 1 or args.restarts < 1 or args.repeats < 1:
        p.error("--frames, --restarts and --repeats must be at least 1")
    if args.uav_repeats < 0 or args.uav_layouts < 0:
        p.error("--uav-repeats and --uav-layouts must be >= 0")
    minutes = (args.uav_repeats * 5 + args.uav_layouts * 5 + args.frames * args.restarts * 0.02) / 60
    print(f"baselines_speed: expected runtime about {minutes:.1f} min on 2 cores", flush=True)

    s = make_scenario("yang2019")
    gains, dist = draw_frames(s, args.frames, args.seed)
    n = args.frames
    one = [(gains[i:i + 1], dist[i:i + 1]) for i in range(n)]

    results = {
        "algorithm1": time_calls([lambda g=g, d=d: algorithm1(s, g, d) for g, d in one]),
        "exhaustive": time_calls([
            lambda i=i: exhaustive(s, gains[i], dist[i], np.random.default_rng([args.seed, i]),
                                       restarts=args.restarts) for i in range(n)]),
        "tdma": time_calls([lambda g=g, d=d: tdma(s, g, d) for g, d in one]),
        "algorithm1_batched": time_calls([lambda: algorithm1(s, gains, dist)] * args.repeats,
                                         per_call=n),
    }
    stats = {name: summary(ms) for name, ms in results.items()}
    ratio = stats["algorithm1"]["median_ms"] / TARGET_MS

    print(f"Yang 2019 baselines, default scenario (K={s.num_users}), {n} frames, seed {args.seed} "
          f"[ms per frame]")
    print(f"{'solver':>20} {'median':>9} {'p90':>9} {'mean':>9} {'samples':>8}")
    for name, st in stats.items():
        print(f"{name:>20} {st['median_ms']:9.3f} {st['p90_ms']:9.3f} {st['mean_ms']:9.3f} "
              f"{st['samples']:8d}")
    print(f"Algorithm 1 (single frame) median / {TARGET_MS:g} ms target = {ratio:.3f}")

    uav = uav_timings(args.uav_repeats) if args.uav_repeats > 0 else {}
    drawn = uav_layout_timings(args.uav_layouts, args.layout_seed) if args.uav_layouts > 0 else {}

    report = {
        "uav_cai2019_default": uav,
        "uav_cai2019_drawn_layouts": drawn,
        "frames": n, "seed": args.seed, "exh_restarts": args.restarts,
        "batch_repeats": args.repeats,
        "target_ms": TARGET_MS, "algorithm1_median_over_target": ratio,
        "scenario": asdict(s), "timings": stats,
        "env": {"python": platform.python_version(), "numpy": np.__version__,
                "machine": platform.machine(), "processor": platform.processor()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
