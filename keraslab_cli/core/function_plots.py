"""Drawing the function F of a network: a curve, a surface with its contour map, or slices.

One input: F over an interval, as in the handout (100 points on [−2, 3]).
Two inputs: a 3-D surface beside a contour map over the same interval on both
axes (20 points per axis on [−5, 5] in the handout). Three or more inputs:
one curve per input, the other inputs held at a reference point, because a
function of three variables has no graph a student can read.

``function_data`` computes what is drawn, so tests can check the numbers
before the picture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from keraslab_cli.core.i18n import _, format_plot_number
from keraslab_cli.core.plots import BLUE, RED, plt, save_figure

CURVE_RANGE = (-2.0, 3.0)  # the handout draws F on [−2, 3] for one input
CURVE_POINTS = 100  # np.linspace(-2, 3, num=100) in the handout
SURFACE_RANGE = (-5.0, 5.0)  # np.linspace(-5, 5, 20) on both axes in the handout
SURFACE_POINTS = 20
# Share of the plotted width left beyond an evaluated point that widens the range.
POINT_MARGIN = 0.05
OUTPUT_COLORS = (RED, BLUE, "tab:green", "tab:orange", "tab:purple", "tab:brown")


@dataclass
class FunctionData:
    """Data of a plot of F.

    Attributes:
        kind: ``curve`` (1 input), ``surface`` (2 inputs) or ``slices`` (3 or more).
        axes: the grid of each plotted axis (one array for a curve, two for a
            surface, one per input for slices).
        values: F on the grid: (points, outputs) for a curve, (points, points,
            outputs) for a surface, a list of (points, outputs) per input for slices.
        reference: the point the other inputs are held at, for slices.
        marked: points the user evaluated, with F there, drawn as dots.
        interval: bounds of every plotted axis.
        target: for a curve, the text of the target f(x) and f on the grid,
            drawn dashed beside F; None when F has no target.
        training_interval: for a curve, the interval of x the model was
            trained on, shaded; None for a network that was not trained.
    """

    kind: str
    axes: list[np.ndarray]
    values: np.ndarray | list[np.ndarray]
    reference: np.ndarray | None = None
    marked: tuple[np.ndarray, np.ndarray] | None = None
    interval: tuple[float, float] = field(default=CURVE_RANGE)
    target: tuple[str, np.ndarray] | None = None
    training_interval: tuple[float, float] | None = None


def default_range(inputs: int) -> tuple[float, float]:
    """Return the handout's plotting interval for a network with this many inputs."""
    return SURFACE_RANGE if inputs == 2 else CURVE_RANGE


def default_points(inputs: int) -> int:
    """Return the handout's number of points per axis for a network with this many inputs."""
    return SURFACE_POINTS if inputs == 2 else CURVE_POINTS


def range_covering(interval: tuple[float, float], points) -> tuple[float, float]:
    """Widen an interval so that every coordinate of the points lies inside it.

    The interval is returned unchanged when every point is inside. Otherwise
    each bound closer than ``POINT_MARGIN`` of the new width to a point moves
    that far beyond it, rounded outwards to a whole number, so that no mark
    sits on the plot's edge.
    """
    low, high = float(interval[0]), float(interval[1])
    coordinates = np.asarray(points, dtype=float).ravel()
    if not coordinates.size or (coordinates.min() >= low and coordinates.max() <= high):
        return (low, high)
    smallest, largest = float(coordinates.min()), float(coordinates.max())
    margin = POINT_MARGIN * (max(high, largest) - min(low, smallest))
    if smallest - margin < low:
        low = float(np.floor(smallest - margin))
    if largest + margin > high:
        high = float(np.ceil(largest + margin))
    return (low, high)


def points_outside(interval: tuple[float, float], points) -> list[tuple[float, ...]]:
    """Return the points with a coordinate outside the interval: a plot over it leaves them off."""
    low, high = interval
    return [tuple(point) for point in points if not all(low <= value <= high for value in point)]


