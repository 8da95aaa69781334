"""Scoring integrity: feasible policies rank first, violation rates, decision time, layouts, stats."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from agents.evaluation import (RMIN_REL_TOL, best_baseline, count_layouts, evaluate, feasibility,
                               format_scoreboard, held_out_seeds, layout_fingerprint, rank_policies,
                               run_policy, scoreboard, score_records, write_scoreboard)
from baselines import BASELINES
from secure_env.core import uav_ofdma as model

UAV = "secure_env/UavSecureOfdma-v0"
EE = "energy_efficiency_bits_per_joule"
OK = {"leakage_violations": 0.0, "power_violations": 0.0, "min_rate_shortfall_bps": 0.0,
      "min_user_rate_bps": 2e4, "destination_reached": 1.0}


class FullPowerStraightLine:
    """Flies the straight line q0 -> qF at peak power spread over every subcarrier (users round
    robin), ignoring the leakage cap: more bits per joule than the baseline, but it leaks."""

    def bind(self, env):
        base = env.unwrapped
        s, c = base.scenario, base.constants
        _, vel = model.straight_line(s.start_xy, s.end_xy, s.num_slots, s.slot_s)
        nf = c.num_subcarriers
        power = np.full((s.num_slots, nf), c.peak_power_w / nf)
        user = np.tile(np.arange(nf) % c.num_users, (s.num_slots, 1))
        self.env, self.actions = base, model.encode_action(vel, power, user, c)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        return self.actions[self.env.slot_index], state


def _row(mean: float, feasible: bool, kind: str = "agent") -> dict:
    return {"kind": kind, "feasible": feasible, "metrics": {EE: {"mean": mean, "ci95": 0.0, "n": 1}}}


# -- pure functions on synthetic records ----------------------------------------------------------
def test_rank_policies_puts_every_feasible_row_above_every_infeasible_one():
    rows = {"leaky": _row(9.0, False), "ok_low": _row(1.0, True), "nan": _row(math.nan, True),
            "ok_high": _row(2.0, True), "leaky_low": _row(0.5, False)}
    assert rank_policies(rows, EE) == ["ok_high", "ok_low", "nan", "leaky", "leaky_low"]


def test_best_baseline_is_the_best_feasible_one_else_the_best():
    rows = {"a3": _row(3.0, False, "baseline"), "sl": _row(1.0, True, "baseline"),
            "agent": _row(5.0, True)}
    assert best_baseline(rows, EE) == ("sl", True)
    rows["sl"]["feasible"] = False
    assert best_baseline(rows, EE) == ("a3", False)
    assert best_baseline({"agent": _row(5.0, True)}, EE) == (None, False)


def test_feasibility_counts_each_constraint_on_hand_made_records():
    r_min = 1e4
    recs = [
        dict(OK),                                                          # clean
        {**OK, "leakage_violations": 3.0},                                 # leaks
        {**OK, "leakage_violations": 1.0, "destination_reached": 0.0},     # leaks and misses q_F
        {**OK, "min_rate_shortfall_bps": 0.5 * RMIN_REL_TOL * r_min,       # within the tolerance
         "min_user_rate_bps": r_min * (1 - 0.5 * RMIN_REL_TOL)},
        {**OK, "min_rate_shortfall_bps": 2 * RMIN_REL_TOL * r_min,         # beyond it
         "min_user_rate_bps": r_min * (1 - 2 * RMIN_REL_TOL)},
        {**OK, "power_violations": math.nan},                              # NaN counts as violated
    ]
    f = feasibility(recs)
    assert not f["feasible"]
    assert f["violation_rate"] == pytest.approx(4 / 6)
    assert f["violation_rates"] == pytest.approx({"leakage": 2 / 6, "power": 1 / 6, "r_min": 1 / 6,
                                                  "destination": 1 / 6})
    assert f["constraints"] == ["leakage", "power", "r_min", "destination"]  # absent keys unchecked
    assert feasibility([recs[0], recs[3]])["feasible"]
    qkd = feasibility([{**OK, "qkd_overrun_slots": 0.0}, {**OK, "qkd_overrun_slots": 2.0}])
    assert qkd["violation_rates"]["qkd_overrun"] == 0.5 and not qkd["feasible"]
    noma = feasibility([{"mean_min_secure_rate_bps": 1.0, "infeasible_frames": 0.0}] * 3)
    assert noma == {"feasible": True, "violation_rate": 0.0, "violation_rates": {"infeasible_frames": 0.0},
                    "constraints": ["infeasible_frames"]}
    assert not feasibility([])["feasible"]


def test_layouts_fingerprint_user_xy_and_count_unreported_episodes_as_distinct():
    users = np.array([[10.0, 20.0], [30.0, -0.0]])
    fp = layout_fingerprint({"user_xy": users})
    assert fp == layout_fingerprint({"user_xy": users + 1e-9, "position_m": np.ones(2)})  # rounded
    assert fp != layout_fingerprint({"user_xy": users[::-1]})
    assert layout_fingerprint({"position_m": np.zeros(2)}) is None
    assert count_layouts([{"seed": s, "layout": fp} for s in range(4)]) == 1
    assert count_layouts([{"seed": s, "layout": None} for s in range(4)]) == 4
    row = score_records([{"seed": s, "layout": fp, EE: 1.0 + s, "decision_time_s": 0.1, **OK}
                         for s in range(3)])
    assert row["layouts"] == 1 and math.isnan(row["metrics"][EE]["ci95"])


# -- the real env ---------------------------------------------------------------------------------
def test_infeasible_policy_with_higher_ee_ranks_below_the_feasible_straight_line(tmp_path):
    board = scoreboard({"full_power": FullPowerStraightLine(), "straight_line": BASELINES[UAV]["straight_line"]},
                       UAV, held_out_seeds(2), baseline_names=["straight_line"])
    leaky, line = board["policies"]["full_power"], board["policies"]["straight_line"]
    assert leaky["metrics"][EE]["mean"] > 1.2 * line["metrics"][EE]["mean"]  # it really scores higher
    assert line["feasible"] and line["violation_rate"] == 0.0
    assert not leaky["feasible"] and leaky["violation_rate"] == 1.0
    assert leaky["violation_rates"]["leakage"] == 1.0
    assert min(r["leakage_violations"] for r in leaky["episodes"]) > 0  # read from the env's info
    assert board["ranking"] == ["straight_line", "full_power"]
    assert board["ratio_reference"] == {"policy": "straight_line", "feasible": True}
    assert leaky["ratio_to_best_baseline"] > 1.2
    md = format_scoreboard(board)
    assert "| 1 | straight_line | baseline | yes |" in md
    assert "| 2 | full_power | agent | **no** |" in md
    assert "Infeasible (ranked below every feasible policy): full_power (leakage in 100% of episodes" in md
    json_path, md_path = write_scoreboard(board, tmp_path)
    loaded = json.loads(json_path.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert loaded["ranking"] == board["ranking"] and loaded["policies"]["full_power"]["feasible"] is False
    assert md_path.read_text() == md + "\n"


class SlowPolicy:
    """Sleeps 30 ms when built and 2 ms per decision, so its decision time has a known floor."""

    stats_template = {"plans": 0.0, "solver_retries": 0.0}

    def __init__(self, env):
        time.sleep(0.03)
        self.env = env.unwrapped
        self.stats = dict(self.stats_template)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        if self.env.slot_index == 0:
            self.stats["plans"] += 1
        time.sleep(0.002)
        return np.zeros(self.env.action_space.shape, dtype=np.float32), state


def test_decision_time_counts_binding_and_every_predict_call():
    t0 = time.perf_counter()
    run = run_policy(SlowPolicy, UAV, [1, 2], num_slots=5, end_xy=(100.0, 0.0))
    wall = time.perf_counter() - t0
    first, second = (r["decision_time_s"] for r in run.records)
    assert first >= 0.03 + 5 * 0.002 and 5 * 0.002 <= second < first
    assert first + second < wall
    assert isinstance(run.policy, SlowPolicy) and run.policy.stats["plans"] == 2
    line = evaluate(BASELINES[UAV]["straight_line"], UAV, [1])[0]
    assert line["decision_time_s"] > 0 and line["layout"] is not None


def test_policy_stats_are_copied_and_non_zero_ones_shown():
    board = scoreboard({"slow": SlowPolicy}, UAV, held_out_seeds(2), num_slots=5, end_xy=(100.0, 0.0))
    row = board["policies"]["slow"]
    assert row["policy_stats"] == {"plans": 2.0, "solver_retries": 0.0}
    assert row["decision_time_s"]["max"] >= 0.03 and row["decision_time_s"]["total"] >= 0.03 + 10 * 0.002
    md = format_scoreboard(board)
    assert "- slow: plans 2" in md and "solver_retries" not in md
    assert not row["feasible"]  # hovering at q0 never reaches q_F
    assert "destination in 100% of episodes" in md


def test_fixed_layout_board_says_one_layout_and_prints_no_ci():
    board = scoreboard({"straight_line": BASELINES[UAV]["straight_line"]}, UAV, held_out_seeds(3),
                       baseline_names=["straight_line"])
    assert board["layouts"] == 1 and board["policies"]["straight_line"]["layouts"] == 1
    assert math.isnan(board["policies"]["straight_line"]["metrics"][EE]["ci95"])
    md = format_scoreboard(board)
    assert "All 3 episodes are one layout (fixed users); no confidence interval." in md
    assert "n/a (1 layout)" in md and "±" not in md


def test_random_users_board_counts_every_drawn_layout():
    board = scoreboard({"straight_line": BASELINES[UAV]["straight_line"]}, UAV, held_out_seeds(3),
                       baseline_names=["straight_line"], random_users=True)
    row = board["policies"]["straight_line"]
    assert board["layouts"] == 3 and row["layouts"] == 3
    assert len({r["layout"] for r in row["episodes"]}) == 3
    assert row["metrics"][EE]["ci95"] > 0
    md = format_scoreboard(board)
    assert "3 distinct layouts over 3 episodes." in md and "n/a (1 layout)" not in md and "±" in md
