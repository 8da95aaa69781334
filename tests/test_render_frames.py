"""``render()`` frames and videos a reader can use on their own (issue 18).

- Every ``rgb_array`` frame is drawn from a matplotlib Figure (``secure_env.envs.rendering``); the
  tests capture that Figure where it is rasterised and check, in display coordinates: axis labels
  in words with a unit in parentheses; the legend off the map (no overlap with any marker,
  annotation, trajectory point, the disc, nor any axes with its labels); every user (with its
  annotation), the eavesdropper disc, start, destination and the path inside the view. On the
  paper layouts, drawn layouts (``random_users=True``; QkdNoma always draws its users) and a large
  eavesdropper radius (``eve_radius_m=150``); the frame shape is one per env.
- ``gymnasium.wrappers.RecordVideo`` writes every rendered frame, in order (moviepy's
  ``ImageSequenceClip`` drops and duplicates frames at some fps: see ``test_render_fps_...``).
- Fig. 2 of ``python -m agents.reproduce cai2019`` keeps its legend off the curves.
"""
from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle
from matplotlib.text import Annotation

import secure_env  # noqa: F401  (registers the envs)
from secure_env.envs import rendering
from test_plots import _check_layout, _legends, _overlap, saved_figures  # noqa: F401  (a fixture)

QKD = "secure_env/QkdNoma-v0"
UAV = "secure_env/UavSecureOfdma-v0"
QUAV = "secure_env/QuantumUav-v0"
UAV_IDS = (UAV, QUAV)
ENV_IDS = (QKD, UAV, QUAV)

#: layouts drawn per env: the paper's, drawn users, a large eavesdropper disc
LAYOUTS: dict[str, dict[str, dict[str, Any]]] = {
    QKD: {"paper": {}, "four users": {"num_users": 4}},
    **{env_id: {"paper": {}, "drawn": {"random_users": True}, "paper, r_E 150 m": {"eve_radius_m": 150.0},
                "drawn, r_E 150 m": {"random_users": True, "eve_radius_m": 150.0}} for env_id in UAV_IDS},
}
#: the docs' QuantumUav frame: "north at full speed" (velocity mode, safety layer) for the whole
#: episode, a path far from the users (the old legend, lower left, covered its first points)
NORTH = "velocity mode, north at full speed"
for _env_id in UAV_IDS:
    LAYOUTS[_env_id][NORTH] = {"action_mode": "velocity"}
CASES = [(env_id, name, seed) for env_id in ENV_IDS for name in LAYOUTS[env_id]
         for seed in ((0, 1, 2, 3, 4, 5, 8) if env_id == QKD else (0,) if name == NORTH else (0, 1))]
#: "word(s) (unit)": a label with its unit in parentheses
UNIT_LABEL = re.compile(r"[A-Za-z].*\s\([^()\s][^()]*\)")


@pytest.fixture
def frames(monkeypatch) -> list[tuple[Figure, np.ndarray]]:
    """Every (Figure, RGB frame) the renderers rasterise during the test, in order."""
    captured: list[tuple[Figure, np.ndarray]] = []
    original = rendering._figure_to_rgb

    def capture(fig: Figure) -> np.ndarray:
        rgb = original(fig)
        captured.append((fig, rgb))
        return rgb

    monkeypatch.setattr(rendering, "_figure_to_rgb", capture)
    return captured


# -- what a frame must show ---------------------------------------------------------------------
def _map_axes(fig: Figure) -> Any:
    (ax,) = [a for a in fig.axes if not hasattr(a, "_colorbar")]   # the map: every axes but colour bars
    return ax


def _px(fig: Figure, points: float) -> float:
    return points * fig.dpi / 72.0


