"""EXH, the paper's exhaustive benchmark: Algorithm 1 from many random starts, best kept."""
from __future__ import annotations

from typing import Any

import numpy as np

from secure_env.core import qkd_noma as model

from baselines.yang2019.algorithm1 import DEFAULT_EPS0, Plan, algorithm1
from baselines.yang2019.theorems import Array


def exhaustive(scenario: Any, gains: Array, distances: Array, rng: np.random.Generator,
               restarts: int = 100) -> Plan:
    """EXH: Algorithm 1 from ``restarts`` random starts (eps log-uniform in [EPS_MIN, 1]) plus the
    default start, best kept. Single frame (gains (K,)); the starts run as one batch."""
    k = gains.shape[-1]
    starts = np.power(10.0, rng.uniform(np.log10(model.EPS_MIN), 0.0, size=(restarts, k)))
    starts = np.concatenate([np.full((1, k), DEFAULT_EPS0), starts], axis=0)
    plans = algorithm1(scenario, np.broadcast_to(gains, starts.shape),
                       np.broadcast_to(distances, starts.shape), eps0=starts)
    i = int(np.argmax(plans.objective_bps))  # ties keep the default start (index 0)
    return Plan(eps=plans.eps[i], split=plans.split[i], objective_bps=plans.objective_bps[i],
                history=[h[i] for h in plans.history])
