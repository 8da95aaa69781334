"""Env steps per second beside gymnasium's Pendulum-v1 measured in the same run (no assertions).

Usage::

    PYTHONPATH=. python benchmarks/env_speed.py [--steps 20000] [--repeats 3] [--mode-pairs 6] [--seed 0] [--modes-only]
                                                [--out runs/benchmarks/env_speed.json]

For every registered ``secure_env`` id and for Pendulum-v1 (and CartPole-v1) it builds the env with
``gym.make`` (so the default wrappers are included for everyone), presamples ``--steps`` actions from
the action space, and times ``step`` over them with ``time.perf_counter`` (``reset`` when an episode
ends is included, as in training). Each figure is the best of ``--repeats`` runs, interleaved so
that machine noise hits all envs alike. For UavSecureOfdma-v0 it also times, at batch 1:

- ``core``: the core functions one env step calls (decode, projection, power cap, slot outcome),
  without the env's bookkeeping (observation, info, reward);
- ``bare numpy``: a lean in-place numpy version of the same slot on preallocated arrays, the floor
  that an env step built on numpy cannot beat (it skips validation, projections of the velocity
  onto the acceleration disc and all bookkeeping).

It prints steps/s, the ratio to Pendulum-v1 and, for the UAV env, the ratio to the bare-numpy
floor. Then, for B in ``--batches`` (default 1, 64, 1024), it measures env-steps/s of gymnasium's
SyncVectorEnv (B single envs in a Python loop) and of the native vector env
(``vector_entry_point``) for every id and for CartPole-v1 (gymnasium's own CartPoleVectorEnv),
plus the UAV numpy floor at batch B (the core calls alone). Last, every action mode of the two
UAV envs with the safety layer off and on (``--modes-only`` runs just that table), with the layer's
share of a step as the median and range of paired repeats, and writes all of it as JSON
(``env_speed.json``, or ``env_speed_modes.json`` for ``--modes-only``). It prints its expected
runtime first (about 15 min with the defaults on a quiet 2-core machine; ``--modes-only`` about 2).
Last, issue 19's targets beside what the run measured (learnable modes as a ratio to Pendulum-v1,
the target steps/s over the 84k Pendulum-v1 made on its machine; native / sync at B = 256, full
and velocity mode).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))   # sibling helper module
from report import machine, write_report  # noqa: E402

try:
    import secure_env
except ModuleNotFoundError:  # run as a plain script without PYTHONPATH: use the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import secure_env
from secure_env.core import uav_ofdma as model

REFERENCE_IDS = ("Pendulum-v1", "CartPole-v1")
UAV_ID = "secure_env/UavSecureOfdma-v0"


def env_loop(env_id: str, steps: int, seed: int, **env_kwargs: Any) -> Callable[[], float]:
    """A timed loop over ``steps`` presampled actions; returns a callable giving steps/s."""
    env = gym.make(env_id, **env_kwargs)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]

    def run() -> float:
        env.reset(seed=seed)
        t0 = time.perf_counter()
        for a in actions:
            _, _, term, trunc, _ = env.step(a)
            if term or trunc:
                env.reset()
        return steps / (time.perf_counter() - t0)

    return run


def uav_core_loop(steps: int, seed: int) -> Callable[[], float]:
    """The core calls of one UavSecureOfdma-v0 step at batch 1, without the env shell."""
    env = gym.make(UAV_ID).unwrapped
    c = env.constants
    users = env.geometry()["user_xy"]
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps, env.action_space.shape[0])).astype(np.float32)

    def run() -> float:
        qx = qy = vx = vy = 0.0
        t0 = time.perf_counter()
        for i, a in enumerate(actions):
            cx, cy, _, power, user = model.decode_parts(a, c)
            vx, vy, _ = model.project_velocity_xy(cx, cy, vx, vy, i > 0, c.v_max_mps, c.dv_max_mps)
            speed = math.hypot(vx, vy)
            power, p_fly, _ = model.cap_transmit_power(power, speed, c)
            qx, qy = qx + c.slot_s * vx, qy + c.slot_s * vy
            model.slot_outcome_xy(qx, qy, speed, power, user, users, c, flight_w=p_fly)
        return steps / (time.perf_counter() - t0)

    return run


def uav_bare_numpy_loop(steps: int, seed: int) -> Callable[[], float]:
    """A lean numpy slot at batch 1 on preallocated arrays (the floor; see the module docstring)."""
    env = gym.make(UAV_ID).unwrapped
    c = env.constants
    nf, k = c.num_subcarriers, c.num_users
    ux, uy = env.geometry()["user_xy"].T.copy()
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps, env.action_space.shape[0]))
    w = np.empty(nf)
    snr = np.empty(nf)
    uf = np.empty(nf)
    ui = np.empty(nf, dtype=np.intp)
    g = np.empty(k)
    tmp = np.empty(k)
    rot = c.rotor
    h2 = c.altitude_m ** 2
    ex, ey, r_e = c.eve_discs[0]     # the one disc of the env it mirrors

    def run() -> float:
        qx = qy = 0.0
        t0 = time.perf_counter()
        for a in actions:
            vx, vy = c.v_max_mps * a[0], c.v_max_mps * a[1]
            n = math.hypot(vx, vy)
            if n > c.v_max_mps:
                vx, vy = vx * c.v_max_mps / n, vy * c.v_max_mps / n
            qx += c.slot_s * vx
            qy += c.slot_s * vy
            v2 = vx * vx + vy * vy
            p_fly = (rot.profile_power_w * (1 + 3 * v2 / rot.tip_speed_mps ** 2)
                     + rot.induced_power_w * math.sqrt(math.sqrt(1 + v2 * v2 / (4 * rot.induced_velocity_mps ** 4))
                                                       - v2 / (2 * rot.induced_velocity_mps ** 2))
                     + rot.parasite_coeff * v2 * math.sqrt(v2))
            total = c.peak_power_w * 0.5 * (a[2] + 1)
            np.add(a[3:3 + nf], 1.0, out=w)
            np.multiply(w, total / w.sum(), out=w)
            np.subtract(ux, qx, out=g)
            np.multiply(g, g, out=g)
            np.subtract(uy, qy, out=tmp)
            np.multiply(tmp, tmp, out=tmp)
            np.add(g, tmp, out=g)
            np.add(g, h2, out=g)
            np.divide(c.gamma0, g, out=g)
            np.add(a[3 + nf:], 1.0, out=uf)
            np.multiply(uf, 0.5 * k, out=uf)
            np.minimum(uf, k - 1, out=uf)
            ui[:] = uf
            np.take(g, ui, out=snr)
            np.multiply(snr, w, out=snr)
            np.add(snr, 1.0, out=snr)
            np.log2(snr, out=snr)
            bits = np.bincount(ui, snr, k)
            bits *= c.subcarrier_hz * c.slot_s
            gap = max(math.hypot(qx - ex, qy - ey) - r_e, 0.0)
            _leak = w.max() * c.gamma0 / (h2 + gap * gap)
            _energy = c.slot_s * (total + c.circuit_power_w + p_fly)
        return steps / (time.perf_counter() - t0)

    return run


def vector_loop(env_id: str, num_envs: int, mode: str, steps: int, seed: int,
                **env_kwargs: Any) -> Callable[[], float]:
    """Env-steps/s of ``gym.make_vec`` in ``mode`` ("sync" or "vector_entry_point") over presampled
    batched actions (autoresets included)."""
    venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, **env_kwargs)
    venv.action_space.seed(seed)
    actions = [venv.action_space.sample() for _ in range(steps)]

    def run() -> float:
        venv.reset(seed=seed)
        t0 = time.perf_counter()
        for a in actions:
            venv.step(a)
        return steps * num_envs / (time.perf_counter() - t0)

    return run


def uav_core_batch_loop(num_envs: int, steps: int, seed: int) -> Callable[[], float]:
    """The numpy floor at batch B: the core calls of one UavSecureOfdma-v0 step on arrays (decode,
    projection, power cap, slot outcome), with no env shell (observation, info, autoreset)."""
    env = gym.make(UAV_ID).unwrapped
    c = env.constants
    users = np.broadcast_to(env.geometry()["user_xy"], (num_envs, c.num_users, 2)).copy()
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps, num_envs, env.action_space.shape[0])).astype(np.float32)

    def run() -> float:
        qx, qy, vx, vy = (np.zeros(num_envs) for _ in range(4))
        first = np.zeros(num_envs, dtype=bool)
        t0 = time.perf_counter()
        for a in actions:
            cx, cy, _, power, user = model.decode_parts(a, c)
            vx, vy, _ = model.project_velocity_xy(cx, cy, vx, vy, first, c.v_max_mps, c.dv_max_mps)
            speed = np.sqrt(vx * vx + vy * vy)
            power, p_fly, _ = model.cap_transmit_power(power, speed, c)
            qx, qy = qx + c.slot_s * vx, qy + c.slot_s * vy
            model.slot_outcome_xy(qx, qy, speed, power, user, users, c, flight_w=p_fly)
            first = ~first | first
        return steps * num_envs / (time.perf_counter() - t0)

    return run


#: the vector table's rows: (label, env id, env keywords); the UAV ids also in the velocity mode
#: their tuned agents train in
VECTOR_ROWS = [("CartPole-v1", "CartPole-v1", {})] + [(env_id, env_id, {}) for env_id in secure_env.ENV_IDS] + [
    (f"{env_id} velocity", env_id, {"action_mode": "velocity"})
    for env_id in ("secure_env/UavSecureOfdma-v0", "secure_env/QuantumUav-v0")]


def vector_table(batches: tuple[int, ...], seed: int, budget_steps: int, repeats: int) -> list[dict[str, Any]]:
    """SyncVectorEnv vs the native vector env (and CartPoleVectorEnv, and the UAV numpy floor)."""
    rows = []
    loops: dict[tuple[str, str, int], Callable[[], float]] = {}
    for b in batches:
        n_native = max(5, budget_steps // b)
        n_sync = max(3, budget_steps // (20 * b))
        for label, env_id, kw in VECTOR_ROWS:
            loops[(label, "native", b)] = vector_loop(env_id, b, "vector_entry_point", n_native, seed, **kw)
            loops[(label, "sync", b)] = vector_loop(env_id, b, "sync", n_sync, seed, **kw)
        loops[(UAV_ID, "numpy floor", b)] = uav_core_batch_loop(b, n_native, seed)
    best = {key: 0.0 for key in loops}
    for _ in range(repeats):
        for key, loop in loops.items():
            best[key] = max(best[key], loop())
    print(f"\n{'env':<41} {'B':>5} {'sync':>11} {'native':>11} {'native/sync':>12} {'floor':>11} {'native/floor':>13}")
    for b in batches:
        for label, _, _ in VECTOR_ROWS:
            sync, native = best[(label, "sync", b)], best[(label, "native", b)]
            floor = best.get((label, "numpy floor", b), math.nan)
            rows.append({"env": label, "batch": b, "sync_env_steps_per_s": sync,
                         "native_env_steps_per_s": native, "native_over_sync": native / sync,
                         "numpy_floor_env_steps_per_s": floor, "native_over_floor": native / floor})
            print(f"{label:<41} {b:>5} {sync:>11.0f} {native:>11.0f} {native / sync:>12.2f} "
                  f"{'' if math.isnan(floor) else f'{floor:.0f}':>11} "
                  f"{'' if math.isnan(floor) else f'{native / floor:.2f}':>13}")
    return rows


#: issue 19's targets, as measured on its 2-core machine (Pendulum-v1 about 84k steps/s there):
#: single-env steps/s as a ratio to Pendulum-v1 in the same run, native / SyncVectorEnv at B = 256
PENDULUM_REFERENCE = 84_000.0
SINGLE_TARGETS = [("secure_env/UavSecureOfdma-v0", "velocity", 10_000.0),
                  ("secure_env/UavSecureOfdma-v0", "compact", 10_000.0),
                  ("secure_env/QuantumUav-v0", "velocity", 6_000.0),
                  ("secure_env/QuantumUav-v0", "compact", 6_000.0)]
VECTOR_TARGETS = [("secure_env/UavSecureOfdma-v0", 12.0), ("secure_env/UavSecureOfdma-v0 velocity", 10.0),
                  ("secure_env/QuantumUav-v0", 12.0), ("secure_env/QuantumUav-v0 velocity", 10.0)]


def target_table(pendulum: float, mode_rows: list[dict[str, Any]],
                 vector_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target beside what this run measured: learnable modes (safety layer on, their default)
    as a ratio to Pendulum-v1 against target / 84k, native / sync at B = 256."""
    rows = []
    print(f"\n{'target':<58} {'wanted':>9} {'measured':>9}  met")
    for env_id, mode, want in SINGLE_TARGETS:
        got = next((r["safety_on_steps_per_s"] for r in mode_rows
                    if r["env"] == env_id and r["action_mode"] == mode), None)
        if got is None:
            continue
        rows.append({"target": f"{env_id} {mode} / Pendulum-v1", "wanted": want / PENDULUM_REFERENCE,
                     "measured": got / pendulum})
    for label, want in VECTOR_TARGETS:
        got = next((r["native_over_sync"] for r in vector_rows if r["env"] == label and r["batch"] == 256), None)
        if got is not None:
            rows.append({"target": f"{label} native / sync at B = 256", "wanted": want, "measured": got})
    for r in rows:
        r["met"] = r["measured"] >= r["wanted"]
        print(f"{r['target']:<58} {r['wanted']:>9.3f} {r['measured']:>9.3f}  {'yes' if r['met'] else 'NO'}")
    return rows