def _point_boxes(ax: Any) -> list[tuple[str, Any]]:
    """A display-space box around every marker and every vertex of every line (the trajectory) of
    ``ax``: (what, box)."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    out: list[tuple[str, Any]] = []
    for line in ax.lines:
        xy = line.get_transform().transform(np.column_stack([line.get_xdata(), line.get_ydata()]))
        has_marker = line.get_marker() not in (None, "None", "none", "", " ")
        r = _px(fig, line.get_markersize() / 2 + line.get_markeredgewidth() / 2) if has_marker else 1.0
        out += [(f"line {line.get_label()!r}", Bbox([[x - r, y - r], [x + r, y + r]])) for x, y in xy]
    for coll in ax.collections:
        if not isinstance(coll, PathCollection):
            continue
        xy = coll.get_offset_transform().transform(coll.get_offsets())
        sizes = coll.get_sizes()
        for j, (x, y) in enumerate(xy):
            r = _px(fig, np.sqrt(sizes[j % len(sizes)] if len(sizes) else 36.0) / 2)
            out.append((f"marker {coll.get_label()!r}", Bbox([[x - r, y - r], [x + r, y + r]])))
    return out


def _check_labels(fig: Figure) -> None:
    ax = _map_axes(fig)
    assert UNIT_LABEL.search(ax.get_xlabel()), f"x label without a unit: {ax.get_xlabel()!r}"
    assert UNIT_LABEL.search(ax.get_ylabel()), f"y label without a unit: {ax.get_ylabel()!r}"


def _check_legend(fig: Figure) -> None:
    """One legend, inside the figure, overlapping no marker, path vertex, annotation or disc of the
    map, nor any axes (the map, the colour bar) with its ticks, labels and title."""
    renderer = fig.canvas.get_renderer()     # the figure was drawn when rasterised
    ax = _map_axes(fig)
    legends = _legends(fig)
    assert len(legends) == 1, "one legend"
    legend = legends[0]
    lbox = legend.get_window_extent(renderer)
    for what, box in _point_boxes(ax):
        assert not _overlap(lbox, box), f"the legend covers a {what} point"
    for text in ax.texts:
        assert not _overlap(lbox, text.get_window_extent(renderer)), f"the legend covers the text {text.get_text()!r}"
    for patch in ax.patches:
        assert not _overlap(lbox, patch.get_window_extent(renderer)), "the legend covers the eavesdropper disc"
    for a in fig.axes:
        extra = [x for x in a.get_default_bbox_extra_artists() if x is not legend]
        assert not _overlap(lbox, a.get_tightbbox(renderer, bbox_extra_artists=extra)), "the legend sits on an axes"
    assert fig.bbox.x0 <= lbox.x0 and lbox.x1 <= fig.bbox.x1 and fig.bbox.y0 <= lbox.y0 and lbox.y1 <= fig.bbox.y1


def _check_annotations(fig: Figure, users: np.ndarray) -> None:
    """An annotation pointing at every user and naming it; no annotation over another one or over
    another user's marker."""
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    ax = _map_axes(fig)
    for k, (ux, uy) in enumerate(users):
        notes = [t for t in ax.texts if isinstance(t, Annotation) and np.allclose(t.xy, (ux, uy))]
        assert notes, f"user {k + 1} has no annotation"
        assert any(str(k + 1) in t.get_text() for t in notes), f"user {k + 1}'s annotation does not name it"
    boxes = [(t, t.get_window_extent(renderer)) for t in ax.texts]
    for (t1, b1), (t2, b2) in itertools.combinations(boxes, 2):
        assert not _overlap(b1, b2), f"the annotations {t1.get_text()!r} and {t2.get_text()!r} overlap"
    for k, xy in enumerate(users):
        x, y = ax.transData.transform(xy)
        marker = Bbox([[x - 4, y - 4], [x + 4, y + 4]])
        for t, b in boxes:
            if not np.allclose(getattr(t, "xy", (np.nan, np.nan)), xy):
                assert not _overlap(b, marker), f"the annotation {t.get_text()!r} covers user {k + 1}"


def _check_in_view(fig: Figure, users: np.ndarray, disc: tuple[np.ndarray, float] | None,
                   points: np.ndarray) -> None:
    """Every user (whole marker), every annotation (inside the axes), the whole eavesdropper disc
    and ``points`` (start, destination, the path) inside the view."""
    renderer = fig.canvas.get_renderer()
    ax = _map_axes(fig)
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    inside = ax.get_window_extent(renderer)
    to_px = ax.transData.transform
    margin = 4.0                          # px: a marker of radius 4 px is whole
    for k, (ux, uy) in enumerate(users):
        assert x0 < ux < x1 and y0 < uy < y1, f"user {k + 1} out of view"
        px, py = to_px((ux, uy))
        assert inside.x0 + margin <= px <= inside.x1 - margin and inside.y0 + margin <= py <= inside.y1 - margin, \
            f"user {k + 1}'s marker is cut by the axes edge"
    for text in ax.texts:
        box = text.get_window_extent(renderer)
        assert inside.x0 - 1 <= box.x0 and box.x1 <= inside.x1 + 1 and inside.y0 - 1 <= box.y0 \
            and box.y1 <= inside.y1 + 1, f"the annotation {text.get_text()!r} leaves the axes"
    if disc is not None:
        (ex, ey), r = disc
        assert x0 <= ex - r and ex + r <= x1 and y0 <= ey - r and ey + r <= y1, "the eavesdropper disc leaves the view"
        circles = [p for p in ax.patches if isinstance(p, Circle)]
        assert len(circles) == 1 and np.allclose(circles[0].center, (ex, ey))
    for px_, py_ in points:
        assert x0 < px_ < x1 and y0 < py_ < y1, f"({px_:.0f}, {py_:.0f}) out of view"


