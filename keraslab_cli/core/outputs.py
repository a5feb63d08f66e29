"""Writing run outputs safely: atomic files, run folders and the runs index.

Every file is written to a temporary file in its destination folder, then
renamed over the destination, so a reader never sees a half-written file even
when the process is killed. Temporary names start with ``.`` and contain
``.tmp``. A process killed by SIGKILL leaves its temporary file behind, so
``remove_temporaries`` deletes it the next time a run writes that folder. The
index ``runs.csv`` is appended under a lock file with one ``write`` call per
row, so concurrent processes never interleave or lose rows. Lock files
(``.NAME.lock``, empty) stay in place, as filelock leaves them on Unix.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from keraslab_cli.core.errors import OutputError
from keraslab_cli.core.i18n import _
from keraslab_cli.core.spec import field_names

INDEX_NAME = "runs.csv"
RESULT_COLUMNS = (
    "time", "command", "status", "folder", "final_loss", "best_loss", "best_epoch",
    "max_abs_error", "dense_mse", "val_loss", "trainable_params", "seconds",
)
# One column per parameter, so that shell scripts can select runs with cut or
# awk, then every parameter again as one JSON object.
INDEX_COLUMNS = (*RESULT_COLUMNS, *(name for name in field_names() if name != "command"), "parameters")
LOCK_TIMEOUT_SECONDS = 120


def write_atomic(path: Path, writer: Callable[[Path], None], suffix: str = "") -> Path:
    """Write a file by calling ``writer`` on a temporary path, then renaming it.

    Args:
        path: the final destination.
        writer: writes the whole content to the path it receives.
        suffix: extension the temporary name must keep (Keras wants ``.keras``).
    """
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(descriptor)
    try:
        writer(Path(temporary))
        # mkstemp creates 0600 files; give the usual permissions of a new file.
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> Path:
    """Write a UTF-8 text file atomically."""
    return write_atomic(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def write_bytes(path: Path, data: bytes) -> Path:
    """Write a binary file atomically."""
    return write_atomic(path, lambda temporary: temporary.write_bytes(data))


def write_json(path: Path, data: Any) -> Path:
    """Write a JSON document atomically, indented, with a final newline.

    NaN and infinite numbers (the loss of a diverged run) are written as
    ``null``, because strict JSON parsers reject ``NaN`` and ``Infinity``.
    """
    return write_text(path, strict_json(data, indent=2) + "\n")


def strict_json(data: Any, **options: Any) -> str:
    """Serialize to standard JSON, turning NaN and infinities into null."""
    return json.dumps(_finite_only(data), ensure_ascii=False, allow_nan=False, default=_json_default, **options)


def _finite_only(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _finite_only(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_only(item) for item in value]
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_csv(path: Path, header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Path:
    """Write a CSV file atomically (comma-separated, point as decimal separator)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(header))
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def prepare_folder(folder: Path) -> Path:
    """Create a run folder (and its parents) and check that it can be written.

    Raises:
        OutputError: a file is where a folder should be, or the folder is
            not writable; raised before any training so no work is lost.
    """
    folder = Path(folder)
    for parent in [folder, *folder.parents]:
        try:
            blocked = parent.exists() and not parent.is_dir()
        except OSError as error:
            raise OutputError(_("Cannot write to the output folder {folder}: {reason}. Choose a writable folder with --outputs.").format(folder=folder, reason=error.strerror or error)) from None
        if blocked:
            raise OutputError(_("Cannot create the output folder {folder}: {path} is a file, not a folder. Choose another --outputs or --name, or move that file.").format(folder=folder, path=parent))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor, probe = tempfile.mkstemp(prefix=".write-check-", dir=folder)
        os.close(descriptor)
        os.unlink(probe)
    except OSError as error:
        raise OutputError(_("Cannot write to the output folder {folder}: {reason}. Choose a writable folder with --outputs.").format(folder=folder, reason=error.strerror or error)) from None
    return folder


TEMPORARY_PATTERNS = (".*.tmp*", ".write-check-*")


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files that killed processes left in a run folder.

    Call it only while holding ``folder_lock(folder)``: every write to a run
    folder happens under that lock, so any temporary file found then belongs
    to a process that died.
    """
    removed = []
    for pattern in TEMPORARY_PATTERNS:
        for path in Path(folder).glob(pattern):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextmanager
def folder_lock(folder: Path):
    """Hold an exclusive lock on a run folder while its files are written."""
    lock = FileLock(str(folder.parent / f".{folder.name}.lock"), timeout=LOCK_TIMEOUT_SECONDS)
    try:
        with lock:
            yield
    except Timeout:
        raise OutputError(_("Timed out after {seconds} s waiting for another keraslab process writing {folder}.").format(seconds=LOCK_TIMEOUT_SECONDS, folder=folder)) from None


def append_index(outputs: Path, row: dict[str, Any]) -> Path:
    """Append one row to ``outputs/runs.csv`` under a lock, writing the header if new.

    The values of ``row["parameters"]`` also fill the per-parameter columns. An
    index written by an older keraslab keeps its own header, and new rows
    follow it, so existing rows stay aligned.
    """
    outputs = Path(outputs)
    index = outputs / INDEX_NAME
    lock = FileLock(str(outputs / f".{INDEX_NAME}.lock"), timeout=LOCK_TIMEOUT_SECONDS)
    values = {**(row.get("parameters") or {}), **row}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    with lock:
        columns = _existing_header(index)
        if columns is None:
            columns = list(INDEX_COLUMNS)
            writer.writerow(columns)
        writer.writerow([_index_cell(values.get(column)) for column in columns])
        # One write() on an O_APPEND descriptor: a process killed here leaves
        # the row whole or absent, never half of it.
        descriptor = os.open(index, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(descriptor, buffer.getvalue().encode("utf-8"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    return index


def _existing_header(index: Path) -> list[str] | None:
    """Return the header of an existing, non-empty index, or None."""
    if not index.exists() or index.stat().st_size == 0:
        return None
    with index.open(encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle), None) or None


def _index_cell(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=_json_default)
    if value is None:
        return ""
    return value
