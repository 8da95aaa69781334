"""benchmarks/planner_sensitivity.py: flags checked before any planning, one JSON that names the
command, the unmoved plan equal to the planners' own, and the moves seeded per layout."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import gymnasium as gym
import pytest

import secure_env  # noqa: F401
from baselines.cai2019 import trajectory as tr

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("planner_sensitivity", ROOT / "benchmarks" / "planner_sensitivity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("args, word", [(["--copies", "0"], "--copies"), (["--delta-m", "nan"], "--delta-m"),
                                        (["--delta-m", "-1"], "--delta-m"), (["--seeds", "-3"], "--seeds"),
                                        (["--out", "."], "--out")])
def test_bad_flags_are_one_line_errors_before_planning(args, word, capsys, monkeypatch):
    monkeypatch.setattr(tr, "algorithm3", lambda *a, **k: pytest.fail("planned despite a bad flag"))
    with pytest.raises(SystemExit) as exc:
        _script().main(args)
    assert exc.value.code == 2
    assert word in capsys.readouterr().err.strip().splitlines()[-1]


def test_one_layout_report(tmp_path, capsys):
    out = tmp_path / "sens.json"
    module = _script()
    assert module.main(["--seeds", "7000000", "--copies", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["command"].endswith("--seeds 7000000 --copies 1 --out " + str(out))
    (layout,) = report["layouts"]
    exact, moved = layout["plans"]
    assert not exact["moved"] and moved["moved"]
    env = gym.make("secure_env/UavSecureOfdma-v0", random_users=True)
    env.reset(seed=7000000)
    a3 = tr.algorithm3(env.unwrapped.scenario, env.unwrapped.geometry()["user_xy"])
    assert exact["algorithm3_ee"] == a3.energy_efficiency
    assert layout["algorithm3_spread"] == pytest.approx(
        max(exact["algorithm3_ee"], moved["algorithm3_ee"]) / min(exact["algorithm3_ee"], moved["algorithm3_ee"]) - 1)
    # the moves are drawn per layout: the same layout gives the same moved plan in another run
    again = module.layout_spread(7000000, 1, 1e-6, 123)
    assert again["plans"][1]["algorithm3_ee"] == moved["algorithm3_ee"]
