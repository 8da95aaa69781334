"""Both papers joined (the UAV also opens every slot with a QKD phase per user): the baselines of
``secure_env/QuantumUav-v0``.

- :mod:`~baselines.quantum_uav.photons`: the best photon count of every user in every slot of a
  UAV plan (coarse grid + golden section, Dinkelbach on the secure energy efficiency);
- :mod:`~baselines.quantum_uav.policies`: the UAV planners of :mod:`baselines.cai2019` with those
  photon counts, as SB3-style policies.
"""
from baselines.quantum_uav.policies import Algorithm3QkdPolicy, RefinedQkdTrajectoryPolicy, StraightLineQkdPolicy

__all__ = ["Algorithm3QkdPolicy", "RefinedQkdTrajectoryPolicy", "StraightLineQkdPolicy"]
