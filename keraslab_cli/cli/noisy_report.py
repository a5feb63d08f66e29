"""The overfitting report printed after a noisy run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from keraslab_cli.core.i18n import _, format_number

# The final validation loss must exceed its minimum by this share to call it overfitting.
OVERFITTING_MARGIN = 0.10


def overfitting_verdict(metrics: dict) -> str | None:
    """Classify the end of a run with validation data.

    Returns:
        ``"overfitting"`` when the final validation loss is more than
        ``OVERFITTING_MARGIN`` above its minimum while the training loss went on
        falling after that epoch. ``"unstable"`` when the validation loss rose
        as much but the training loss did not fall. ``"none"`` otherwise, and
        None without validation data.
    """
    best, final = metrics.get("best_val_loss"), metrics.get("final_val_loss")
    if best is None or final is None:
        return None
    if not (best > 0 and final > best * (1 + OVERFITTING_MARGIN)):
        return "none"
    train_at_best, final_train = metrics.get("loss_at_best_val_epoch"), metrics.get("final_loss")
    if train_at_best is not None and final_train is not None and final_train < train_at_best:
        return "overfitting"
    return "unstable"


def overfitting_table(metrics: dict, sigma: float) -> Table:
    """Build the table of training against validation loss, the error against f and σ²."""
    table = Table(title=_("Overfitting"), title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")

    def losses(final, best, epoch) -> str:
        return _("final {final} · lowest {best} at epoch {epoch}").format(
            final=format_number(final), best=format_number(best), epoch=epoch if epoch is not None else "—"
        )

    table.add_row(_("Training loss"), losses(metrics.get("final_loss"), metrics.get("best_loss"), metrics.get("best_epoch")))
    has_validation = metrics.get("final_val_loss") is not None
    if has_validation:
        table.add_row(_("Validation loss"), losses(metrics.get("final_val_loss"), metrics.get("best_val_loss"), metrics.get("best_val_epoch")))
        table.add_row(_("Gap validation − training (final)"), format_number(metrics["final_val_loss"] - metrics["final_loss"]))
    else:
        table.add_row(_("Validation loss"), _("none (--val-split 0)"))
    if metrics.get("final_penalty") is not None:
        table.add_row(_("L1/L2 penalty"), _("{penalty} at the end, included in both losses above as in Keras").format(penalty=format_number(metrics["final_penalty"])))
        without = _("training {training}").format(training=format_number(metrics.get("final_data_loss")))
        if metrics.get("final_val_data_loss") is not None:
            without += " · " + _("validation {validation}").format(validation=format_number(metrics["final_val_data_loss"]))
        table.add_row(_("Final loss without the penalty"), without)
    if metrics.get("restored_epoch"):
        table.add_row(_("Early stopping"), _("weights restored from epoch {epoch}").format(epoch=metrics["restored_epoch"]))
    table.add_row(_("MSE of F against the true f"), _("{value} (on {points} evenly spaced points of the interval)").format(
        value=format_number(metrics.get("dense_mse")), points=metrics.get("dense_points", "—")))
    table.add_row("σ²", _("{value}: the loss that even a perfect model has on the noisy targets").format(value=format_number(sigma**2)))
    return table


def print_noisy_report(console: Console, result) -> None:
    """Print the overfitting table and a one-line verdict."""
    metrics = result.metrics
    console.print(overfitting_table(metrics, result.spec.sigma))
    verdict = overfitting_verdict(metrics)
    if verdict is None:
        return
    values = {
        "epoch": metrics.get("best_val_epoch"),
        "best": format_number(metrics.get("best_val_loss")),
        "final": format_number(metrics.get("final_val_loss")),
        "margin": int(OVERFITTING_MARGIN * 100),
        "restored": metrics.get("restored_epoch"),
    }
    if verdict == "overfitting" and values["restored"]:
        message = _("The validation loss rose from {best} to {final} after epoch {epoch}, so early stopping restored the weights of epoch {restored}: the saved model is the one before overfitting.")
        console.print(message.format(**values))
    elif verdict == "overfitting":
        message = _("Overfitting since epoch {epoch}: the validation loss has risen from {best} to {final} while the training loss kept falling.")
        console.print("[bold yellow]" + message.format(**values) + "[/]")
    elif verdict == "unstable":
        message = _("The validation loss has risen from {best} (epoch {epoch}) to {final}, but the training loss has not fallen since: training is unstable rather than overfitting, so try a lower --lr.")
        console.print("[bold yellow]" + message.format(**values) + "[/]")
    else:
        console.print(_("No clear overfitting: the final validation loss is within {margin} % of its minimum.").format(**values))