def mode_table(steps: int, seed: int, repeats: int) -> list[dict[str, Any]]:
    """Single-env steps/s of every action mode of the UAV envs with the safety layer off and on
    (random actions from the action space, so the layer's homing acts often) and the share of a
    step the layer costs, 1 - t_off / t_on.

    Off and on run back to back in every repeat, so each repeat gives one paired share; the table
    reports their median and range (min..max). Machine noise makes a single pair's share negative
    now and then (the layer only adds work): a median at or below zero is printed as "< noise"
    and stored as 0 with the raw median beside it, never as a negative cost."""
    loops: dict[tuple[str, str, bool], Callable[[], float]] = {}
    for env_id in ("secure_env/UavSecureOfdma-v0", "secure_env/QuantumUav-v0"):
        for mode in ("full", "compact", "velocity"):
            for safety in (False, True):
                loops[(env_id, mode, safety)] = env_loop(env_id, steps, seed, action_mode=mode, safety_layer=safety)
    rates: dict[tuple[str, str, bool], list[float]] = {key: [] for key in loops}
    for _ in range(repeats):
        for key, loop in loops.items():
            rates[key].append(loop())
    rows = []
    print(f"\n{'env':<30} {'action_mode':<10} {'safety off':>11} {'safety on':>11} "
          f"{'layer share of a step: median (min..max over ' + str(repeats) + ' pairs)':>50}")
    for env_id in ("secure_env/UavSecureOfdma-v0", "secure_env/QuantumUav-v0"):
        for mode in ("full", "compact", "velocity"):
            off_r, on_r = np.array(rates[(env_id, mode, False)]), np.array(rates[(env_id, mode, True)])
            shares = 1.0 - on_r / off_r                    # per pair: (t_on - t_off) / t_on
            median = float(np.median(shares))
            share = max(median, 0.0)
            off, on = float(off_r.max()), float(on_r.max())
            rows.append({"env": env_id, "action_mode": mode, "safety_off_steps_per_s": off,
                         "safety_on_steps_per_s": on, "safety_share_of_step": share,
                         "safety_share_median_raw": median, "safety_share_min": float(shares.min()),
                         "safety_share_max": float(shares.max()), "pairs": int(len(shares))})
            text = f"{share:.3f}" if median > 0 else "< noise"
            print(f"{env_id:<30} {mode:<10} {off:>11.0f} {on:>11.0f} "
                  f"{text + f' ({shares.min():+.3f}..{shares.max():+.3f})':>50}")
    return rows