Shot = tuple[Figure, np.ndarray, np.ndarray, Any, np.ndarray]


def _episode_frames(env_id: str, layout: str, seed: int, captured: list) -> list[Shot]:
    """Render after reset and after a few random steps (the whole episode, flying north, for
    ``NORTH``): (figure, rgb, users, (eavesdropper estimate, radius) or None, start/end/path)."""
    env = gym.make(env_id, render_mode="rgb_array", **LAYOUTS[env_id][layout])
    u = env.unwrapped
    env.action_space.seed(seed)
    env.reset(seed=seed)
    out: list[Shot] = []
    path = [np.asarray(u.scenario.start_xy, dtype=float)] if env_id != QKD else []

    def grab() -> None:
        env.render()
        fig, rgb = captured[-1]
        if env_id == QKD:
            out.append((fig, rgb, u.current_frame()["position_m"], None, np.zeros((0, 2))))
        else:
            g = u.geometry()
            pts = np.vstack([g["start_xy"], g["end_xy"], *path])
            out.append((fig, rgb, g["user_xy"], (g["eve_xy"], u.scenario.eve_radius_m), pts))

    grab()
    north = layout == NORTH
    for _ in range(50 if north else 3):
        a = np.array([0.0, 1.0], dtype=np.float32) if north else env.action_space.sample()
        _, _, terminated, truncated, info = env.step(a)
        if env_id != QKD:
            path.append(np.asarray(info["position_m"], dtype=float))
        if terminated or truncated:
            break
    grab()
    env.close()
    if north:
        assert len(out[-1][4]) == 2 + 51          # start, destination and the 51 positions of the path
    return out


@pytest.fixture(scope="module")
def shots():
    """The frames of a case, rendered once for the module: ``shots(env_id, layout, seed)``."""
    cache: dict[tuple[str, str, int], list[Shot]] = {}

    def get(env_id: str, layout: str, seed: int) -> list[Shot]:
        key = (env_id, layout, seed)
        if key not in cache:
            captured: list[tuple[Figure, np.ndarray]] = []
            original = rendering._figure_to_rgb

            def capture(fig: Figure) -> np.ndarray:
                captured.append((fig, original(fig)))
                return captured[-1][1]

            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(rendering, "_figure_to_rgb", capture)
                cache[key] = _episode_frames(env_id, layout, seed, captured)
        return cache[key]

    yield get
    cache.clear()


# -- (1) readable frames ------------------------------------------------------------------------
@pytest.mark.parametrize("env_id,layout,seed", CASES)
def test_frame_axes_are_labelled_in_words_with_units(env_id, layout, seed, shots):
    for fig, *_ in shots(env_id, layout, seed):
        _check_labels(fig)


@pytest.mark.parametrize("env_id,layout,seed", CASES)
def test_frame_legend_covers_no_marker_annotation_or_path_point(env_id, layout, seed, shots):
    for fig, *_ in shots(env_id, layout, seed):
        _check_legend(fig)


@pytest.mark.parametrize("env_id,layout,seed", CASES)
def test_frame_shows_every_user_annotation_path_and_the_whole_disc(env_id, layout, seed, shots):
    for fig, _, users, disc, points in shots(env_id, layout, seed):
        _check_in_view(fig, users, disc, points)


@pytest.mark.parametrize("env_id,layout,seed", CASES)
def test_frame_annotates_every_user(env_id, layout, seed, shots):
    for fig, _, users, *_ in shots(env_id, layout, seed):
        _check_annotations(fig, users)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_frame_shape_is_one_per_env(env_id, shots):
    shapes = {rgb.shape for e, layout, seed in CASES if e == env_id for _, rgb, *_ in shots(e, layout, seed)}
    assert len(shapes) == 1, shapes
    ((h, w, c),) = shapes
    assert c == 3 and h % 16 == 0 and w % 16 == 0, "video writers want sides in multiples of 16 (h264: even)"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_vector_env_frames_pass_the_same_checks(env_id, frames):
    kw = {"random_users": True, "eve_radius_m": 150.0} if env_id != QKD else {}
    venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", render_mode="rgb_array", **kw)
    venv.reset(seed=3)
    venv.step(venv.action_space.sample())
    shots = venv.render()
    assert len(shots) == 2 and len(frames) == 2
    single = gym.make(env_id, render_mode="rgb_array", **kw)
    single.reset(seed=0)
    assert shots[0].shape == single.render().shape
    for fig, _ in frames[:2]:
        ax = _map_axes(fig)
        assert UNIT_LABEL.search(ax.get_xlabel()) and UNIT_LABEL.search(ax.get_ylabel())
        renderer = fig.canvas.get_renderer()
        (legend,) = _legends(fig)
        lbox = legend.get_window_extent(renderer)
        assert not _overlap(lbox, ax.get_window_extent(renderer)), "the legend sits on the map"
    venv.close()
    single.close()


