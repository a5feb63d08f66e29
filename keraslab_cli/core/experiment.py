"""One training run from specification to saved outputs: the core of approx and noisy."""

from __future__ import annotations

import platform
import resource
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from keraslab_cli import __version__
from keraslab_cli.core import defaults
from keraslab_cli.core.data import Dataset, dense_grid, make_dataset
from keraslab_cli.core.errors import InvalidValue
from keraslab_cli.core.i18n import _
from keraslab_cli.core.naming import run_name
from keraslab_cli.core.outputs import append_index, folder_lock, prepare_folder, remove_temporaries, write_csv, write_json
from keraslab_cli.core.spec import ExperimentSpec, validate

RUN_FILES = ("fit.png", "loss.png", "history.csv", "model.keras", "run.json", "data.csv")


@dataclass
class RunResult:
    """Everything a command needs to report a finished (or stopped) run."""

    spec: ExperimentSpec
    folder: Path
    status: str
    metrics: dict[str, Any]
    files: dict[str, str]
    layers: list[dict]
    engine: str
    engine_note: str | None
    history: dict[str, list[float]] = field(default_factory=dict)
    stopped_epoch: int | None = None
    signal_number: int | None = None


# File systems limit a name to 255 bytes; the lock file adds 6 and temporary
# files keep a margin for their own prefixes and suffixes.
MAX_NAME_BYTES = 200


def check_name(name: str | None) -> str | None:
    """Reject a run name that is not a plain folder name."""
    if name is None:
        return None
    if not name or name in {".", ".."} or "/" in name or "\\" in name or "\0" in name:
        raise InvalidValue("name", name, _("a plain folder name without '/', for example my-run"))
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise InvalidValue("name", name[:40] + "…", _("a folder name of at most {limit} bytes").format(limit=MAX_NAME_BYTES))
    return name


def prepare_run(spec: ExperimentSpec, outputs: Path, name: str | None = None) -> tuple[Dataset, Path]:
    """Validate everything that can fail before training: values, data, output folder."""
    validate(spec)
    if spec.lr_schedule == "plateau" and not spec.lr_decay < 1:
        # Keras's ReduceLROnPlateau rejects a factor of 1, which would never lower the rate.
        raise InvalidValue("lr_decay", spec.lr_decay, _("a factor in (0, 1) with --lr-schedule plateau, for example 0.5"))
    check_name(name)
    data = make_dataset(spec)
    folder = prepare_folder(Path(outputs) / spec.command / (name or run_name(spec)))
    return data, folder


