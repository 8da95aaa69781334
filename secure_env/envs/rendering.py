"""Matplotlib renderers of the envs' ``rgb_array`` frames (imported lazily: only ``render()`` needs
matplotlib).

Each env has a ``*_figure`` function that draws a frame as a matplotlib ``Figure`` (what the tests
check: labels with units, the legend off the map, everything in view) and a ``render_*`` function
that rasterises it to an RGB array.

Layout, the same for every frame of an env: a figure of fixed pixel size (a constant frame shape
for ``check_env`` and ``RecordVideo``; both sides multiples of 16, so video writers need not resize)
holding the map, its colour bar and, below the map, the legend, each in a fixed rectangle. The map
keeps 1 m as long on x as on y by widening its limits, never by moving its box, so the map does not
jump between the frames of a video. Its limits hold every user, the eavesdropper disc, start,
destination and the path so far, at least ``_PAD_PX`` pixels inside the edges. Each annotation
takes the first place around its point (up-right, up-left, ..., ``_PLACES``) where it stays inside
the map and covers no marker and no other annotation (else the place covering least).
"""
from __future__ import annotations

from typing import Any

import numpy as np

DPI = 80
#: margin (px) between anything drawn on the map and the map's edges
_PAD_PX = 16.0
#: offset (points) of an annotation from the point it names
_NOTE_OFFSET = 6.0


def _figure_to_rgb(fig: Any) -> np.ndarray:
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3])


def _canvas(width_px: int, height_px: int) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _rect(fig: Any, left: float, bottom: float, width: float, height: float) -> list[float]:
    """A rectangle given in pixels as the figure fractions ``add_axes`` takes."""
    w, h = fig.bbox.width, fig.bbox.height
    return [left / w, bottom / h, width / w, height / h]


def _fit_view(ax: Any, points: np.ndarray, pad_px: float = _PAD_PX) -> None:
    """Equal-aspect limits in which every point of ``points`` (n, 2) lies at least ``pad_px``
    pixels inside the axes' (fixed) box, the data centred."""
    fig = ax.figure
    box = ax.get_position()
    w_px, h_px = box.width * fig.bbox.width, box.height * fig.bbox.height
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.maximum(hi - lo, 1.0)
    scale = max(span[0] / (w_px - 2 * pad_px), span[1] / (h_px - 2 * pad_px))   # metres per pixel
    cx, cy = (lo + hi) / 2
    ax.set_xlim(cx - scale * w_px / 2, cx + scale * w_px / 2)
    ax.set_ylim(cy - scale * h_px / 2, cy + scale * h_px / 2)
    ax.set_aspect("equal", adjustable="datalim")     # already equal: keeps the box, as set


#: where an annotation may open from its point: (x sign, y sign, alignment), in order of preference:
#: the four corners, then the four sides
_PLACES = ((1, 1, "left", "bottom"), (-1, 1, "right", "bottom"), (1, -1, "left", "top"), (-1, -1, "right", "top"),
           (1, 0, "left", "center"), (-1, 0, "right", "center"), (0, 1, "center", "bottom"),
           (0, -1, "center", "top"))


def _boxes(ax: Any, points: np.ndarray, radius_px: float) -> np.ndarray:
    """Display-space boxes (n, 4: x0, y0, x1, y1) of markers of radius ``radius_px`` at ``points``."""
    xy = ax.transData.transform(np.asarray(points, dtype=np.float64).reshape(-1, 2))
    return np.hstack([xy - radius_px, xy + radius_px])


