"""Plots a researcher would put in a paper (issue 13, point 12: trajectories.png and Fig. 3).

The figures are captured where the public writers save them (``Figure.savefig``) and checked for
what a reader needs: policies told apart by colour, start and destination shown, the legend off
the panels, panels that fill the figure and do not collide, every eavesdropper disc drawn in view
and above the paths.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle

from agents.evaluation import plot_trajectories
from baselines import BASELINES
from agents.reproduce import cai2019 as rc

UAV = "secure_env/UavSecureOfdma-v0"


class _Constant:
    """A stand-in agent of the velocity mode: the same velocity command every slot."""

    def __init__(self, action: tuple[float, float]) -> None:
        self.action = np.asarray(action, dtype=np.float32)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        return self.action, state


@pytest.fixture
def saved_figures(monkeypatch):
    """Every Figure saved during the test, in order (the file is still written)."""
    figures: list[Figure] = []
    original = Figure.savefig

    def capture(self, *args, **kwargs):
        figures.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", capture)
    return figures


def _overlap(a, b, tol: float = 1.0) -> bool:
    """Whether two display-space boxes overlap by more than ``tol`` pixels each way."""
    return min(a.x1, b.x1) - max(a.x0, b.x0) > tol and min(a.y1, b.y1) - max(a.y0, b.y0) > tol


def _legends(fig: Figure) -> list:
    return list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]


def _labelled_colours(ax, name: str) -> set[tuple[float, ...]]:
    """The colours of every artist of ``ax`` labelled ``name`` (lines and scatter points)."""
    colours: set[tuple[float, ...]] = set()
    for artist in [*ax.lines, *ax.collections]:
        if artist.get_label() != name:
            continue
        if isinstance(artist, Line2D):
            colours.add(tuple(np.round(to_rgba(artist.get_color()), 3)))
        else:
            colours.update(tuple(np.round(c, 3)) for c in artist.get_facecolors())
    return colours


def _map_axes(fig: Figure) -> list:
    """The axes with a trajectory map (those holding an eavesdropper disc)."""
    return [ax for ax in fig.axes if any(isinstance(p, Circle) for p in ax.patches)]


def _check_discs(ax, eve_xy, radius: float) -> None:
    discs = [p for p in ax.patches if isinstance(p, Circle)]
    assert len(discs) == 1
    disc = discs[0]
    np.testing.assert_allclose(disc.center, eve_xy)
    assert disc.radius == pytest.approx(max(radius, 1.0))
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    assert x0 <= eve_xy[0] - radius and eve_xy[0] + radius <= x1     # the whole disc in view
    assert y0 <= eve_xy[1] - radius and eve_xy[1] + radius <= y1
    assert disc.get_edgecolor()[3] >= 0.5 and disc.get_linewidth() > 0   # a visible rim, however small
    paths = [line for line in ax.lines if len(line.get_xdata()) > 2]
    assert disc.get_zorder() > max(line.get_zorder() for line in paths)   # not hidden under the paths


def _check_layout(fig: Figure, min_fill: float) -> None:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes]
    for a, b in itertools.combinations(boxes, 2):
        assert not _overlap(a, b), "two panels collide"
    legends = _legends(fig)
    assert legends, "no legend"
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax_box in boxes:                       # panels with their titles and labels
            assert not _overlap(box, ax_box), "the legend sits on a panel"
    width, height = fig.bbox.width, fig.bbox.height
    area = sum(ax.get_window_extent(renderer).width * ax.get_window_extent(renderer).height for ax in fig.axes)
    assert area / (width * height) >= min_fill, f"panels fill {area / (width * height):.0%} of the figure"


def test_trajectories_png_tells_policies_apart_and_keeps_the_legend_off_the_paths(saved_figures, tmp_path):
    policies = {"agent_a": _Constant((0.6, 0.3)), "agent_b": _Constant((0.5, -0.4)),
                "straight_line": BASELINES[UAV]["straight_line"]}
    path = plot_trajectories(policies, UAV, 1_000_000, tmp_path, action_mode="velocity", eve_radius_m=20.0)
    assert path is not None and path.exists()
    fig = saved_figures[-1]
    labels = {t.get_text() for legend in _legends(fig) for t in legend.get_texts()}
    assert set(policies) <= labels
    assert any("start" in t for t in labels) and any("destination" in t for t in labels)
    (ax,) = _map_axes(fig)
    colours = [_labelled_colours(ax, name) for name in policies]
    assert all(len(c) == 1 for c in colours), "a policy is drawn in more than one colour"
    assert len({next(iter(c)) for c in colours}) == len(policies), "two policies share a colour"
    _check_discs(ax, (500.0, 0.0), 20.0)
    _check_layout(fig, min_fill=0.45)


@pytest.fixture(scope="module")
def quick_runs():
    return {(r, 10.0): rc.solve(r, 10.0, quick=True) for r in rc.QUICK_RADII}


def test_fig3_panels_do_not_collide_and_show_every_eavesdropper_disc(saved_figures, tmp_path, quick_runs):
    radii = (rc.QUICK_RADII[0], rc.QUICK_RADII[-1])
    rc.fig3(quick_runs, radii, tmp_path, quick=True)
    assert (tmp_path / "fig3.png").exists()
    fig = saved_figures[-1]
    maps = _map_axes(fig)
    assert len(maps) == len(radii)
    for ax, r in zip(maps, radii):
        _check_discs(ax, rc.QUICK["eve_xy"], r)
        colours = [_labelled_colours(ax, name) for name in ("straight_line", "algorithm3", "joint")]
        assert all(len(c) == 1 for c in colours), "a scheme is drawn in more than one colour"
        assert len({next(iter(c)) for c in colours}) == 3, "two schemes share a colour"
    labels = {t.get_text() for legend in _legends(fig) for t in legend.get_texts()}
    assert any("start" in t for t in labels) and any("destination" in t for t in labels)
    _check_layout(fig, min_fill=0.45)
