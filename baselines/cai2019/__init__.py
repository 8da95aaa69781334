"""Cai et al. 2019 (a rotary-wing UAV serves K users over OFDMA with an eavesdropper in a known
disc; energy efficiency): the baselines of ``secure_env/UavSecureOfdma-v0``.

- :mod:`~baselines.cai2019.power`: sub-problem 1, power and subcarrier scheduling on a fixed
  trajectory (Dinkelbach + dual decomposition, the paper's Algorithm 1);
- :mod:`~baselines.cai2019.trajectory`: sub-problem 2, trajectory and velocity for fixed power
  (SCA, the spec's Algorithm 2), Algorithm 3 (the two alternated) and the joint refinement
  (beyond the paper);
- :mod:`~baselines.cai2019.policies`: the straight line, Algorithm 3 and joint as SB3-style
  policies;
- :mod:`~baselines.cai2019.refine`: Algorithm 3 and the joint refinement started from any flight
  (e.g. an agent's).
"""
from baselines.cai2019.policies import Algorithm3Policy, JointPolicy, StraightLinePolicy
from baselines.cai2019.refine import RefinedTrajectoryPolicy

__all__ = ["Algorithm3Policy", "JointPolicy", "RefinedTrajectoryPolicy", "StraightLinePolicy"]
