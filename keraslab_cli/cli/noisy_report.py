"""The overfitting report printed after a noisy run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from keraslab_cli.core.i18n import _, format_number

# The final validation loss must exceed its minimum by this share to call it overfitting.
OVERFITTING_MARGIN = 0.10


def overfitting_epoch(metrics: dict) -> int | None:
    """Return the epoch from which the validation loss rose clearly, or None."""
    best, final = metrics.get("best_val_loss"), metrics.get("final_val_loss")
    if best is None or final is None or not best > 0:
        return None
    if final > best * (1 + OVERFITTING_MARGIN):
        return metrics.get("best_val_epoch")
    return None


def print_noisy_report(console: Console, result) -> None:
    """Print training against validation loss, the error against f, σ² and a verdict."""
    metrics = result.metrics
    sigma = result.spec.sigma
    table = Table(title=_("Overfitting"), title_justify="left", show_header=True)
    table.add_column("")
    table.add_column(_("training"), justify="right")
    table.add_column(_("validation"), justify="right")
    table.add_row(_("final loss"), format_number(metrics.get("final_loss")), format_number(metrics.get("final_val_loss")))
    table.add_row(
        _("best loss (epoch)"),
        f"{format_number(metrics.get('best_loss'))} ({metrics.get('best_epoch', '—')})",
        f"{format_number(metrics.get('best_val_loss'))} ({metrics.get('best_val_epoch', '—')})",
    )
    gap = None
    if metrics.get("final_val_loss") is not None and metrics.get("final_loss") is not None:
        gap = metrics["final_val_loss"] - metrics["final_loss"]
    table.add_row(_("gap validation − training"), "", format_number(gap))
    table.add_row(_("MSE of F against the true f (dense grid)"), format_number(metrics.get("dense_mse")), "")
    table.add_row(_("σ² (loss of a perfect model on noisy targets)"), format_number(sigma**2), "")
    console.print(table)
    epoch = overfitting_epoch(metrics)
    if epoch is not None:
        console.print("[bold yellow]" + _("Overfitting since epoch {epoch}: the validation loss has risen from {best} to {final}.").format(
            epoch=epoch, best=format_number(metrics["best_val_loss"]), final=format_number(metrics["final_val_loss"])) + "[/]")
    elif metrics.get("final_val_loss") is not None:
        console.print(_("No clear overfitting: the final validation loss is within {margin} % of its minimum.").format(margin=int(OVERFITTING_MARGIN * 100)))