# -- (2) RecordVideo keeps every frame ----------------------------------------------------------
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_render_fps_lets_moviepy_keep_every_frame(env_id):
    """moviepy 2.2's ``ImageSequenceClip(frames, fps)`` iterates ``int(sum([1/fps] * n) * fps)``
    frames and starts frame i at float32(i/fps - eps): unless 1/fps is a power of two, float
    rounding drops the last frame (51 frames at 10 fps give 50) and shows frame i-1 in frame i's
    place (10 fps: frames 24, 29, 34, ... never appear). RecordVideo passes it the env's
    ``render_fps``."""
    from moviepy.video.io.ImageSequenceClip import ImageSequenceClip

    fps = gym.make(env_id).metadata["render_fps"]
    assert gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point").metadata["render_fps"] == fps
    for n in (*range(1, 130), 201, 251, 501):
        sequence = [np.full((2, 2, 3), i % 256, dtype=np.uint8) for i in range(n)]
        shown = [int(f[0, 0, 0]) for f in ImageSequenceClip(sequence, fps=fps).iter_frames(fps=fps, dtype="uint8")]
        assert shown == [i % 256 for i in range(n)], f"{n} frames at {fps} fps: {len(shown)} written, not in order"


class _KeepFrames(gym.Wrapper):
    """Keeps a copy of every frame ``render()`` returns (below RecordVideo)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.kept: list[np.ndarray] = []

    def render(self) -> Any:
        frame = self.env.render()
        self.kept.append(np.array(frame))
        return frame


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_record_video_holds_every_rendered_frame_in_order(env_id, tmp_path: Path):
    import imageio

    from gymnasium.wrappers import RecordVideo

    keep = _KeepFrames(gym.make(env_id, render_mode="rgb_array"))
    folder = tmp_path / "videos"                     # a new folder: RecordVideo warns on an existing one
    env = RecordVideo(keep, str(folder), episode_trigger=lambda e: e == 0, disable_logger=True)
    env.action_space.seed(0)
    env.reset(seed=0)
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        done = terminated or truncated
    env.close()
    expected = (env.unwrapped.scenario.num_slots if env_id != QKD else env.unwrapped.scenario.frames_per_episode) + 1
    assert len(keep.kept) == expected                  # the reset frame and one per step (slot 50/50 last)
    (video,) = folder.glob("*.mp4")
    with imageio.get_reader(str(video)) as reader:
        written = [np.asarray(f)[::2, ::2].astype(np.int16) for f in reader]
    assert len(written) == len(keep.kept), f"{len(written)} frames written of {len(keep.kept)} rendered"
    rendered = np.stack([f[::2, ::2] for f in keep.kept]).astype(np.int16)
    for i, frame in enumerate(written):           # frame i of the video is rendered frame i (h264 is lossy)
        err = np.abs(rendered - frame[None]).mean(axis=(1, 2, 3))
        assert int(np.argmin(err)) == i, f"video frame {i} shows rendered frame {int(np.argmin(err))}"


# -- (3) Fig. 2 of the Cai et al. reproduction ----------------------------------------------------
def test_cai2019_fig2_keeps_the_legend_off_every_curve(saved_figures, tmp_path):
    from matplotlib.transforms import Bbox

    from agents.reproduce import cai2019 as rc

    runs = {(r, 10.0): rc.solve(r, 10.0, quick=True) for r in rc.QUICK_RADII}
    rc.fig2(runs, rc.QUICK_RADII, tmp_path)
    assert (tmp_path / "fig2.png").exists()
    fig = saved_figures[-1]
    _check_layout(fig, min_fill=0.4)              # the legend off the axes (with its labels), panels fill the figure
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    (legend,) = _legends(fig)
    lbox = legend.get_window_extent(renderer)
    curves = [line for line in ax.lines if len(line.get_xdata())]
    assert len(curves) == 2 * len(rc.QUICK_RADII)
    for line in curves:                           # every point and every segment (sampled) of every curve
        xy = line.get_transform().transform(np.column_stack([line.get_xdata(), line.get_ydata()]).astype(float))
        xy = np.vstack([a + t * (b - a) for a, b in zip(xy[:-1], xy[1:]) for t in np.linspace(0, 1, 50)] or [xy])
        r = _px(fig, line.get_markersize() / 2) if line.get_marker() not in (None, "None", "") else 1.0
        for x, y in xy:
            assert not _overlap(lbox, Bbox([[x - r, y - r], [x + r, y + r]])), \
                f"the legend covers the curve {line.get_label()!r} at ({x:.0f}, {y:.0f}) px"