def function_data(
    evaluate: Callable[[np.ndarray], np.ndarray],
    inputs: int,
    interval: tuple[float, float],
    points: int,
    marked: np.ndarray | None = None,
    target: tuple[str, Callable[[np.ndarray], np.ndarray]] | None = None,
    training_interval: tuple[float, float] | None = None,
) -> FunctionData:
    """Evaluate F on the grid a plot needs.

    Args:
        evaluate: maps an array (n, inputs) to F, an array (n, outputs).
        inputs: number of inputs of F.
        interval: bounds of every plotted axis.
        points: grid points per axis.
        marked: points (n, inputs) to mark on the plot, or None.
        target: for one input, the text of the target f(x) and a function
            mapping x (n,) to f(x) (n,); default None.
        training_interval: for one input, the interval the model was trained on; default None.
    """
    axis = np.linspace(interval[0], interval[1], points)
    marks = None
    if marked is not None and len(marked):
        marked = np.asarray(marked, dtype=float).reshape(len(marked), inputs)
        marks = (marked, evaluate(marked))
    if inputs == 1:
        target_values = (target[0], np.asarray(target[1](axis), dtype=float)) if target is not None else None
        return FunctionData("curve", [axis], evaluate(axis.reshape(-1, 1)), marked=marks, interval=interval,
                            target=target_values, training_interval=training_interval)
    if inputs == 2:
        grid_x, grid_y = np.meshgrid(axis, axis)
        values = evaluate(np.c_[grid_x.ravel(), grid_y.ravel()])
        return FunctionData("surface", [axis, axis], values.reshape(points, points, -1), marked=marks, interval=interval)
    reference = marks[0][0] if marks is not None else np.zeros(inputs)
    slices = []
    for index in range(inputs):
        batch = np.tile(reference, (points, 1))
        batch[:, index] = axis
        slices.append(evaluate(batch))
    return FunctionData("slices", [axis] * inputs, slices, reference=reference, marked=marks, interval=interval)


def input_labels(inputs: int) -> list[str]:
    """Return the names of the inputs: x for one input, x1, x2, ... otherwise."""
    return ["x"] if inputs == 1 else [f"x{index}" for index in range(1, inputs + 1)]


def output_labels(outputs: int) -> list[str]:
    """Return the names of the outputs: F for one output, F1, F2, ... otherwise."""
    return ["F"] if outputs == 1 else [f"F{index}" for index in range(1, outputs + 1)]


def plot_function(path: Path, data: FunctionData, name: str) -> Path:
    """Draw F as a curve, a surface or slices, by the kind of its data, and save the PNG."""
    if data.kind == "curve":
        return _plot_curve(path, data, name)
    if data.kind == "surface":
        return _plot_surface(path, data, name)
    return _plot_slices(path, data, name)


def _interval_text(interval: tuple[float, float]) -> str:
    return f"[{format_plot_number(float(interval[0]))}, {format_plot_number(float(interval[1]))}]"


