"""Matplotlib renderers returning RGB arrays (imported lazily: only ``render()`` needs matplotlib)."""
from __future__ import annotations

from typing import Any

import numpy as np


def _figure_to_rgb(fig: Any) -> np.ndarray:
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3])


def render_qkd_noma(scenario: Any, positions: np.ndarray, gains: np.ndarray,
                    last: dict[str, Any] | None) -> np.ndarray:
    """Base station, users (colour = channel gain in dB) and the last frame's eps and powers."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    half = scenario.area_m / 2
    ax.set_xlim(-half, half)
    ax.set_ylim(-half, half)
    ax.set_aspect("equal")
    ax.plot([0], [0], marker="^", color="k", markersize=12, label="base station")
    sc = ax.scatter(positions[:, 0], positions[:, 1], c=10 * np.log10(gains), cmap="viridis", s=80,
                    label="users")
    fig.colorbar(sc, ax=ax, label="channel gain (dB)", shrink=0.8)
    if last is not None:
        for k, (x, y) in enumerate(positions):
            ax.annotate(f"eps={last['eps'][k]:.3f}\np={last['power_w'][k]:.2g} W",
                        (x, y), textcoords="offset points", xytext=(6, 6), fontsize=7)
        ax.set_title(f"min secure rate {last['min_secure_rate_bps'] / 1e6:.3f} Mbit/s")
    ax.legend(loc="lower left", fontsize=7)
    return _figure_to_rgb(fig)


def render_uav_ofdma(scenario: Any, users: np.ndarray, path: np.ndarray, tx_power: np.ndarray) -> np.ndarray:
    """Users, the eavesdropper's uncertainty disc, start/end, and the path so far coloured by the
    transmit power of each slot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    fig = Figure(figsize=(6, 4.5), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    pts = np.vstack([users, [scenario.eve_xy, scenario.start_xy, scenario.end_xy], path])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = 0.1 * float(max(hi - lo)) + scenario.eve_radius_m + 10.0
    ax.set_xlim(lo[0] - pad, hi[0] + pad)
    ax.set_ylim(lo[1] - pad, hi[1] + pad)
    ax.set_aspect("equal")
    ax.add_patch(Circle(scenario.eve_xy, max(scenario.eve_radius_m, 1.0), color="tab:red", alpha=0.2,
                        label="eavesdropper region"))
    ax.plot(*scenario.eve_xy, marker="x", color="tab:red")
    ax.scatter(users[:, 0], users[:, 1], marker="s", color="tab:blue", label="users")
    ax.plot(*scenario.start_xy, marker="o", color="k", label="start")
    ax.plot(*scenario.end_xy, marker="*", color="k", markersize=12, label="end")
    ax.plot(path[:, 0], path[:, 1], color="0.6", lw=1)
    if len(tx_power):
        sc = ax.scatter(path[1:, 0], path[1:, 1], c=tx_power, cmap="plasma", s=18,
                        vmin=0.0, vmax=scenario.peak_power_w, zorder=3)
        fig.colorbar(sc, ax=ax, label="transmit power (W)", shrink=0.8)
        ax.set_title(f"slot {len(tx_power)}/{scenario.num_slots}, power {tx_power[-1]:.3g} W")
    ax.legend(loc="lower left", fontsize=7)
    return _figure_to_rgb(fig)
