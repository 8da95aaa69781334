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
