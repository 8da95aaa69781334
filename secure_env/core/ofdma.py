"""Line-of-sight UAV air-to-ground links over OFDMA subcarriers (Cai et al. 2019 eqs. (1), (5)-(7), (9)).

The UAV at horizontal position q and altitude H reaches ground user w with power gain
h = beta0 / (H^2 + ||q - w||^2) (free-space LoS). Subcarrier i of bandwidth W carrying power p to
its user has rate W log2(1 + p h / (N0 W)). With gamma0 = beta0 / (N0 W) (m^2/W) the SNR is
p gamma0 / d^2. All functions broadcast over any batch shape.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def squared_distance_xy(dx: Any, dy: Any, altitude_m: float) -> Any:
    """d^2 = H^2 + dx^2 + dy^2 (m^2) from the horizontal offsets; floats or arrays."""
    return altitude_m * altitude_m + dx * dx + dy * dy


def squared_distance(uav_xy: ArrayLike, user_xy: ArrayLike, altitude_m: float) -> NDArray[np.float64]:
    """d^2 = H^2 + ||q - w||^2 (m^2); ``uav_xy`` (..., 2) against ``user_xy`` (K, 2) gives (..., K)."""
    q = np.asarray(uav_xy, dtype=np.float64)[..., None, :]
    diff = q - np.asarray(user_xy, dtype=np.float64)
    return squared_distance_xy(diff[..., 0], diff[..., 1], altitude_m)


def los_gain(uav_xy: ArrayLike, user_xy: ArrayLike, altitude_m: float, beta0: float) -> NDArray[np.float64]:
    """Channel power gain h = beta0 / d^2 of every user, shape (..., K) (eq. (6))."""
    return beta0 / squared_distance(uav_xy, user_xy, altitude_m)


def one_plus_snr(power_w: ArrayLike, snr_per_watt: ArrayLike) -> NDArray[np.float64]:
    """1 + p g, the argument of eq. (7)'s logarithm (g = h / (N0 W) the SNR per watt)."""
    x = np.asarray(power_w, dtype=np.float64) * np.asarray(snr_per_watt)
    x += 1.0                      # (in place: 1 + p g without a second array)
    return x


def rate_of_snr(one_plus_snr_: ArrayLike, subcarrier_hz: float) -> NDArray[np.float64]:
    """W log2(1 + SNR) in bit/s from :func:`one_plus_snr` (eq. (7))."""
    r = np.log2(one_plus_snr_)
    r *= subcarrier_hz            # (in place: W log2(.) without a second array)
    return r


def subcarrier_rate(power_w: ArrayLike, snr_per_watt: ArrayLike, subcarrier_hz: float) -> NDArray[np.float64]:
    """W log2(1 + p g) in bit/s, with g = h / (N0 W) the SNR per watt (eq. (7))."""
    return rate_of_snr(one_plus_snr(power_w, snr_per_watt), subcarrier_hz)


def total_power(transmit_w: Any, circuit_w: float, flight_w: Any) -> Any:
    """P_tot = sum of subcarrier powers + P_C + P_fly (eq. (5)), in W; floats stay floats, other
    inputs (lists, arrays) broadcast as arrays."""
    def arr(x: Any) -> Any:
        return x if isinstance(x, (float, np.ndarray)) else np.asarray(x, dtype=np.float64)

    return arr(transmit_w) + circuit_w + arr(flight_w)


def energy_efficiency(bits: ArrayLike, energy_j: ArrayLike, axis: int | None = None) -> NDArray[np.float64]:
    """Total bits over total energy (bits/J) along ``axis`` (eq. (9): a ratio of sums)."""
    return np.sum(bits, axis=axis) / np.sum(energy_j, axis=axis)


def energy_efficiency_scalar(bits: float, energy_j: float) -> float:
    """Eq. (9) for running totals already summed (Python floats): bits / energy."""
    return bits / energy_j
