"""Every command of README.md runs as written (issue 13, point 1).

The commands are read from README.md itself (```bash blocks, and inline `python train.py ...`
spans in the prose and tables), so a README edit that breaks one fails here:

- ``python train.py ...`` in a ```bash block: run in README order in one fresh working directory
  (so the default run folders and the resume of an earlier run are met as a user meets them), with
  a small budget appended (later flags win: ``--timesteps``, ``--n-envs``, ``n_steps``,
  ``batch_size``, one held-out episode); a resume gets only ``--eval-episodes``/``--no-progress``,
  since it takes its settings from the run. Each must exit 0 and write the scoreboard (and for a
  training run the model and learning curve) of the env it names.
- inline ``python train.py ...`` (prose, the results table): run as written with ``--dry-run``
  (every flag, setting, env keyword and the run folder checked, nothing trained: each is a full
  training run of minutes); ``-m slow`` runs them too, with the budget.
- ``python train.py sweep ...``: run with ``--dry-run`` (the config is validated, nothing started);
  ``-m slow`` runs the local ones (no ``--address``: that needs a running cluster) for real and
  checks that every cell finished and the plot of each swept parameter was written.
- ``python -m MODULE ...`` and ``python SCRIPT.py ...`` (reproduction, benchmarks): their argument
  parser must accept the README's arguments (the work itself is not run: minutes each).
- ```python blocks: executed.

Not run (:data:`NOT_RUN`): ``python -m pytest`` (this suite), ``python3 -m venv .venv`` and the
prose's placeholder ``python train.py sweep CONFIG.yaml``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import re
import runpy
import shlex
import shutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: appended to every training command: a few rollouts on 2 envs, one held-out episode per policy
BUDGET = ["--timesteps", "128", "--n-envs", "2", "--hp", "n_steps=32", "--hp", "batch_size=64",
          "--eval-episodes", "1", "--no-progress"]
#: commands not run, and why
NOT_RUN = {"python -m pytest -q": "the test suite itself",
           "python3 -m venv .venv": "creates a virtual environment (the quick start's first step)",
           "python train.py sweep CONFIG.yaml": "CONFIG.yaml is a placeholder in the prose"}


def readme_commands(text: str) -> list[tuple[list[str], bool]]:
    """Every ``python ...`` command of the README's bash blocks (split at ``&&``, comments dropped)
    and inline ``python train.py ...`` spans, in order of appearance, without repeats; each with
    whether it sits in a bash block."""
    found: list[tuple[int, str, bool]] = []
    for block in re.finditer(r"^```(?:bash|sh|shell)\n(.*?)^```", text, re.S | re.M):
        for i, line in enumerate(block.group(1).splitlines()):
            segment: list[str] = []
            for word in [*shlex.split(line, comments=True), "&&"]:
                if word != "&&":
                    segment.append(word)
                    continue
                if segment[:1] in (["python"], ["python3"]):
                    found.append((block.start(1) + i, shlex.join(segment), True))
                segment = []
    for span in re.finditer(r"(?<!`)`(python3? train\.py[^`]*)`(?!`)", text):
        found.append((span.start(), span.group(1), False))
    unique: dict[str, bool] = {}
    for _, cmd, in_block in sorted(found):
        unique[cmd] = unique.get(cmd, False) or in_block
    return [(shlex.split(cmd), in_block) for cmd, in_block in unique.items()]


def _load_train():
    spec = importlib.util.spec_from_file_location("train_readme", ROOT / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Parsed(Exception):
    """Raised right after a script's argument parser accepted its arguments."""


def _parse_only(monkeypatch, runner, argv0: str, args: list[str]) -> None:
    """Run a script or module until its argparse parser has parsed ``args``, then stop."""
    original = argparse.ArgumentParser.parse_args

    def parse_and_stop(self, args=None, namespace=None):
        original(self, args, namespace)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_and_stop)
    monkeypatch.setattr(sys, "argv", [argv0, *args])
    with pytest.raises(_Parsed):
        runner()


def test_readme_lists_the_commands_this_test_knows():
    commands = readme_commands(README.read_text())
    cmds = [shlex.join(c) for c, _ in commands]
    assert "python train.py" in cmds                       # the quick start
    assert sum(c.startswith("python train.py") for c, in_block in zip(cmds, (b for _, b in commands))
               if in_block) >= 6
    assert any("--resume" in c for c in cmds) and any("--env-kw" in c for c in cmds)


