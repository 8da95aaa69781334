"""Physical-layer secrecy against an eavesdropper known to lie in a disc (Cai et al. 2019, §2, §5, C7).

The eavesdropper is somewhere within ``radius`` of its estimated ground position. The worst case
for the legitimate link is the closest point of that disc to the UAV, so the minimum squared
UAV-eavesdropper distance is H^2 + ([||q - w_E|| - r_E]^+)^2 (closed form of the spec's §2). The SNR
leakage on a subcarrier carrying power p is Gamma = p beta0 / (N0 W d_E^2) (eq. (8)), and the
robust leakage constraint C7 (Gamma <= gamma_tol for every eavesdropper position) is the power cap
p <= gamma_tol N0 W d_E,min^2 / beta0. All functions broadcast over any batch shape.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def worst_case_eve_distance_sq_xy(dx: Any, dy: Any, radius_m: Any, altitude_m: float) -> Any:
    """H^2 + ([sqrt(dx^2 + dy^2) - r_E]^+)^2 for the horizontal offset (dx, dy) from UAV to w_E.

    Floats in give a float out (the single env's fast path); arrays broadcast.
    """
    gap = (dx * dx + dy * dy) ** 0.5 - radius_m
    gap = gap * (gap > 0.0)
    return altitude_m * altitude_m + gap * gap


def worst_case_eve_distance_sq(uav_xy: ArrayLike, eve_xy: ArrayLike, radius_m: ArrayLike,
                               altitude_m: float) -> NDArray[np.float64]:
    """Minimum squared 3-D distance (m^2) from the UAV to any point of the eavesdropper disc.

    ``uav_xy`` and ``eve_xy`` end in an axis of length 2 and broadcast; the result drops that axis.
    """
    diff = np.asarray(uav_xy, dtype=np.float64) - np.asarray(eve_xy, dtype=np.float64)
    return np.asarray(worst_case_eve_distance_sq_xy(diff[..., 0], diff[..., 1],
                                                    np.asarray(radius_m, dtype=np.float64), altitude_m))


def leakage_snr(power_w: ArrayLike, gamma0: float, eve_distance_sq: ArrayLike) -> Any:
    """SNR leaked to the eavesdropper, Gamma = p gamma0 / d_E^2, with gamma0 = beta0 / (N0 W) in m^2/W.

    Floats in give a float out; otherwise arrays broadcast.
    """
    if isinstance(power_w, float) and isinstance(eve_distance_sq, float):
        return power_w * gamma0 / eve_distance_sq
    return np.asarray(power_w, dtype=np.float64) * gamma0 / np.asarray(eve_distance_sq, dtype=np.float64)


def leakage_power_cap(gamma_tol: float, gamma0: float, eve_distance_sq: ArrayLike) -> Any:
    """Largest per-subcarrier power (W) whose leakage stays at gamma_tol: gamma_tol d_E^2 / gamma0.

    A float in gives a float out; otherwise arrays broadcast.
    """
    if isinstance(eve_distance_sq, float):
        return gamma_tol * eve_distance_sq / gamma0
    return gamma_tol * np.asarray(eve_distance_sq, dtype=np.float64) / gamma0
