"""Figures of a run, drawn with Matplotlib's Agg backend and saved atomically.

Each function takes the data to plot and the output path. Labels go through
``_()`` so plots follow the selected language.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keraslab_cli.core.i18n import _  # noqa: E402
from keraslab_cli.core.outputs import write_bytes  # noqa: E402

DPI = 120
BLUE = "tab:blue"
RED = "tab:red"


def save_figure(figure, path: Path) -> Path:
    """Render a figure to PNG in memory, write it atomically and close it."""
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(figure)
    return write_bytes(Path(path), buffer.getvalue())


def plot_fit(
    path: Path,
    x_dense: np.ndarray,
    f_dense: np.ndarray,
    prediction_dense: np.ndarray,
    title: str,
    train_points: tuple[np.ndarray, np.ndarray] | None = None,
    val_points: tuple[np.ndarray, np.ndarray] | None = None,
    true_dashed: bool = False,
) -> Path:
    """Draw f (blue) and the network's F (red) over the interval, with F − f below.

    Args:
        path: destination PNG.
        x_dense, f_dense, prediction_dense: the grid, f and F on it.
        title: the figure's title (parameters and final loss).
        train_points: the samples trained on, drawn as dots when given.
        val_points: held-out samples, drawn with another marker when given.
        true_dashed: draw f dashed (noisy data, where f is not what was learned from).
    """
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 6.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]}, constrained_layout=True
    )
    if train_points is not None:
        top.plot(train_points[0], train_points[1], "o", color=BLUE, markersize=4, alpha=0.7, label=_("training data"))
    if val_points is not None and len(val_points[0]):
        top.plot(val_points[0], val_points[1], "s", markerfacecolor="none", color="tab:green", markersize=6, label=_("validation data"))
    top.plot(x_dense, f_dense, "--" if true_dashed else "-", color=BLUE, linewidth=2, label=_("f (target function)"))
    top.plot(x_dense, prediction_dense, "-", color=RED, linewidth=2, label=_("F (network)"))
    top.set_ylabel("y")
    top.set_title(title, fontsize=10)
    top.grid(alpha=0.3)
    top.legend(loc="best", fontsize=9)

    error = prediction_dense - f_dense
    bottom.axhline(0, color="black", linewidth=0.8)
    bottom.plot(x_dense, error, color=RED, linewidth=1.5)
    bottom.fill_between(x_dense, error, 0, color=RED, alpha=0.15)
    bottom.set_xlabel("x")
    bottom.set_ylabel(_("F(x) − f(x)"))
    bottom.grid(alpha=0.3)
    return save_figure(figure, path)


def plot_loss(
    path: Path,
    history: dict[str, list[float]],
    title: str,
    loss_name: str = "MSE",
    best_epoch: int | None = None,
    stopped_epoch: int | None = None,
) -> Path:
    """Draw the training (and validation) loss per epoch on a log scale.

    The learning rate is drawn on a second axis when it changes during training.
    """
    figure, axis = plt.subplots(figsize=(8, 4.8), constrained_layout=True)
    loss = np.asarray(history.get("loss", []), dtype=float)
    epochs = np.arange(1, len(loss) + 1)
    axis.plot(epochs, _positive(loss), color=BLUE, linewidth=1.5, label=_("training loss"))
    if history.get("val_loss"):
        val_loss = np.asarray(history["val_loss"], dtype=float)
        axis.plot(epochs, _positive(val_loss), color="tab:orange", linewidth=1.5, label=_("validation loss"))
    # Keras's losses include the L1/L2 penalty, and the data losses leave it out.
    if history.get("data_loss"):
        axis.plot(epochs, _positive(history["data_loss"]), color=BLUE, linewidth=1.2, linestyle="--", label=_("training loss without the L1/L2 penalty"))
    if history.get("val_data_loss"):
        axis.plot(epochs, _positive(history["val_data_loss"]), color="tab:orange", linewidth=1.2, linestyle="--", label=_("validation loss without the L1/L2 penalty"))
    if best_epoch is not None and 1 <= best_epoch <= len(loss):
        series = history.get("val_loss") or history["loss"]
        axis.axvline(best_epoch, color="tab:green", linestyle=":", linewidth=1.2)
        axis.plot([best_epoch], [series[best_epoch - 1]], "o", color="tab:green", label=_("best epoch: {epoch}").format(epoch=best_epoch))
    if stopped_epoch is not None:
        axis.axvline(stopped_epoch, color=RED, linestyle="--", linewidth=1.2, label=_("stopped at epoch {epoch}").format(epoch=stopped_epoch))
    if np.any(_positive(loss) > 0):
        axis.set_yscale("log")
        label_narrow_log_axis(axis, [history.get(key) for key in ("loss", "val_loss", "data_loss", "val_data_loss")])
    axis.set_xlabel(_("epoch"))
    axis.set_ylabel(_("loss ({name}, log scale)").format(name=loss_name))
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3, which="both")

    rates = np.asarray(history.get("learning_rate", []), dtype=float)
    if len(rates) > 1 and np.nanmax(rates) > np.nanmin(rates) * (1 + 1e-6):
        rate_axis = axis.twinx()
        rate_axis.plot(np.arange(1, len(rates) + 1), rates, color="gray", linewidth=1, linestyle="-.", label=_("learning rate"))
        rate_axis.set_ylabel(_("learning rate"), color="gray")
        rate_axis.set_yscale("log")
        lines, labels = axis.get_legend_handles_labels()
        more_lines, more_labels = rate_axis.get_legend_handles_labels()
        axis.legend(lines + more_lines, labels + more_labels, loc="upper right", fontsize=9)
    else:
        axis.legend(loc="upper right", fontsize=9)
    return save_figure(figure, path)


def label_narrow_log_axis(axis, series: list) -> None:
    """Put evenly spaced, labelled ticks on a log-scale y axis that spans less than a decade.

    In such a range Matplotlib's log locator labels only a few ticks (often just
    4×10⁰ and 5×10⁰), which is too few to read the final loss from the axis.
    """
    from matplotlib import ticker

    values = np.concatenate([_positive(np.asarray(s, dtype=float)) for s in series if s is not None and len(s)] or [np.empty(0)])
    values = values[np.isfinite(values)]
    if len(values) == 0 or values.max() / values.min() >= 10:
        return
    axis.yaxis.set_major_locator(ticker.MaxNLocator(nbins=6))
    axis.yaxis.set_major_formatter(ticker.FormatStrFormatter("%.3g"))
    axis.yaxis.set_minor_formatter(ticker.NullFormatter())


def _positive(values: np.ndarray) -> np.ndarray:
    """Replace values that a log scale cannot show (≤ 0, NaN, inf) with NaN."""
    values = np.asarray(values, dtype=float).copy()
    values[~np.isfinite(values) | (values <= 0)] = np.nan
    return values