def run_experiment(
    spec: ExperimentSpec,
    outputs: Path,
    name: str | None = None,
    on_epoch=None,
    stop=None,
    engine: str = "auto",
    command_line: list[str] | None = None,
    prepared: tuple[Dataset, Path] | None = None,
) -> RunResult:
    """Train the network of ``spec`` and write its run folder and index row.

    Args:
        spec: the run's parameters (validated here).
        outputs: the outputs root (``outputs/`` by default in the CLI).
        name: folder name replacing the one built from the parameters.
        on_epoch: progress callback, see ``training.train``.
        stop: a ``StopRequest`` that signal handlers set.
        engine: ``auto``, ``fast`` or ``fit``.
        command_line: the arguments, saved in run.json.
        prepared: the result of ``prepare_run`` when the caller already ran it.
    """
    data, folder = prepared or prepare_run(spec, outputs, name)
    started = time.perf_counter()

    from keraslab_cli.core.models import build_mlp, count_neurons, count_trainable_parameters, describe_layers
    from keraslab_cli.core.training import train

    model = build_mlp(spec, data)
    penalties: list[float] = []
    if spec.l1 > 0 or spec.l2 > 0:
        on_epoch = _recording_penalties(model, on_epoch, penalties)
    result = train(model, spec, data, on_epoch=on_epoch, stop=stop, engine=engine)
    history = result.history
    if penalties:
        add_data_losses(history, penalties)
    metrics = compute_metrics(model, spec, data, history)
    metrics.update(
        trainable_params=int(sum(int(np.prod(w.shape)) for w in model.trainable_weights)),
        trainable_params_formula=count_trainable_parameters(spec.layers, spec.units),
        neurons=count_neurons(spec.layers, spec.units),
        learning_rate=spec.resolved_learning_rate,
        batch_size=spec.batch_size or len(data.x_train),
        epochs_run=result.epochs_run,
        train_seconds=result.seconds,
        ms_per_epoch=1000 * result.seconds / max(result.epochs_run, 1),
        restored_epoch=result.restored_epoch,
    )

    layers = describe_layers(model)
    with folder_lock(folder):
        # run.json is written last, so a folder without it contains an unfinished run.
        remove_temporaries(folder)
        (folder / "run.json").unlink(missing_ok=True)
        files = _write_outputs(folder, spec, data, model, result, metrics)
        metrics["total_seconds"] = time.perf_counter() - started
        metrics["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        stopped_epoch = result.epochs_run if result.status in {"diverged", "interrupted", "early_stopped"} else None
        run_json = {
            "keraslab_version": __version__,
            "command": spec.command,
            "status": result.status,
            "stopped_epoch": stopped_epoch,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command_line": command_line or sys.argv,
            "config": spec.to_dict(),
            "metrics": metrics,
            "engine": result.engine,
            "engine_note": result.engine_note,
            "layers": layers,
            "files": files,
            "versions": library_versions(),
        }
        files["run.json"] = str(write_json(folder / "run.json", run_json))
    append_index(
        Path(outputs),
        {
            "time": run_json["created"],
            "command": spec.command,
            "status": result.status,
            "folder": str(folder),
            "final_loss": metrics.get("final_loss"),
            "best_loss": metrics.get("best_loss"),
            "best_epoch": metrics.get("best_epoch"),
            "max_abs_error": metrics.get("max_abs_error"),
            "dense_mse": metrics.get("dense_mse"),
            "val_loss": metrics.get("final_val_loss"),
            "trainable_params": metrics["trainable_params"],
            "seconds": round(metrics["total_seconds"], 3),
            "parameters": spec.to_dict(),
        },
    )
    return RunResult(
        spec=spec,
        folder=folder,
        status=result.status,
        metrics=metrics,
        files=files,
        layers=layers,
        engine=result.engine,
        engine_note=result.engine_note,
        history=history,
        stopped_epoch=stopped_epoch,
        signal_number=result.signal_number,
    )


def _recording_penalties(model, on_epoch, penalties: list[float]):
    """Wrap the epoch callback so that it also records the L1/L2 penalty.

    ``penalties`` receives the penalty of the initial weights now, then the
    penalty after each epoch: entry e is the penalty of the weights that epoch
    e + 1 starts from.
    """
    from keraslab_cli.core.models import regularization_penalty

    penalties.append(regularization_penalty(model))

    def record(epoch: int, logs: dict) -> None:
        penalties.append(regularization_penalty(model))
        if on_epoch is not None:
            on_epoch(epoch, logs)

    return record


def add_data_losses(history: dict[str, list[float]], penalties: list[float]) -> None:
    """Add ``data_loss`` and ``val_data_loss``: Keras's losses minus the L1/L2 penalty.

    Keras adds the penalty to both ``loss`` and ``val_loss``. The training loss
    of an epoch is computed on the weights the epoch starts from, the
    validation loss on the weights it ends with.
    """
    # NOTE: with mini-batches the training loss averages penalties that change
    # after every batch, but data_loss subtracts the epoch's first one. It is
    # exact only when the whole data set is one batch (the default).
    epochs = len(history["loss"])
    history["data_loss"] = [history["loss"][e] - penalties[e] for e in range(epochs)]
    if "val_loss" in history:
        history["val_data_loss"] = [history["val_loss"][e] - penalties[e + 1] for e in range(epochs)]


def predict(model, x: np.ndarray) -> np.ndarray:
    """Evaluate a one-output model on a column of x, as a flat float64 array."""
    from keraslab_cli.core.handnet import evaluate

    return evaluate(model, x).reshape(-1)


def compute_metrics(model, spec: ExperimentSpec, data: Dataset, history: dict[str, list[float]]) -> dict[str, Any]:
    """Measure the run: losses from the history, and F against the clean f."""
    loss = np.asarray(history["loss"], dtype=float)
    metrics: dict[str, Any] = {"loss_name": spec.loss}
    finite = np.isfinite(loss)
    metrics["final_loss"] = float(loss[-1]) if len(loss) else None
    if finite.any():
        best = int(np.nanargmin(np.where(finite, loss, np.nan)))
        metrics["best_loss"] = float(loss[best])
        metrics["best_epoch"] = best + 1
    if history.get("val_loss"):
        val_loss = np.asarray(history["val_loss"], dtype=float)
        metrics["final_val_loss"] = float(val_loss[-1])
        if np.isfinite(val_loss).any():
            best_val = int(np.nanargmin(np.where(np.isfinite(val_loss), val_loss, np.nan)))
            metrics["best_val_loss"] = float(val_loss[best_val])
            metrics["best_val_epoch"] = best_val + 1
            metrics["loss_at_best_val_epoch"] = float(loss[best_val])

    if history.get("data_loss"):
        metrics["final_data_loss"] = float(history["data_loss"][-1])
        from keraslab_cli.core.models import regularization_penalty

        metrics["final_penalty"] = regularization_penalty(model)
    if history.get("val_data_loss"):
        metrics["final_val_data_loss"] = float(history["val_data_loss"][-1])

    x_points = np.concatenate([data.x_train, data.x_val]).reshape(-1)
    f_points = data.target(x_points)
    predicted_points = predict(model, x_points.astype(np.float32).reshape(-1, 1))
    grid = dense_grid(spec.interval)
    f_grid = data.target(grid.reshape(-1))
    predicted_grid = predict(model, grid)
    with np.errstate(all="ignore"):
        metrics["mse"] = float(np.mean((predicted_points - f_points) ** 2))
        metrics["max_abs_error"] = float(np.max(np.abs(predicted_points - f_points)))
        metrics["dense_mse"] = float(np.mean((predicted_grid - f_grid) ** 2))
        metrics["dense_points"] = len(grid)
        metrics["dense_max_abs_error"] = float(np.max(np.abs(predicted_grid - f_grid)))
        metrics["train_mse"] = float(np.mean((predict(model, data.x_train) - data.y_train.reshape(-1)) ** 2))
    return metrics


def describe(spec: ExperimentSpec) -> str:
    """Return a one-line description of the network and training, for plot titles."""
    parts = [
        f"{spec.layers}×{spec.units} {spec.activation}",
        f"{spec.optimizer} lr={spec.resolved_learning_rate:g}",
        _("{epochs} epochs").format(epochs=spec.epochs),
    ]
    if spec.batch_size:
        parts.append(_("batch {size}").format(size=spec.batch_size))
    if spec.normalize:
        parts.append(_("normalized x"))
    for name in ("l1", "l2", "dropout"):
        if getattr(spec, name):
            parts.append(f"{name}={getattr(spec, name):g}")
    if spec.lr_schedule != "constant":
        parts.append(_("schedule {name}").format(name=spec.lr_schedule))
    return " · ".join(parts)


def _write_outputs(folder: Path, spec, data: Dataset, model, result, metrics) -> dict[str, str]:
    from keraslab_cli.core import plots
    from keraslab_cli.core.outputs import write_atomic

    history = result.history
    files: dict[str, str] = {}
    loss_label = spec.loss.upper()
    optional = [column for column in ("val_loss", "data_loss", "val_data_loss") if column in history]
    columns = ["epoch", "loss", *optional, "learning_rate"]
    rows = [
        [epoch + 1] + [history[column][epoch] for column in columns[1:]]
        for epoch in range(len(history["loss"]))
    ]
    files["history.csv"] = str(write_csv(folder / "history.csv", columns, rows))

    title = f"{spec.command} · {describe(spec)}"
    final = metrics.get("final_val_loss", metrics.get("final_loss"))
    stopped = result.epochs_run if result.status in {"diverged", "interrupted", "early_stopped"} else None
    best_epoch = metrics.get("best_val_epoch", metrics.get("best_epoch"))
    loss_title = title + "\n" + _("final training loss ({name}) = {value}").format(name=loss_label, value=_short(metrics.get("final_loss")))
    files["loss.png"] = str(plots.plot_loss(folder / "loss.png", history, loss_title, loss_label, best_epoch, stopped))

    if data.has_validation or spec.sigma > 0:
        split = ["train"] * len(data.x_train) + ["val"] * len(data.x_val)
        points = np.concatenate([data.x_train, data.x_val]).reshape(-1)
        values = np.concatenate([data.y_train, data.y_val]).reshape(-1)
        order = np.argsort(points, kind="stable")
        # str() of a float32 is its shortest text that reads back to the same
        # float32, so a teacher reloading data.csv trains on the exact samples.
        files["data.csv"] = str(write_csv(folder / "data.csv", ["x", "y", "split"], [[str(points[i]), str(values[i]), split[i]] for i in order]))

    if result.status == "diverged":
        # F is not a number after divergence: a fit plot or a model file would
        # mislead, and stale ones from an earlier run of this folder must go.
        for stale in ("fit.png", "model.keras"):
            (folder / stale).unlink(missing_ok=True)
        return files

    grid = dense_grid(spec.interval, defaults.PLOT_POINTS).reshape(-1)
    restored = metrics.get("restored_epoch")
    if restored is not None and result.history.get("val_loss"):
        # F is drawn with the weights early stopping restored, so the caption
        # gives the validation loss of that epoch, not of the last one.
        fit_caption = _("MSE(F, f) on the interval = {value} · validation loss = {loss} (weights of epoch {epoch}, restored by early stopping)")
        final = result.history["val_loss"][restored - 1]
    elif "final_val_loss" in metrics:
        fit_caption = _("MSE(F, f) on the interval = {value} · final validation loss = {loss}")
    else:
        fit_caption = _("MSE(F, f) on the interval = {value} · final loss = {loss}")
    fit_title = title + "\n" + fit_caption.format(value=_short(metrics.get("dense_mse")), loss=_short(final), epoch=restored)
    noisy = spec.sigma > 0 or data.has_validation
    files["fit.png"] = str(
        plots.plot_fit(
            folder / "fit.png",
            grid,
            data.target(grid),
            predict(model, grid.astype(np.float32).reshape(-1, 1)),
            fit_title,
            train_points=(data.x_train.reshape(-1), data.y_train.reshape(-1)) if noisy else None,
            val_points=(data.x_val.reshape(-1), data.y_val.reshape(-1)) if data.has_validation else None,
            true_dashed=noisy,
        )
    )
    files["model.keras"] = str(write_atomic(folder / "model.keras", lambda path: model.save(path), suffix=".keras"))
    return files


def _short(value) -> str:
    from keraslab_cli.core.i18n import format_plot_number

    return format_plot_number(value, 3)


def library_versions() -> dict[str, str]:
    """Return the versions of Python and the libraries a run depends on."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("keras", "torch", "numpy", "matplotlib"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "unknown"
    return versions
