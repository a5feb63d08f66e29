"""The two comparison figures of a sweep: every loss curve, and every fit on one page."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from keraslab_cli.core.i18n import _, format_plot_number
from keraslab_cli.core.plots import BLUE, RED, _positive, label_narrow_log_axis, plt, save_figure
from keraslab_cli.core.sweep import ConfigurationSummary, SweepPlan, describe_values, plot_grid, varying_fields

# Fields shown in the subtitle when the sweep does not vary them: what a
# student needs to tell two studies apart.
KEY_FIELDS = ("layers", "units", "activation", "optimizer", "learning_rate", "epochs", "normalize", "batch_size", "seed")
CELL_WIDTH, CELL_HEIGHT = 3.2, 2.6  # inches per fit plot in the grid
MAX_LEGEND_ROWS = 40


def fixed_description(plan: SweepPlan) -> str:
    """Return the values every configuration shares, for example ``layers=4 · activation=tanh``."""
    varying = varying_fields(plan)
    shared = [name for name in KEY_FIELDS if name not in varying and not (name == "seed" and plan.repeat > 1)]
    return describe_values(plan.configurations[0], shared, figure=True) if plan.configurations else ""


def run_label(plan: SweepPlan, summary: ConfigurationSummary) -> str:
    """Return a configuration's label: its swept values, or the rank alone when nothing varies."""
    label = describe_values(summary.spec, varying_fields(plan), figure=True) if plan.swept else _("configuration {number}").format(number=summary.number + 1)
    if summary.status != "completed":
        label += f" ({status_word(summary.status)})"
    return label


def status_word(status: str) -> str:
    """Return the translated word of a configuration status for figures."""
    return {"diverged": _("diverged"), "failed": _("failed"), "interrupted": _("interrupted")}.get(status, status)


