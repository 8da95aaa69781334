"""Analytic baselines of the papers, as SB3-style policies, keyed by env id.

One package per paper, as Stable-Baselines3 gives each algorithm its folder:
:mod:`baselines.yang2019` (QkdNoma-v0), :mod:`baselines.cai2019` (UavSecureOfdma-v0) and
:mod:`baselines.quantum_uav` (QuantumUav-v0, both papers joined); :mod:`baselines.planner` holds
the planner contract they share.

``BASELINES[env_id][name]`` is a class; ``cls(env)`` gives a policy with
``predict(obs, state=None, episode_start=None, deterministic=True) -> (action, state)``.
A class may carry ``env_overrides``: scenario keywords its env must be built with.
``predict`` raises ``ValueError`` unless ``obs`` is the bound env's current observation (the
planner plans from that env's state); ``env`` may be one env or a ``DummyVecEnv`` /
``SyncVectorEnv`` (QkdNoma-v0 planners only): see :class:`baselines.planner.BoundEnvs`.
"""
from __future__ import annotations

from baselines.cai2019 import Algorithm3Policy, JointPolicy, StraightLinePolicy
from baselines.planner import BoundEnvs, Policy
from baselines.quantum_uav import Algorithm3QkdPolicy, StraightLineQkdPolicy
from baselines.yang2019 import Algorithm1Policy, ExhPolicy, TdmaPolicy

BASELINES: dict[str, dict[str, type]] = {
    "secure_env/QkdNoma-v0": {
        "algorithm1": Algorithm1Policy,
        "tdma": TdmaPolicy,
        "exh": ExhPolicy,
    },
    "secure_env/UavSecureOfdma-v0": {
        "algorithm3": Algorithm3Policy,
        "joint": JointPolicy,
        "straight_line": StraightLinePolicy,
    },
    "secure_env/QuantumUav-v0": {
        "algorithm3_qkd": Algorithm3QkdPolicy,
        "straight_line_qkd": StraightLineQkdPolicy,
    },
}

__all__ = ["BASELINES", "Algorithm1Policy", "BoundEnvs", "Algorithm3Policy", "Algorithm3QkdPolicy", "JointPolicy", "StraightLineQkdPolicy", "ExhPolicy", "Policy", "StraightLinePolicy", "TdmaPolicy"]
