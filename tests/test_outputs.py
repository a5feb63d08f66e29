"""Unit tests of core/outputs.py: atomic writes, run folders, locks and the runs index."""

import csv
import io
import json
import math
import multiprocessing
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

from keraslab_cli.core import outputs
from keraslab_cli.core.errors import OutputError
from keraslab_cli.core.outputs import (
    INDEX_COLUMNS,
    append_index,
    folder_lock,
    prepare_folder,
    remove_temporaries,
    strict_json,
    write_atomic,
    write_bytes,
    write_csv,
    write_json,
    write_text,
)


def strict_loads(text: str):
    """Parse JSON as strict parsers do: NaN and Infinity are errors."""
    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def test_write_text_content_and_no_temporary(tmp_path):
    path = write_text(tmp_path / "notes.txt", "époque 1\n")
    assert path == tmp_path / "notes.txt"
    assert path.read_text(encoding="utf-8") == "époque 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_write_bytes_overwrites(tmp_path):
    write_bytes(tmp_path / "data.bin", b"old")
    write_bytes(tmp_path / "data.bin", b"\x00new")
    assert (tmp_path / "data.bin").read_bytes() == b"\x00new"


def test_new_file_permissions_follow_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        path = write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_failed_writer_keeps_previous_file(tmp_path):
    target = tmp_path / "history.csv"
    target.write_text("epoch,loss\n1,0.5\n")

    def half_then_fail(temporary: Path) -> None:
        temporary.write_text("epoch,lo")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(target, half_then_fail)
    assert target.read_text() == "epoch,loss\n1,0.5\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]


def test_interrupt_during_write_removes_temporary(tmp_path):
    def interrupted(temporary: Path) -> None:
        temporary.write_bytes(b"\x89PNG")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "fit.png", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_temporary_name_is_hidden_and_keeps_suffix(tmp_path):
    seen = []
    write_atomic(tmp_path / "model.keras", lambda temporary: seen.append(temporary) or temporary.write_bytes(b"zip"), suffix=".keras")
    (temporary,) = seen
    assert temporary.parent == tmp_path
    assert temporary.name.startswith(".model.keras.")
    assert temporary.name.endswith(".tmp.keras")
    assert not temporary.exists()


def test_write_json_turns_non_finite_into_null(tmp_path):
    document = {"final_loss": math.inf, "losses": [1.5, math.nan, np.float32("inf")], "best": np.float64(0.25), "epochs": np.int64(3), "shape": (1, 2)}
    path = write_json(tmp_path / "run.json", document)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    parsed = strict_loads(text)
    assert parsed == {"final_loss": None, "losses": [1.5, None, None], "best": 0.25, "epochs": 3, "shape": [1, 2]}


def test_strict_json_keeps_accents_and_paths(tmp_path):
    text = strict_json({"folder": tmp_path, "label": "époque"})
    assert strict_loads(text) == {"folder": str(tmp_path), "label": "époque"}


def test_write_csv_round_trip(tmp_path):
    path = write_csv(tmp_path / "h.csv", ["epoch", "loss"], [[1, 0.5], [2, math.inf]])
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows == [["epoch", "loss"], ["1", "0.5"], ["2", "inf"]]
    assert float(rows[2][1]) == math.inf


def test_prepare_folder_creates_parents(tmp_path):
    folder = prepare_folder(tmp_path / "outputs" / "approx" / "run")
    assert folder.is_dir()
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_prepare_folder_file_in_the_way(tmp_path, depth):
    blocker = tmp_path / "outputs"
    blocker.write_text("not a folder")
    folder = blocker.joinpath(*["sub"] * depth) if depth else blocker
    with pytest.raises(OutputError) as error:
        prepare_folder(folder)
    assert str(blocker) in str(error.value)
    assert "is a file" in str(error.value)
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_prepare_folder_read_only(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError) as error:
            prepare_folder(locked / "run")
    finally:
        locked.chmod(0o700)
    assert str(locked / "run") in str(error.value)
    assert "--outputs" in str(error.value)


