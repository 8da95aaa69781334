"""Stage-2 data rates: NOMA with successive interference cancellation, and TDMA.

Arrays have users on the last axis and any leading batch axes. Users need not be sorted: the SIC
order (weakest decoded first, eq. (9) with h_1 <= ... <= h_K) is derived from the gains.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def sic_order(gains: ArrayLike) -> NDArray[np.intp]:
    """Indices sorting users by ascending channel gain (stable, so ties keep their index order)."""
    return np.argsort(np.asarray(gains), axis=-1, kind="stable")


def noma_rates(gains: ArrayLike, powers_w: ArrayLike, noise_w: float,
               bandwidth_hz: float) -> NDArray[np.float64]:
    """Achievable NOMA rates in bit/s, paper eq. (9).

    r_k = B log2(1 + h_k p_k / (h_k sum_{l stronger than k} p_l + sigma^2)): user k cancels the
    signals of all weaker users and sees the stronger users' signals as interference.
    """
    h = np.asarray(gains, dtype=np.float64)
    p = np.asarray(powers_w, dtype=np.float64)
    h, p = np.broadcast_arrays(h, p)
    order = sic_order(h)
    hs = np.take_along_axis(h, order, axis=-1)
    ps = np.take_along_axis(p, order, axis=-1)
    # power of users strictly stronger than k in the sorted order
    stronger = np.cumsum(ps[..., ::-1], axis=-1)[..., ::-1] - ps
    rs = bandwidth_hz * np.log2(1.0 + hs * ps / (hs * stronger + noise_w))
    rates = np.empty_like(rs)
    np.put_along_axis(rates, order, rs, axis=-1)
    return rates


def tdma_rates(gains: ArrayLike, time_share: ArrayLike, p_max_w: float, noise_w: float,
               bandwidth_hz: float) -> NDArray[np.float64]:
    """TDMA rates in bit/s averaged over the data period: user k sends alone at P_max for a share
    ``time_share[k]`` of it, r_k = share_k B log2(1 + h_k P_max / sigma^2)."""
    h = np.asarray(gains, dtype=np.float64)
    share = np.asarray(time_share, dtype=np.float64)
    return share * bandwidth_hz * np.log2(1.0 + h * p_max_w / noise_w)


def secure_rates(rates_bps: ArrayLike, error_rates: ArrayLike, data_time_s: ArrayLike,
                 frame_s: float) -> NDArray[np.float64]:
    """Average secure rate, paper eq. (10): R_k = (t_{K+1} / T) (1 - e_k) r_k.

    ``data_time_s`` has the batch shape (no user axis); negative data time counts as zero.
    """
    frac = np.maximum(np.asarray(data_time_s, dtype=np.float64), 0.0)[..., None] / frame_s
    return frac * (1.0 - np.asarray(error_rates, dtype=np.float64)) * np.asarray(rates_bps)
