"""Agents: training, scoring and figures over any policy (SB3 model or baseline).

Modules, one concern each (as Stable-Baselines3 splits ``common/``):

- :mod:`agents.cli`: command-line helpers shared by the scripts (one-line argparse errors, the Ray
  check).
- :mod:`agents.runs`: run folders, identity and resume: what a run writes where, ``run.json``
  (:func:`~agents.runs.read_run`, :func:`~agents.runs.write_run`), what makes a run the same run
  (:func:`~agents.runs.run_identity`), whether a folder can take it
  (:func:`~agents.runs.out_dir_conflict`), default folders, and how a killed run is resumed (its
  checkpoint's step count, :func:`~agents.runs.cut_logs` cutting the episode logs back to it).
- :mod:`agents.callbacks`: the SB3 callbacks of a training run (episode log, atomic checkpoints)
  and :func:`~agents.callbacks.save_checkpoint`.
- :mod:`agents.training`: what trains: :class:`~agents.training.TrainConfig`,
  :func:`~agents.training.prepare_run` (settings checked before anything starts; for a resume, the
  command checked against ``run.json``), :func:`~agents.training.train`,
  :class:`~agents.training.AgentPolicy`, :func:`~agents.training.effective_timesteps`.
- :mod:`agents.evaluation`: how a score is computed: running a policy on held-out seeds, the
  feasibility constraints, layout fingerprints, confidence intervals, the ranked scoreboard and its
  Markdown/JSON files, metric units and labels.
- :mod:`agents.plots`: every figure of a run or a sweep: learning curves, UAV trajectories, sweep
  plots (matplotlib imported only when drawing).
- :mod:`agents.factory`: SB3 algorithms from the per-env YAML hyperparameters (rl-zoo3 layout),
  their validation and policy keywords.
- :mod:`agents.encoders`: order-free features extractors (Deep Sets) for the set observation.
- :mod:`agents.imitation`: planner pretraining: behaviour cloning, DAgger, then RL fine-tuning.
- :mod:`agents.refine`: optimisation on top of a trained agent's flight (``python -m agents.refine``).
- :mod:`agents.sweep`: YAML grids of train + score cells on Ray, resumable, aggregated into
  ``sweep.md``/``sweep.json`` (the figures are :mod:`agents.plots`').
- :mod:`agents.vec_adapter`: the native vector envs behind SB3's ``VecEnv``.
- :mod:`agents.benchmark` (package): the benchmark protocol (suites, layouts, trials, statistics,
  report and its figures); ``python -m agents.benchmark``.
- :mod:`agents.reproduce` (package): the papers' figures regenerated from the baselines;
  ``python -m agents.reproduce``.
- ``agents/hyperparams/``: the per-algorithm hyperparameter YAML files (plus ``pretrain.yml`` and
  ``variants.yml``), read by :mod:`agents.factory` and :mod:`agents.imitation`.
- ``agents/sweeps/``: example sweep configs for :mod:`agents.sweep`.

Names moved between these modules stay importable from their former module (re-exported).
"""
from agents.evaluation import evaluate, format_scoreboard, held_out_seeds, scoreboard, write_scoreboard

__all__ = ["evaluate", "format_scoreboard", "held_out_seeds", "scoreboard", "write_scoreboard"]
