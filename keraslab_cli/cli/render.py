"""Rich tables and the progress bar of training commands."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from keraslab_cli.core.i18n import _, format_number
from keraslab_cli.core.spec import ExperimentSpec

PROGRESS_REFRESH_SECONDS = 0.1


class EpochProgress:
    """A progress bar of epochs with the loss, elapsed time and epochs per second.

    Used as a context manager; ``update`` is the training callback.
    """

    def __init__(self, console: Console, epochs: int, enabled: bool) -> None:
        self.enabled = enabled
        self.epochs = epochs
        self.started = time.perf_counter()
        self.last_refresh = 0.0
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            # rich formats a column with the task only: {epoch} becomes a task field.
            TextColumn(_("epoch {epoch}/{total}").replace("{epoch}", "{task.fields[epoch]}").replace("{total}", "{task.total}"), style="cyan"),
            TextColumn("{task.fields[loss]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[speed]}"),
            console=console,
            transient=False,
            disable=not enabled,
        )
        self.task = None

    def __enter__(self) -> "EpochProgress":
        if self.enabled:
            self.progress.start()
            self.task = self.progress.add_task(_("Training"), total=self.epochs, loss="", speed="", epoch=0)
        return self

    def __exit__(self, *exc_info) -> None:
        if self.enabled:
            self.progress.stop()

    def update(self, epoch: int, logs: dict) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last_refresh < PROGRESS_REFRESH_SECONDS and epoch < self.epochs:
            return
        self.last_refresh = now
        speed = epoch / max(now - self.started, 1e-9)
        loss = _("loss {value}").format(value=format_number(logs.get("loss"), 4))
        if "val_loss" in logs:
            loss += " · " + _("val. {value}").format(value=format_number(logs["val_loss"], 4))
        self.progress.update(
            self.task,
            completed=epoch,
            loss=loss,
            speed=_("{speed} epochs/s").format(speed=format_number(round(speed), 4)),
            epoch=epoch,
        )


def parameter_formula(spec: ExperimentSpec) -> str:
    """Return the trainable parameter count written as the formula in L and p."""
    layers, units = spec.layers, spec.units
    total = (layers - 1) * units * units + (layers + 2) * units + 1
    return f"(L−1)·p² + (L+2)·p + 1 = {layers - 1}·{units}² + {layers + 2}·{units} + 1 = {total}"


def architecture_table(layers: list[dict]) -> Table:
    """Build the table of layers: name, kind, units, activation, parameters."""
    table = Table(title=_("Architecture"), title_justify="left")
    table.add_column(_("layer"))
    table.add_column(_("type"))
    table.add_column(_("units"), justify="right")
    table.add_column(_("activation"))
    table.add_column(_("parameters"), justify="right")
    for row in layers:
        table.add_row(
            escape(row["name"]),
            row["kind"],
            str(row["units"]) if row["units"] is not None else "—",
            row["activation"] or "—",
            format_number(row["parameters"]),
        )
    return table


def summary_table(result) -> Table:
    """Build the summary of a run: network, training, results, files."""
    spec: ExperimentSpec = result.spec
    metrics = result.metrics
    loss_name = spec.loss.upper()
    table = Table(title=_("Summary"), title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")

    def add(label: str, value: str) -> None:
        table.add_row(label, value)

    add(_("Network"), _("{layers} hidden layers × {units} neurons, {activation}; output: 1 linear neuron").format(layers=spec.layers, units=spec.units, activation=spec.activation))
    add(_("Neurons"), f"L·p + 1 = {spec.layers}·{spec.units} + 1 = {metrics['neurons']}")
    add(_("Trainable parameters"), parameter_formula(spec))
    rate = format_number(spec.resolved_learning_rate, 4)
    note = _("(Keras default for {optimizer})").format(optimizer=spec.optimizer) if spec.learning_rate is None else ""
    optimizer = f"{spec.optimizer}, {_('learning rate')} {rate} {note}".strip()
    if spec.momentum:
        optimizer += f", momentum {format_number(spec.momentum)}"
    if spec.nesterov:
        optimizer += ", Nesterov"
    add(_("Optimizer"), optimizer)
    if spec.lr_schedule != "constant":
        add(_("Learning-rate schedule"), _("{name}, decay {decay}, minimum {minimum}, final rate {final}").format(
            name=spec.lr_schedule, decay=format_number(spec.lr_decay), minimum=format_number(spec.lr_min), final=format_number(result.history.get("learning_rate", [None])[-1])))
    add(_("Epochs"), _("{run} of {requested}").format(run=metrics["epochs_run"], requested=spec.epochs))
    whole = ""
    if spec.batch_size is None or spec.batch_size >= metrics["batch_size"]:
        # With a validation split, the batch is every training sample, not every sample.
        whole = _("(every training sample: plain gradient descent)") if spec.val_split > 0 else _("(whole data set: plain gradient descent)")
    add(_("Batch size"), f"{metrics['batch_size']} {whole}".strip())
    add(_("Normalization of x"), _("yes (mean and standard deviation of the training x, stored in the model)") if spec.normalize else _("no"))
    if spec.l1 or spec.l2 or spec.dropout:
        add(_("Regularization"), f"L1 {format_number(spec.l1)}, L2 {format_number(spec.l2)}, dropout {format_number(spec.dropout)}" + (" — " + _("the training loss includes the L1/L2 penalty, as in Keras") if spec.l1 or spec.l2 else ""))
    add(_("Loss"), loss_name)
    add(_("Final loss"), format_number(metrics.get("final_loss")))
    if metrics.get("final_data_loss") is not None:
        add(_("Final loss without the penalty"), format_number(metrics["final_data_loss"]))
    if metrics.get("best_epoch"):
        add(_("Best loss"), _("{value} at epoch {epoch}").format(value=format_number(metrics.get("best_loss")), epoch=metrics["best_epoch"]))
    add(_("Max |F(x) − f(x)| on the data"), format_number(metrics.get("max_abs_error")))
    add(_("MSE of F against f on the interval"), format_number(metrics.get("dense_mse")))
    engines = {"fast": _("keraslab's fast loop"), "fit": _("Keras's model.fit")}
    add(_("Training time"), _("{seconds} s ({ms} ms per epoch, {engine})").format(
        seconds=format_number(metrics["train_seconds"], 3), ms=format_number(metrics["ms_per_epoch"], 3), engine=engines.get(result.engine, result.engine)))
    add(_("Status"), status_label(result.status))
    add(_("Folder"), escape(str(result.folder)))
    return table


def status_label(status: str) -> str:
    """Return the translated name of a run status."""
    labels = {
        "completed": _("completed"),
        "early_stopped": _("stopped early (validation loss no longer improving)"),
        "diverged": _("diverged"),
        "interrupted": _("interrupted"),
        "failed": _("failed"),
        "reused": _("reused"),
    }
    return labels.get(status, status)
