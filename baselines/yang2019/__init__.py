"""Yang et al. 2019 (QKD key exchange, then NOMA data; max-min secure rate): the baselines of
``secure_env/QkdNoma-v0``.

- :mod:`~baselines.yang2019.theorems`: Theorems 1 and 2 (corrected) and the search over the data
  time t_{K+1} for fixed powers;
- :mod:`~baselines.yang2019.algorithm1`: Algorithm 1 (the two theorems alternated) and
  :class:`~baselines.yang2019.algorithm1.Plan`;
- :mod:`~baselines.yang2019.exh`: EXH, Algorithm 1 from many random starts;
- :mod:`~baselines.yang2019.tdma`: the TDMA benchmark, solved exactly;
- :mod:`~baselines.yang2019.policies`: the three as SB3-style policies.

All solvers are batched over leading axes (frames or restarts) and use the corrected Theorems 1-2
of ``docs/models/qkd_noma.md``. Every objective value they compare is evaluated by
:func:`secure_env.core.qkd_noma.play_frame`, the same function the env steps with.
"""
from baselines.yang2019.policies import Algorithm1Policy, ExhPolicy, TdmaPolicy

__all__ = ["Algorithm1Policy", "ExhPolicy", "TdmaPolicy"]