def _plot_curve(path: Path, data: FunctionData, name: str) -> Path:
    figure, axis = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    x = data.axes[0]
    labels = output_labels(data.values.shape[1])
    if data.training_interval is not None:
        axis.axvspan(*data.training_interval, color="gray", alpha=0.12, label=_("training interval {interval}").format(interval=_interval_text(data.training_interval)))
    for column, label in enumerate(labels):
        axis.plot(x, data.values[:, column], color=OUTPUT_COLORS[column % len(OUTPUT_COLORS)], linewidth=2, label=f"{label}(x)")
    if data.target is not None:
        source, values = data.target
        axis.plot(x, values, "--", color=BLUE, linewidth=1.8, label=_("target f(x) = {function}").format(function=source))
    inside = _inside(data)
    if inside is not None:
        points, values = inside
        for column in range(values.shape[1]):
            axis.plot(points[:, 0], values[:, column], "o", color="black", markersize=6, zorder=3)
            for point, value in zip(points[:, 0], values[:, column]):
                axis.annotate(f"{labels[column]}({format_plot_number(point)}) = {format_plot_number(value)}", (point, value), textcoords="offset points", xytext=(6, 6), fontsize=9)
        axis.plot([], [], "o", color="black", label=_("evaluated points"))
    axis.set_xlabel("x")
    axis.set_ylabel("F(x)")
    axis.set_title(_("Network {name}: F(x) on {interval}, {count} points").format(name=name, interval=_interval_text(data.interval), count=len(x)), fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(loc="best", fontsize=9)
    return save_figure(figure, path)


def _inside(data: FunctionData) -> tuple[np.ndarray, np.ndarray] | None:
    """Return the marked points that lie inside the plotted interval on every axis, or None."""
    if data.marked is None:
        return None
    points, values = data.marked
    low, high = data.interval
    keep = np.all((points >= low) & (points <= high), axis=1)
    return (points[keep], values[keep]) if keep.any() else None


def _plot_surface(path: Path, data: FunctionData, name: str) -> Path:
    axis_x, axis_y = data.axes
    grid_x, grid_y = np.meshgrid(axis_x, axis_y)
    outputs = data.values.shape[2]
    labels = output_labels(outputs)
    figure = plt.figure(figsize=(12, 5 * outputs), constrained_layout=True)
    for row in range(outputs):
        values = data.values[:, :, row]
        label = f"{labels[row]}(x1, x2)"
        surface_axis = figure.add_subplot(outputs, 2, 2 * row + 1, projection="3d")
        surface_axis.plot_surface(grid_x, grid_y, values, cmap="viridis", edgecolor="none", alpha=0.95)
        surface_axis.set_xlabel("x1")
        surface_axis.set_ylabel("x2")
        surface_axis.set_zlabel(label, labelpad=12)
        surface_axis.set_title(_("Surface of {label}").format(label=label), fontsize=10)

        contour_axis = figure.add_subplot(outputs, 2, 2 * row + 2)
        filled = contour_axis.contourf(grid_x, grid_y, values, levels=15, cmap="viridis")
        if np.ptp(values) > 0:
            lines = contour_axis.contour(grid_x, grid_y, values, levels=8, colors="white", linewidths=0.7)
            contour_axis.clabel(lines, fontsize=7, fmt=lambda level: format_plot_number(level, 3))
        figure.colorbar(filled, ax=contour_axis, label=label)
        inside = _inside(data)
        if inside is not None:
            points, marked_values = inside
            contour_axis.plot(points[:, 0], points[:, 1], "o", color=RED, markeredgecolor="white", markersize=7, label=_("evaluated points"))
            for point, value in zip(points, marked_values[:, row]):
                contour_axis.annotate(format_plot_number(value, 3), (point[0], point[1]), textcoords="offset points", xytext=(6, 6), fontsize=9,
                                      bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
            contour_axis.legend(loc="upper right", fontsize=8)
        contour_axis.set_xlim(data.interval)
        contour_axis.set_ylim(data.interval)
        contour_axis.set_xlabel("x1")
        contour_axis.set_ylabel("x2")
        contour_axis.set_aspect("equal")
        contour_axis.set_title(_("Contour lines of {label}").format(label=label), fontsize=10)
    figure.suptitle(_("Network {name}: F on {interval} × {interval}, {count} × {count} points").format(name=name, interval=_interval_text(data.interval), count=len(axis_x)), fontsize=11)
    return save_figure(figure, path)


def _plot_slices(path: Path, data: FunctionData, name: str) -> Path:
    inputs = len(data.axes)
    columns = min(inputs, 3)
    rows = -(-inputs // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False, constrained_layout=True)
    labels = input_labels(inputs)
    outputs = output_labels(data.values[0].shape[1])
    for index in range(rows * columns):
        axis = axes[index // columns][index % columns]
        if index >= inputs:
            axis.set_visible(False)
            continue
        for column, output in enumerate(outputs):
            axis.plot(data.axes[index], data.values[index][:, column], color=OUTPUT_COLORS[column % len(OUTPUT_COLORS)], linewidth=2, label=output)
        axis.axvline(data.reference[index], color="gray", linestyle=":", linewidth=1)
        axis.set_xlabel(labels[index])
        axis.set_ylabel(_("F, other inputs fixed"))
        axis.grid(alpha=0.3)
        if len(outputs) > 1:
            axis.legend(fontsize=8)
    reference = ", ".join(format_plot_number(float(value)) for value in data.reference)
    figure.suptitle(_("Network {name}: F along each input, the others held at ({point})").format(name=name, point=reference), fontsize=11)
    return save_figure(figure, path)