def _run_readme(tmp_path: Path, monkeypatch, capsys, full_inline: bool) -> list[str]:
    """Run the README's commands (see the module docstring) in ``tmp_path``; returns those run."""
    commands = readme_commands(README.read_text())
    train = _load_train()
    monkeypatch.chdir(tmp_path)
    # the sweep configs the README names, where a command run from the repository root finds them
    shutil.copytree(ROOT / "agents" / "sweeps", tmp_path / "agents" / "sweeps")
    ran = []
    for words, in_block in commands:
        cmd = shlex.join(words)
        if cmd in NOT_RUN:
            continue
        if words[1:2] == ["train.py"]:
            args = words[2:]
            is_sweep = args[:1] == ["sweep"]
            dry = (is_sweep and (not full_inline or "--address" in args)) or not (in_block or full_inline)
            if dry:
                extra = ["--dry-run"]
            elif is_sweep:
                extra = []          # the example's own budget (a few minutes on 2 cores)
            elif "--resume" in args:
                extra = ["--eval-episodes", "1", "--no-progress"]
            elif "--baselines-only" in args:
                extra = ["--eval-episodes", "1"]
            else:
                extra = BUDGET
            try:
                code = train.main(args + extra)
            except SystemExit as exc:
                code = exc.code
            out, err = capsys.readouterr()
            assert code == 0, f"{cmd}: exit {code}: {err.strip()}"
            if dry:
                assert "dry run" in out, cmd
            elif is_sweep:
                done = re.search(r"(\d+) cells run, \d+ already done, 0 failed; .* wrote (\S+)/sweep\.json", out)
                assert done and int(done.group(1)) > 0, f"{cmd}\n{out[-2000:]}"
                config = yaml.safe_load((tmp_path / args[1]).read_text())
                for key in config["grid"]:
                    assert (Path(done.group(2)) / f"sweep_{key}.png").stat().st_size > 5000, cmd
            else:
                scores = re.search(r"^wrote (.+)/scores\.json and ", out, re.M)
                assert scores, f"{cmd}: no scoreboard written\n{out[-2000:]}"
                folder = Path(scores.group(1))
                board = json.loads((folder / "scores.json").read_text())
                if "--env" in args:
                    assert board["env_id"] == args[args.index("--env") + 1], cmd
                if "--resume" in args:
                    assert board["env_id"] == json.loads((folder / "run.json").read_text())["env_id"]
                if "--baselines-only" not in args:
                    assert (folder / "model.zip").is_file() and (folder / "learning_curve.png").is_file(), cmd
                    assert "ppo" in board["policies"], cmd
        elif words[1] == "-m":
            with monkeypatch.context() as m:
                _parse_only(m, lambda: runpy.run_module(words[2], run_name="__main__", alter_sys=True),
                            words[2], words[3:])
        elif words[1].endswith(".py"):
            with monkeypatch.context() as m:
                _parse_only(m, lambda: runpy.run_path(str(ROOT / words[1]), run_name="__main__"),
                            words[1], words[2:])
        else:
            pytest.fail(f"README command this test does not know how to check: {cmd}")
        ran.append(cmd)
    # README order: the resume found the run the command before it started (runs/ppo)
    assert json.loads((tmp_path / "runs" / "ppo" / "run.json").read_text())["env_id"] == "secure_env/QkdNoma-v0"
    return ran


def test_every_readme_command_runs_as_written(tmp_path, monkeypatch, capsys):
    ran = _run_readme(tmp_path, monkeypatch, capsys, full_inline=False)
    assert sum(c.startswith("python train.py") for c in ran) >= 6


@pytest.mark.slow
def test_every_readme_command_runs_as_written_including_the_inline_ones(tmp_path, monkeypatch, capsys):
    ran = _run_readme(tmp_path, monkeypatch, capsys, full_inline=True)
    assert sum(c.startswith("python train.py") for c in ran) >= 6
    assert any(c.startswith("python train.py sweep") and "--address" not in c for c in ran)


def test_readme_python_blocks_run():
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)
    assert blocks
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