def expected_minutes(steps: int, repeats: int, mode_pairs: int, batches: tuple[int, ...], vector_steps: int,
                     modes_only: bool) -> float:
    """A rough runtime forecast on a quiet 2-core machine of this kind (measured at 8dc7543: 0.2 min
    per 20k-step repeat of the single-env table, 0.3 min per 10k-step pair of the mode table,
    about 1 min per batch size and repeat of the vector table; a loaded machine takes up to twice
    as long), printed at start so nobody waits without knowing for how long."""
    single = 0.2 * repeats * steps / 20000
    modes = 0.3 * mode_pairs * steps / 20000
    vector = 1.0 * repeats * len(batches) * vector_steps / 40000
    return modes if modes_only else single + modes + vector


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mode-pairs", type=int, default=6,
                        help="paired (safety off, on) repeats of --steps/2 steps for the action-mode table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batches", default="1,64,256,1024", help="vector batch sizes (comma separated)")
    parser.add_argument("--vector-steps", type=int, default=40000,
                        help="env-steps per native vector measurement (sync uses 1/20 of it)")
    parser.add_argument("--out", default=None,
                        help="JSON report (default runs/benchmarks/env_speed.json, or env_speed_modes.json "
                             "with --modes-only: one file per way of running, never one over the other)")
    parser.add_argument("--modes-only", action="store_true",
                        help="only the action-mode / safety-layer table of the UAV envs")
    args = parser.parse_args(argv)
    for name in ("steps", "repeats", "vector_steps", "mode_pairs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    batches = tuple(int(x) for x in args.batches.split(",") if x.strip())
    if args.out is None:
        args.out = f"runs/benchmarks/env_speed{'_modes' if args.modes_only else ''}.json"
    minutes = expected_minutes(args.steps, args.repeats, args.mode_pairs, batches, args.vector_steps, args.modes_only)
    print(f"env_speed: expected runtime about {minutes:.1f} min "
          f"on 2 cores ({args.repeats} repeats of {args.steps} steps, {args.mode_pairs} mode pairs; "
          f"--steps/--repeats/--modes-only make it shorter)",
          flush=True)
    if args.modes_only:
        steps = max(args.steps // 2, 1)
        pendulum_loop = env_loop("Pendulum-v1", steps, args.seed)
        pendulum = max(pendulum_loop() for _ in range(args.mode_pairs))
        mode_rows = mode_table(steps, args.seed, args.mode_pairs)
        pendulum = max(pendulum, *(pendulum_loop() for _ in range(args.mode_pairs)))   # before and after
        print(f"\nPendulum-v1 {pendulum:.0f} steps/s (best of {2 * args.mode_pairs}, before and after the table)")
        result = {"steps": steps, "mode_pairs": args.mode_pairs, **machine(), "gymnasium": gym.__version__,
                  "pendulum_steps_per_s": pendulum, "mode_rows": mode_rows,
                  "targets": target_table(pendulum, mode_rows, [])}
        write_report(result, args.out)
        return result

    loops: dict[str, Callable[[], float]] = {}
    for env_id in REFERENCE_IDS + secure_env.ENV_IDS:
        loops[env_id] = env_loop(env_id, args.steps, args.seed)
    loops[UAV_ID + " core (batch 1)"] = uav_core_loop(args.steps, args.seed)
    loops[UAV_ID + " bare numpy (batch 1)"] = uav_bare_numpy_loop(args.steps, args.seed)
    best = {name: 0.0 for name in loops}
    for _ in range(args.repeats):
        for name, loop in loops.items():
            best[name] = max(best[name], loop())

    pendulum = best["Pendulum-v1"]
    floor = best[UAV_ID + " bare numpy (batch 1)"]
    rows = []
    print(f"{'env':<52} {'steps/s':>10} {'/ Pendulum':>11} {'/ bare numpy':>13}")
    for name, rate in best.items():
        ratio_floor = rate / floor if name.startswith(UAV_ID) else math.nan
        rows.append({"name": name, "steps_per_s": rate, "ratio_to_pendulum": rate / pendulum,
                     "ratio_to_bare_numpy": ratio_floor})
        print(f"{name:<52} {rate:>10.0f} {rate / pendulum:>11.3f} "
              f"{'' if math.isnan(ratio_floor) else f'{ratio_floor:.3f}':>13}")
    vector_rows = vector_table(batches, args.seed, args.vector_steps, args.repeats) if batches else []
    mode_rows = mode_table(max(args.steps // 2, 1), args.seed, args.mode_pairs)
    targets = target_table(pendulum, mode_rows, vector_rows)
    result = {"steps": args.steps, "repeats": args.repeats, "mode_pairs": args.mode_pairs, **machine(),
              "gymnasium": gym.__version__, "targets": targets,
              "rows": rows, "vector_rows": vector_rows, "mode_rows": mode_rows}
    write_report(result, args.out)
    return result


if __name__ == "__main__":
    main()
