"""Writing run outputs safely: atomic files, run folders and the runs index.

Every file is written to a temporary file in its destination folder, then
renamed over the destination, so a reader never sees a half-written file even
when the process is killed. The index ``runs.csv`` is appended under a lock
file, so concurrent processes never interleave or lose rows.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from keraslab_cli.core.errors import OutputError
from keraslab_cli.core.i18n import _

INDEX_NAME = "runs.csv"
INDEX_COLUMNS = (
    "time", "command", "status", "folder", "final_loss", "best_loss", "best_epoch",
    "max_abs_error", "dense_mse", "val_loss", "trainable_params", "seconds", "parameters",
)
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
    """Write a JSON document atomically, indented, with a final newline."""
    return write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=_json_default) + "\n")


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
        OutputError: a file stands where a folder should be, or the folder is
            not writable; raised before any training so no work is lost.
    """
    folder = Path(folder)
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.is_dir():
            raise OutputError(_("Cannot create the output folder {folder}: {path} is a file, not a folder. Choose another --outputs or --name, or move that file.").format(folder=folder, path=parent))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor, probe = tempfile.mkstemp(prefix=".write-check-", dir=folder)
        os.close(descriptor)
        os.unlink(probe)
    except OSError as error:
        raise OutputError(_("Cannot write to the output folder {folder}: {reason}. Choose a writable folder with --outputs.").format(folder=folder, reason=error.strerror or error)) from None
    return folder


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
    """Append one row to ``outputs/runs.csv`` under a lock, writing the header if new."""
    outputs = Path(outputs)
    index = outputs / INDEX_NAME
    lock = FileLock(str(outputs / f".{INDEX_NAME}.lock"), timeout=LOCK_TIMEOUT_SECONDS)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    with lock:
        if not index.exists() or index.stat().st_size == 0:
            writer.writerow(INDEX_COLUMNS)
        writer.writerow([_index_cell(row.get(column)) for column in INDEX_COLUMNS])
        with index.open("a", encoding="utf-8") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
    return index


def _index_cell(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=_json_default)
    if value is None:
        return ""
    return value