def mean_curve(losses: list[list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the mean, minimum and maximum loss per epoch over runs of unequal lengths."""
    length = max((len(loss) for loss in losses), default=0)
    table = np.full((max(len(losses), 1), length), np.nan)
    for row, loss in enumerate(losses):
        table[row, : len(loss)] = _positive(np.asarray(loss, dtype=float))
    # Epochs that no run reached are all-NaN columns. NumPy warns about them, and NaN is the correct result.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(table, axis=0), np.nanmin(table, axis=0), np.nanmax(table, axis=0)


def loss_columns(plan: SweepPlan) -> tuple[str, str]:
    """Return the history columns drawn: the data loss when a run has an L1/L2 penalty, else the loss.

    Keras adds the penalty to ``loss`` and ``val_loss``; history.csv then also
    has ``data_loss`` and ``val_data_loss``, the losses without it.
    """
    penalized = any(spec.l1 > 0 or spec.l2 > 0 for spec in plan.configurations)
    return ("data_loss", "val_data_loss") if penalized else ("loss", "val_loss")


def ranking_description(plan: SweepPlan) -> str:
    """Return the name of what ranks the sweep, as shown in the legend and table titles."""
    from keraslab_cli.core.sweep import ranking_metric

    return _("MSE(F, f)") if ranking_metric(plan) == "dense_mse" else _("final loss")


def plot_loss_curves(path: Path, plan: SweepPlan, summaries: list[ConfigurationSummary]) -> Path:
    """Draw the loss per epoch of every configuration on one log-scale axis.

    Training losses are solid lines and validation losses, where a run has a
    validation set, dashed lines of the same colour. With ``--repeat`` each
    curve is the mean over seeds, with the range between the lowest and
    highest seed shaded. The legend follows the ranking, best first.
    """
    from keraslab_cli.core.sweep import ranking_metric

    figure, axis = plt.subplots(figsize=(12, 6.5), constrained_layout=True)
    colors = plt.get_cmap("tab20" if len(summaries) > 10 else "tab10")
    train_column, validation_column = loss_columns(plan)
    metric = ranking_metric(plan)
    labeled = 0
    with_validation = False
    for position, summary in enumerate(sorted(summaries, key=lambda item: item.rank)):
        color = colors(position % colors.N)
        # Past the palette's colours, thinner lines tell the curves apart.
        width = 1.4 if position < colors.N else 0.8
        label = f"{_('#{rank}').format(rank=summary.rank)} {run_label(plan, summary)} · {format_plot_number(getattr(summary, metric), 3)}"
        for column, style in ((train_column, "-"), (validation_column, "--")):
            # A run without a penalty has no data_loss column: its loss is its data loss.
            curves = [outcome.curves.get(column) or outcome.curves.get(column.replace("data_", ""), []) for outcome in summary.runs]
            curves = [curve for curve in curves if curve]
            if not curves:
                continue
            mean, low, high = mean_curve(curves)
            epochs = np.arange(1, len(mean) + 1)
            axis.plot(epochs, mean, style, color=color, linewidth=width, label=label if style == "-" else "_nolegend_")
            if len(curves) > 1:
                axis.fill_between(epochs, low, high, color=color, alpha=0.12, linewidth=0)
            labeled += style == "-"
            with_validation = with_validation or style == "--"
    if axis.lines:
        axis.set_yscale("log")
        label_narrow_log_axis(axis, [line.get_ydata() for line in axis.lines])
    axis.set_xlabel(_("epoch"))
    name = plan.configurations[0].loss.upper()
    if train_column == "data_loss":
        axis.set_ylabel(_("loss without the L1/L2 penalty ({name}, log scale)").format(name=name))
    else:
        axis.set_ylabel(_("loss ({name}, log scale)").format(name=name))
    title = _("Loss of every configuration · {command}").format(command=plan.command)
    if plan.repeat > 1:
        title += " · " + _("mean over {count} seeds, min–max range shaded").format(count=plan.repeat)
    axis.set_title(title + "\n" + fixed_description(plan), fontsize=11)
    axis.grid(alpha=0.3, which="both")
    if labeled:
        legend_title = _("rank, configuration, {metric}").format(metric=ranking_description(plan))
        legend_title += "\n" + (_("solid: training loss · dashed: validation loss") if with_validation else _("solid: training loss"))
        columns = max(1, math.ceil(labeled / MAX_LEGEND_ROWS))
        axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, ncols=columns, title=legend_title, title_fontsize=8)
    return save_figure(figure, path)


def grid_shape(count: int) -> tuple[int, int]:
    """Return (rows, columns) of a grid of ``count`` plots, about 3 wide for 2 high."""
    columns = max(1, min(count, math.ceil(math.sqrt(count * 1.5))))
    return math.ceil(count / columns), columns


def plot_fit_grid(path: Path, plan: SweepPlan, summaries: list[ConfigurationSummary]) -> Path:
    """Draw one small fit plot per configuration, in the order of the cartesian product.

    Each plot shows f (blue) and F (red, one line per seed) and is titled
    with the configuration's swept values, its rank and its MSE of F against f.
    All plots share the y range of f, so a teacher compares them at a glance.
    """
    ordered = sorted(summaries, key=lambda summary: summary.number)
    rows, columns = grid_shape(len(ordered))
    figure, axes = plt.subplots(rows, columns, figsize=(CELL_WIDTH * columns, CELL_HEIGHT * rows + 0.8), squeeze=False, constrained_layout=True)
    for axis in axes.flat[len(ordered):]:
        axis.set_visible(False)
    for axis, summary in zip(axes.flat, ordered):
        _draw_fit(axis, plan, summary)
    title = _("f (blue) and F (red) for each configuration · {command}").format(command=plan.command)
    figure.suptitle(title + "\n" + fixed_description(plan), fontsize=12)
    return save_figure(figure, path)


def _draw_fit(axis, plan: SweepPlan, summary: ConfigurationSummary) -> None:
    from keraslab_cli.core.data import make_dataset

    spec = summary.spec
    x = plot_grid(spec)
    data = make_dataset(spec)
    f_values = data.target(x)
    if spec.sigma > 0:
        axis.plot(data.x_train.reshape(-1), data.y_train.reshape(-1), ".", color="gray", markersize=3, alpha=0.6)
    axis.plot(x, f_values, "-", color=BLUE, linewidth=1.6)
    fits = [outcome.fit for outcome in summary.runs if outcome.fit is not None]
    for fit in fits:
        axis.plot(x, fit, "-", color=RED, linewidth=1.3, alpha=1.0 if len(fits) == 1 else 0.6)
    span = float(np.ptp(f_values)) or 1.0
    axis.set_ylim(float(np.min(f_values)) - 0.3 * span, float(np.max(f_values)) + 0.3 * span)
    if not fits:
        axis.text(0.5, 0.5, status_word(summary.status), transform=axis.transAxes, ha="center", va="center", color=RED, fontsize=14, fontweight="bold")
    heading = describe_values(spec, varying_fields(plan), figure=True) if plan.swept else _("configuration {number}").format(number=summary.number + 1)
    result = _("#{rank} · MSE(F, f) = {mse}").format(rank=summary.rank, mse=format_plot_number(summary.dense_mse, 3))
    if summary.status != "completed":
        result += f" · {status_word(summary.status)}"
    axis.set_title(_wrap(heading) + "\n" + result, fontsize=8)
    axis.tick_params(labelsize=7)
    axis.grid(alpha=0.3)


def _wrap(text: str, width: int = 42) -> str:
    """Break a ' · '-separated title into lines of about ``width`` characters."""
    lines, current = [], ""
    for part in text.split(" · "):
        candidate = f"{current} · {part}" if current else part
        if len(candidate) > width and current:
            lines.append(current)
            current = part
        else:
            current = candidate
    lines.append(current)
    return "\n".join(lines)
