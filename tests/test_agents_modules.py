"""agents/ is split by concern: each module says what it owns, moved names still import from their
former module (the same objects), importing agents stays light, and runs.py never needs the trainer."""
from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: former module -> {name: new home}
MOVED = {
    "agents.training": {
        **{name: "agents.runs" for name in (
            "atomic_write_text", "RUN_FILE", "EPISODE_LOG", "SETTING_KEYS", "OPTIONAL_SETTING_KEYS", "BASELINE_KEYS",
            "RUN_OUTPUTS", "TRAINING_OUTPUTS", "FLAGS", "default_out_dir", "check_out_dir", "finished_run", "read_run",
            "write_run", "run_identity", "checkpoint_timesteps", "out_dir_conflict", "clear_run_outputs", "cut_logs")},
        "save_checkpoint": "agents.callbacks",
        **{name: "agents.plots" for name in (
            "RETURN_LABELS", "LearningCurve", "learning_curve", "robust_limits", "running_mean",
            "plot_learning_curve", "learning_curve_figure")},
    },
    "agents.evaluation": {name: "agents.plots" for name in (
        "TRAJECTORY_COLOURS", "TRAJECTORY_MARKERS", "TRAJECTORY_STYLES", "trajectory_figure", "plot_trajectories")},
    "agents.sweep": {name: "agents.plots" for name in ("plot_param", "param_label", "param_figure")},
}

MODULES = ["cli", "runs", "callbacks", "training", "evaluation", "plots", "factory", "encoders", "imitation",
           "refine", "sweep", "vec_adapter"]


@pytest.mark.parametrize("old", sorted(MOVED))
def test_moved_names_still_import_from_their_former_module(old: str) -> None:
    module = importlib.import_module(old)
    for name, home in MOVED[old].items():
        assert getattr(module, name) is getattr(importlib.import_module(home), name), (old, name)
    exported = getattr(module, "__all__", None)
    if exported is not None:
        assert set(MOVED[old]) <= set(exported)
        assert all(hasattr(module, name) for name in exported)


def test_every_module_has_a_docstring_and_the_package_lists_them() -> None:
    package_doc = importlib.import_module("agents").__doc__
    for name in MODULES:
        assert importlib.import_module(f"agents.{name}").__doc__, name
        assert f"agents.{name}`" in package_doc, name
    for folder in ("benchmark", "reproduce", "hyperparams", "sweeps"):
        assert f"agents.{folder}`" in package_doc or f"agents/{folder}/" in package_doc, folder


def test_runs_and_plots_import_no_trainer_and_agents_imports_no_heavy_library() -> None:
    for name in ("runs", "plots", "callbacks"):
        tree = ast.parse((ROOT / "agents" / f"{name}.py").read_text())
        top = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
        top |= {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
        assert not top & {"agents.training", "torch", "stable_baselines3", "matplotlib"}, (name, top)
    code = ("import sys, agents, agents.runs, agents.callbacks, agents.plots, agents.training, agents.sweep\n"
            "print(sorted(m for m in ('matplotlib', 'torch', 'stable_baselines3') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