def _annotate(ax: Any, renderer: Any, notes: list[tuple[Any, str, dict[str, Any]]], obstacles: np.ndarray) -> None:
    """Annotate each (xy, text, style) of ``notes`` at the first place around its point (``_PLACES``)
    where the text stays inside the axes and covers none of the ``obstacles`` (display boxes of
    markers, (n, 4)) nor an earlier note; else where it covers the least of them."""
    inside = ax.get_window_extent(renderer)
    taken = [np.asarray(obstacles, dtype=np.float64).reshape(-1, 4)]
    for xy, text, kw in notes:
        style = dict(fontsize=7, zorder=6, bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
        style.update(kw)
        note = ax.annotate(text, tuple(float(v) for v in xy), xytext=(_NOTE_OFFSET, _NOTE_OFFSET),
                           textcoords="offset points", ha="left", va="bottom", **style)
        own = ax.transData.transform(np.asarray(xy, dtype=np.float64))
        others = np.vstack(taken)
        others = others[~np.all(np.isclose((others[:, :2] + others[:, 2:]) / 2, own), axis=1)]   # not its own marker
        places = []
        for sx, sy, ha, va in _PLACES:
            note.xyann = (sx * _NOTE_OFFSET, sy * _NOTE_OFFSET)
            note.set_horizontalalignment(ha)
            note.set_verticalalignment(va)
            b = note.get_window_extent(renderer)
            out = max(inside.x0 + 3 - b.x0, b.x1 - inside.x1 + 3, inside.y0 + 3 - b.y0, b.y1 - inside.y1 + 3, 0.0)
            w = np.clip(np.minimum(b.x1, others[:, 2]) - np.maximum(b.x0, others[:, 0]), 0.0, None)
            h = np.clip(np.minimum(b.y1, others[:, 3]) - np.maximum(b.y0, others[:, 1]), 0.0, None)
            places.append((1e9 * out + float(np.sum(w * h)), (sx, sy, ha, va), (b.x0, b.y0, b.x1, b.y1)))
            if places[-1][0] == 0.0:
                break
        _, (sx, sy, ha, va), box = min(places, key=lambda p: p[0])    # the first of the cheapest
        note.xyann = (sx * _NOTE_OFFSET, sy * _NOTE_OFFSET)
        note.set_horizontalalignment(ha)
        note.set_verticalalignment(va)
        taken.append(np.asarray(box, dtype=np.float64).reshape(1, 4))


# -- QkdNoma-v0 -----------------------------------------------------------------------------------
#: frame size (px) and, in px, the map, its colour bar and the top of the legend
QKD_SIZE = (480, 448)
_QKD_MAP = (62.0, 116.0, 300.0, 300.0)
_QKD_CBAR = (376.0, 116.0, 12.0, 300.0)
_QKD_LEGEND_TOP = 64.0


def qkd_noma_figure(scenario: Any, positions: np.ndarray, gains: np.ndarray, last: dict[str, Any] | None,
                    frame: int | None = None) -> Any:
    """The cell seen from above: base station at the centre, the users coloured by the channel gain
    (dB) of the frame the next action acts on, each annotated with its number and, once a frame
    was played (``last``), that frame's eps and power; the title gives the frame's minimal secure
    rate. ``frame``: frames played so far (in the title)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    fig = _canvas(*QKD_SIZE)
    ax = fig.add_axes(_rect(fig, *_QKD_MAP))
    cax = fig.add_axes(_rect(fig, *_QKD_CBAR))
    positions = np.asarray(positions, dtype=np.float64)
    half = scenario.area_m / 2
    _fit_view(ax, np.vstack([positions, [(-half, -half), (half, half)]]))
    ax.add_patch(Rectangle((-half, -half), 2 * half, 2 * half, fill=False, ec="0.55", ls="--", lw=0.8, zorder=1))
    ax.plot([0], [0], marker="^", color="k", markersize=11, ls="none", zorder=4)
    gain_db = 10 * np.log10(gains)
    sc = ax.scatter(positions[:, 0], positions[:, 1], c=gain_db, cmap="viridis", s=70, edgecolors="k",
                    linewidths=0.8, zorder=5)
    fig.colorbar(sc, cax=cax, label="channel gain, next frame (dB)")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.tick_params(labelsize=8)
    notes = []
    for k, xy in enumerate(positions):
        text = f"user {k + 1}"
        if last is not None:
            text += f"\neps = {last['eps'][k]:.3f}\np = {last['power_w'][k]:.2g} W"
        notes.append((xy, text, {}))
    _annotate(ax, fig.canvas.get_renderer(), notes, np.vstack([_boxes(ax, positions, 6.0), _boxes(ax, (0, 0), 8.0)]))
    done = "" if frame is None else f"frame {frame}/{scenario.frames_per_episode}: "
    if last is None:
        title = f"{done}no frame played yet"
    else:
        title = f"{done}min secure rate {last['min_secure_rate_bps'] / 1e6:.3f} Mbit/s"
    ax.set_title(title, fontsize=9)
    handles = [Line2D([], [], marker="^", color="k", markersize=9, ls="none", label="base station"),
               Line2D([], [], marker="o", color=sc.cmap(0.6), mec="k", markersize=8, ls="none",
                      label="users (colour: gain)"),
               Line2D([], [], color="0.55", ls="--", lw=0.8, label=f"cell ({scenario.area_m:g} m side)")]
    left, _, width, _ = _QKD_MAP
    fig.legend(handles=handles, loc="upper center", ncols=3, fontsize=8, handlelength=1.5, columnspacing=1.0,
               bbox_to_anchor=((left + width / 2) / QKD_SIZE[0], _QKD_LEGEND_TOP / QKD_SIZE[1]))
    return fig


def render_qkd_noma(scenario: Any, positions: np.ndarray, gains: np.ndarray,
                    last: dict[str, Any] | None, frame: int | None = None) -> np.ndarray:
    """:func:`qkd_noma_figure` as an RGB array (``QKD_SIZE``)."""
    return _figure_to_rgb(qkd_noma_figure(scenario, positions, gains, last, frame))


# -- UavSecureOfdma-v0 and QuantumUav-v0 ---------------------------------------------------------
UAV_SIZE = (640, 480)
_UAV_MAP = (66.0, 128.0, 456.0, 312.0)
_UAV_CBAR = (536.0, 128.0, 12.0, 312.0)
_UAV_LEGEND_TOP = 76.0


def uav_ofdma_figure(scenario: Any, users: np.ndarray, path: np.ndarray, tx_power: np.ndarray,
                     eves: np.ndarray | None = None, truth: np.ndarray | None = None) -> Any:
    """The mission seen from above: users (numbered), each eavesdropper's estimate and uncertainty
    disc (to scale; ``eves`` (J, 3), default the scenario's fixed discs) and, where ``truth`` (J, 2)
    is given, its true position (a small red dot), start and destination, the path so far with each
    slot's serving position coloured by that slot's transmit power, and the UAV now."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle, Patch

    fig = _canvas(*UAV_SIZE)
    ax = fig.add_axes(_rect(fig, *_UAV_MAP))
    cax = fig.add_axes(_rect(fig, *_UAV_CBAR))
    users = np.asarray(users, dtype=np.float64).reshape(-1, 2)
    path = np.asarray(path, dtype=np.float64).reshape(-1, 2)
    tx_power = np.asarray(tx_power, dtype=np.float64)
    discs = np.asarray(scenario.eavesdroppers if eves is None else eves, dtype=np.float64).reshape(-1, 3)
    radii = np.maximum(discs[:, 2], 1.0)
    _fit_view(ax, np.vstack([users, [scenario.start_xy, scenario.end_xy], discs[:, :2] - radii[:, None],
                             discs[:, :2] + radii[:, None], path]))

    norm = Normalize(0.0, scenario.peak_power_w)
    cmap = "plasma"
    disc_face, disc_edge = (0.84, 0.15, 0.16, 0.15), "tab:red"
    ax.plot(path[:, 0], path[:, 1], color="0.55", lw=1.0, zorder=2)
    for (x, y, _), r in zip(discs, radii):
        ax.add_patch(Circle((x, y), r, facecolor=disc_face, edgecolor=disc_edge, lw=1.2, zorder=2.5))
    ax.plot(discs[:, 0], discs[:, 1], marker="x", color="tab:red", markersize=7, mew=1.5, ls="none", zorder=4)
    if truth is not None:
        t = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
        ax.plot(t[:, 0], t[:, 1], marker=".", color="tab:red", markersize=5, ls="none", zorder=4)
    if len(tx_power):
        ax.scatter(path[1:, 0], path[1:, 1], c=tx_power, cmap=cmap, norm=norm, s=16, zorder=3)
    ax.scatter(users[:, 0], users[:, 1], marker="s", s=42, color="tab:blue", edgecolors="k", linewidths=0.6,
               zorder=5)
    ax.plot(*scenario.start_xy, marker="o", color="k", mfc="white", markersize=8, mew=1.5, ls="none", zorder=5)
    ax.plot(*scenario.end_xy, marker="*", color="k", markersize=12, ls="none", zorder=5)
    # the UAV now, hollow: the start or the destination under it stays visible
    ax.plot(*path[-1], marker="^", color="k", mfc="none", markersize=12, mew=1.6, ls="none", zorder=7)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, label="transmit power (W)")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.tick_params(labelsize=8)
    marks = np.vstack([_boxes(ax, users, 5.0), _boxes(ax, [scenario.start_xy, scenario.end_xy, *discs[:, :2], path[-1]],
                                                       7.0),
                       _boxes(ax, path[1:], 3.0)])
    many = len(discs) > 1
    notes = [(xy, f"user {k + 1}", {}) for k, xy in enumerate(users)] + [
        (d[:2], f"eavesdropper {j + 1}" if many else "eavesdropper", {"color": "tab:red"}) for j, d in enumerate(discs)]
    _annotate(ax, fig.canvas.get_renderer(), notes, marks)
    n = len(tx_power)
    if n:
        ax.set_title(f"slot {n}/{scenario.num_slots}: transmit power {tx_power[-1]:.3g} W", fontsize=9)
    else:
        ax.set_title(f"slot 0/{scenario.num_slots}: UAV at the start", fontsize=9)

    handles = [Line2D([], [], marker="s", color="tab:blue", mec="k", markersize=7, ls="none", label="users"),
               Line2D([], [], marker="o", color="k", mfc="white", markersize=7, mew=1.5, ls="none", label="start"),
               Line2D([], [], marker="*", color="k", markersize=10, ls="none", label="destination"),
               Line2D([], [], marker="x", color="tab:red", markersize=7, mew=1.5, ls="none",
                      label="eavesdropper estimate"),
               Patch(facecolor=disc_face, edgecolor=disc_edge,
                     label=(f"eavesdropper discs (J = {len(discs)})" if many
                            else f"eavesdropper disc (r_E = {discs[0, 2]:g} m)")),
               Line2D([], [], marker="^", color="k", mfc="none", markersize=9, mew=1.6, ls="none", label="UAV now"),
               Line2D([], [], color="0.55", lw=1.0, label="path"),
               Line2D([], [], marker="o", color=colormaps[cmap](0.6),
                      markersize=5, ls="none", label="serving position (colour: power)")]
    if truth is not None:
        handles.insert(5, Line2D([], [], marker=".", color="tab:red", markersize=7, ls="none",
                                 label="eavesdropper's true position"))
    fig.legend(handles=handles, loc="upper center", ncols=3, fontsize=8, handlelength=1.5, columnspacing=1.2,
               bbox_to_anchor=(0.5, _UAV_LEGEND_TOP / UAV_SIZE[1]))
    return fig


def render_uav_ofdma(scenario: Any, users: np.ndarray, path: np.ndarray, tx_power: np.ndarray,
                     eves: np.ndarray | None = None, truth: np.ndarray | None = None) -> np.ndarray:
    """:func:`uav_ofdma_figure` as an RGB array (``UAV_SIZE``)."""
    return _figure_to_rgb(uav_ofdma_figure(scenario, users, path, tx_power, eves, truth))