def test_prepare_folder_write_failure(tmp_path, monkeypatch):
    def no_space(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.tempfile, "mkstemp", no_space)
    with pytest.raises(OutputError) as error:
        prepare_folder(tmp_path / "run")
    assert "No space left on device" in str(error.value)
    assert "--outputs" in str(error.value)


def test_remove_temporaries_only_removes_temporaries(tmp_path):
    keep = ["fit.png", "run.json", ".fit.png.lock"]
    stale = [".fit.png.abc123.tmp", ".model.keras.x1.tmp.keras", ".write-check-9f"]
    for name in keep + stale:
        (tmp_path / name).write_bytes(b"")
    removed = remove_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_folder_lock_times_out(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "LOCK_TIMEOUT_SECONDS", 0.2)
    folder = tmp_path / "run"
    folder.mkdir()
    holder = FileLock(str(tmp_path / ".run.lock"))
    with holder:
        with pytest.raises(OutputError) as error:
            with folder_lock(folder):
                pass
    assert str(folder) in str(error.value)
    with folder_lock(folder):
        pass


def test_append_index_header_once(tmp_path):
    append_index(tmp_path, {"command": "approx", "status": "completed", "folder": "a", "final_loss": 0.5, "parameters": {"units": 10, "function": "cos(x), sin(x)"}})
    append_index(tmp_path, {"command": "noisy", "status": "diverged", "folder": "b", "final_loss": None})
    rows = list(csv.DictReader((tmp_path / "runs.csv").open(encoding="utf-8")))
    assert list(rows[0]) == list(INDEX_COLUMNS)
    assert [row["folder"] for row in rows] == ["a", "b"]
    assert json.loads(rows[0]["parameters"]) == {"function": "cos(x), sin(x)", "units": 10}
    assert rows[1]["final_loss"] == ""
    assert (tmp_path / "runs.csv").read_text().count("time,command") == 1


def test_append_index_parameter_columns(tmp_path):
    append_index(tmp_path, {"command": "approx", "status": "completed", "folder": "a", "parameters": {"units": 5, "epochs": 1000, "interval": [0.0, 5.0], "normalize": True}})
    rows = list(csv.DictReader((tmp_path / "runs.csv").open(encoding="utf-8")))
    assert rows[0]["units"] == "5"
    assert rows[0]["epochs"] == "1000"
    assert rows[0]["interval"] == "0.0 5.0"
    assert rows[0]["normalize"] == "True"
    assert rows[0]["command"] == "approx"


def test_append_index_keeps_older_header(tmp_path):
    index = tmp_path / "runs.csv"
    index.write_text("time,command,folder,parameters\n2026-01-01,approx,old,{}\n", encoding="utf-8")
    append_index(tmp_path, {"time": "2026-12-04", "command": "noisy", "folder": "new", "final_loss": 0.1, "parameters": {"units": 3}})
    rows = list(csv.DictReader(index.open(encoding="utf-8")))
    assert list(rows[1]) == ["time", "command", "folder", "parameters"]
    assert rows[0]["folder"] == "old"
    assert rows[1]["folder"] == "new"
    assert json.loads(rows[1]["parameters"]) == {"units": 3}


def _append_many(arguments):
    folder, worker, count = arguments
    for index in range(count):
        append_index(Path(folder), {"command": "approx", "folder": f"w{worker}-{index}", "parameters": {"padding": "x" * 3000}})


def test_append_index_from_processes(tmp_path):
    workers, count = 6, 15
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_append_many, [(str(tmp_path), worker, count) for worker in range(workers)])
    rows = list(csv.DictReader((tmp_path / "runs.csv").open(encoding="utf-8")))
    assert len(rows) == workers * count
    assert sorted(row["folder"] for row in rows) == sorted(f"w{w}-{i}" for w in range(workers) for i in range(count))
    for row in rows:
        assert json.loads(row["parameters"]) == {"padding": "x" * 3000}
