"""QuantumUav-v0: the UAV base station that also runs QKD with every user at the start of each slot;
the single env and its native vector env."""
from __future__ import annotations

from typing import Any

import numpy as np

from secure_env.core import quantum_uav as qmodel
from secure_env.envs.uav_ofdma import UavSecureOfdmaEnv, UavSecureOfdmaVectorEnv
from secure_env.scenarios import QuantumUavScenario, scenario_from


class QuantumUavEnv(UavSecureOfdmaEnv):
    """UavSecureOfdma-v0 with a QKD phase per user opening every slot (both papers joined).

    ## Description
    Everything of :class:`~secure_env.envs.uav_ofdma.UavSecureOfdmaEnv` (flight, OFDMA, leakage,
    limits), plus: in slot n, after moving to q[n], the UAV runs QKD with each user k in turn for
    t_k[n] = d_k[n] / c * ceil(8 m / eps_k[n]^2) (Yang et al. eq. (8); d_k[n] is the 3-D UAV-user
    distance, so flying closer shortens the key exchange), then sends data for the rest of the
    slot, tau - sum_k t_k[n] (negative: no data, flagged and penalised). User k's secure bits are
    (1 - e_k(eps_k[n])) * data time * its OFDMA rate, with the error rate e_k of eq. (4). Energy of
    a slot: tau (P_C + P_fly) + data time * P_tx + sum_k t_k * P_QKD (``qkd_source_power_w``,
    default 0). With ``qkd_enabled=False`` there is no QKD phase and e_k = 0: the env is then
    UavSecureOfdma-v0 step for step (the extra action entries are ignored).

    ## Action space
    The UAV part of the ``action_mode`` (see UavSecureOfdma-v0), then, in the "full" and
    "compact" modes, one entry per user for its QKD time budget tau 10^(6 (a_k - 1) / 2) (6
    decades below the slot): n = 3 + 2 N_F + K ("full"), 3 + 2K ("compact"), 2 ("velocity"). The
    env runs the most photon pairs that fit the budget, N_k = max(floor(budget c / d_k), 8 m),
    i.e. the smallest eps_k = sqrt(8 m / N_k) whose QKD time fits (eps_k = 1 if even 8 m pairs do
    not fit the budget; the phase then takes its minimum time).
    :func:`secure_env.core.quantum_uav.encode_qkd_action` is the inverse of the budget coding. In
    the "velocity" mode the rule also picks every served user's photon count,
    :func:`secure_env.core.quantum_uav.rule_photons` (the best of 64 log-spaced counts for
    (tau - t(N)) (1 - e(N))), and 8 m for users without a subcarrier. The safety layer also scales
    the budgets down to fit in the slot and gives a user behind its R_min pace at least the rule's
    QKD phase; the pace guard counts secure bits.

    ## Observation space
    As UavSecureOfdma-v0, in both ``observation_mode`` ("flat" and "set"; the QKD time follows from
    the distances the observation gives); delivered bits and the pace debt count secure bits.

    ## Reward
    As UavSecureOfdma-v0 with secure bits in place of bits: (SEE_n - SEE_{n-1}) / 1000 minus the
    penalties, SEE_n the secure bits over the energy of slots 1..n; a QKD overrun adds
    ``leakage_penalty * overrun / tau``; the R_min penalty applies to the mission-average secure
    rate. Undiscounted, the return is the mission's secure energy efficiency in kbit/J minus the
    penalties.

    ## Starting state, episode end
    As UavSecureOfdma-v0.

    ## Info
    As UavSecureOfdma-v0 plus ``qkd_time_s`` (K,), ``basis_prob`` (K,), ``key_error_rate`` (K,),
    ``data_time_s``, ``secure_bits``, ``secure_bits_per_user`` (K,), ``qkd_overrun_s`` (also in
    ``cost``); at the end ``episode_metrics`` adds ``secure_energy_efficiency_bits_per_joule`` (the
    headline metric), ``qkd_overrun_slots`` and ``mean_key_error_rate`` (weighted by the data bits each key protects). ``bits`` and
    ``energy_efficiency_bits_per_joule`` count every data bit; ``min_rate_shortfall_bps`` and
    ``min_user_rate_bps`` refer to secure rates.

    ## Arguments
    Every keyword of UavSecureOfdma-v0 plus ``photons_m`` (10), ``alpha_beta`` (0.5),
    ``light_speed_mps`` (3e8), ``qkd_source_power_w`` (0) and ``qkd_enabled`` (True); see
    :class:`~secure_env.scenarios.QuantumUavScenario`.
    """

    primary_metric = "secure_energy_efficiency_bits_per_joule"

    def __init__(self, render_mode: str | None = None,
                 scenario: str | QuantumUavScenario | dict[str, Any] | None = None,
                 **overrides: Any) -> None:
        s = scenario_from(scenario or "quantum_uav", "quantum_uav", overrides)
        if not isinstance(s, QuantumUavScenario):
            raise ValueError(f"scenario must be a quantum_uav (QuantumUavScenario) scenario, got {type(s).__name__}")
        super().__init__(render_mode=render_mode, scenario=s)

    def _reset_state(self) -> None:
        super()._reset_state()
        self._overrun_slots = 0
        self._err_bits = 0.0

    def _slot_extra(self, qkd_budget_s: np.ndarray | None, qx: float, qy: float,
                    out: dict[str, Any], qkd_phase: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        res = qmodel.play_qkd_slot(self.scenario, self.constants, qkd_budget_s, qx, qy, self._users, out,
                                   phase=qkd_phase)
        self._overrun_slots += res["info"]["qkd_overrun_s"] > 0.0
        self._err_bits += res["key_error_bits"]
        return res

    def _episode_extra(self, secure_ee: float) -> dict[str, float]:
        return {"secure_energy_efficiency_bits_per_joule": secure_ee,
                "qkd_overrun_slots": float(self._overrun_slots),
                "mean_key_error_rate": self._err_bits / self._bits if self._bits > 0 else 0.0}


class QuantumUavVectorEnv(UavSecureOfdmaVectorEnv):
    """B copies of :class:`~secure_env.envs.quantum_uav.QuantumUavEnv` in one set of arrays."""

    single_env_cls = QuantumUavEnv

    def _allocate(self) -> None:
        super()._allocate()
        self._overrun_slots = np.zeros(self.num_envs, dtype=np.int64)
        self._err_bits = np.zeros(self.num_envs)

    def _clear(self, idx: np.ndarray) -> None:
        super()._clear(idx)
        self._overrun_slots[idx] = 0
        self._err_bits[idx] = 0.0

    def _extra_physics(self, c: Any, users: np.ndarray, qkd_budget_s: np.ndarray | None, qx: np.ndarray,
                       qy: np.ndarray, out: dict[str, Any],
                       qkd_phase: dict[str, np.ndarray] | None) -> dict[str, Any]:
        return qmodel.play_qkd_slot(self.scenario, c, qkd_budget_s, qx, qy, users, out, phase=qkd_phase)

    def _extra_book(self, res: dict[str, Any]) -> dict[str, Any]:
        self._overrun_slots += res["info"]["qkd_overrun_s"] > 0.0
        self._err_bits += res["key_error_bits"]
        return res

    def _episode_extra(self, ee: np.ndarray) -> dict[str, np.ndarray]:
        return {"secure_energy_efficiency_bits_per_joule": ee.copy(),
                "qkd_overrun_slots": self._overrun_slots.astype(np.float64),
                "mean_key_error_rate": np.where(self._bits > 0, self._err_bits / np.maximum(self._bits, 1e-300), 0.0)}
