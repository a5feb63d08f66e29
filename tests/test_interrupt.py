"""Signals sent to real ``keraslab approx`` processes: clean stops and intact files.

Each run's stdout is a pseudo-terminal, as in a student's shell, so the
progress bar shows the epoch reached before the signal is sent.
"""

import csv
import json
import math
import os
import pty
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from keraslab_cli.core.outputs import write_atomic, write_json, append_index

STARTUP_TIMEOUT = 180  # seconds for Python, Keras and torch to start on a loaded machine
EPOCH_PATTERN = re.compile(rb"epoch (\d+)/")
OUTPUT_SUFFIXES = {".png", ".csv", ".json", ".keras"}
TEMPORARY_NAME = re.compile(r"^\..+\.tmp(\.\w+)?$|^\.write-check-")
LOCK_NAME = re.compile(r"^\..+\.lock$")


class Run:
    """A keraslab process writing to a pseudo-terminal, read by a thread."""

    def __init__(self, *arguments: str) -> None:
        leader, follower = pty.openpty()
        environment = {**os.environ, "KERASLAB_LANG": "en", "COLUMNS": "120", "TERM": "xterm"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "keraslab_cli", "approx", *arguments],
            stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE, env=environment,
        )
        os.close(follower)
        self.leader = leader
        self.screen = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.leader, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.screen += chunk

    def epoch_shown(self) -> int:
        epochs = EPOCH_PATTERN.findall(self.screen)
        return int(epochs[-1]) if epochs else 0

    def wait_for_epoch(self, epoch: int) -> int:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            if self.epoch_shown() >= epoch:
                return self.epoch_shown()
            time.sleep(0.02)
        raise AssertionError(f"no progress past epoch {epoch}: {self.screen[-500:]!r}")

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        try:
            stderr = self.process.communicate(timeout=timeout)[1].decode("utf-8", "replace")
        finally:
            self.reader.join(timeout=5)
            os.close(self.leader)
        return self.process.returncode, stderr


def strict_json(path: Path):
    def reject(constant):
        raise ValueError(f"{path}: non-standard JSON constant {constant}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


def check_png(path: Path) -> None:
    import matplotlib.image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3, path
    assert pixels.shape[0] > 100, path
    assert pixels.shape[1] > 100, path
    assert float(np.std(pixels)) > 0.01, f"{path} is blank"


def check_csv(path: Path) -> list[list[str]]:
    rows = list(csv.reader(path.open(encoding="utf-8", newline="")))
    assert rows, f"{path} is empty"
    widths = {len(row) for row in rows}
    assert widths == {len(rows[0])}, f"{path} has rows of widths {widths}"
    if path.name == "history.csv":
        for row in rows[1:]:
            assert int(row[0]) >= 1
            for cell in row[1:]:
                float(cell)
    if path.name == "runs.csv":
        parameters = rows[0].index("parameters")
        for row in rows[1:]:
            assert isinstance(json.loads(row[parameters]), dict)
    return rows


def check_outputs_tree(outputs: Path) -> dict[str, int]:
    """Check that every file under outputs is complete; return counts of what was found."""
    import keras

    counts = {"output": 0, "temporary": 0, "lock": 0}
    for path in sorted(outputs.rglob("*")):
        if path.is_dir():
            continue
        if path.name.startswith("."):
            if LOCK_NAME.match(path.name):
                counts["lock"] += 1
                continue
            assert TEMPORARY_NAME.match(path.name), f"unexpected hidden file {path}"
            counts["temporary"] += 1
            continue
        assert path.suffix in OUTPUT_SUFFIXES, f"unexpected file {path}"
        counts["output"] += 1
        if path.suffix == ".png":
            check_png(path)
        elif path.suffix == ".csv":
            check_csv(path)
        elif path.suffix == ".json":
            document = strict_json(path)
            assert document["status"] in {"completed", "interrupted", "diverged", "early_stopped"}
        elif path.suffix == ".keras":
            model = keras.saving.load_model(path, safe_mode=True)
            assert model.output_shape == (None, 1)
    return counts


@pytest.mark.parametrize(("signal_number", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_signal_saves_partial_run(tmp_path, signal_number, exit_code):
    run = Run("--epochs", "1000000", "--n", "20", "--outputs", str(tmp_path))
    first = run.wait_for_epoch(20)
    started = time.monotonic()
    time.sleep(1.0)
    epoch_at_signal = run.epoch_shown()
    signalled = time.monotonic()
    epochs_per_second = (epoch_at_signal - first) / (signalled - started)
    run.process.send_signal(signal_number)
    code, stderr = run.finish()
    exited_after = time.monotonic() - signalled

    assert code == exit_code, stderr
    assert "Traceback" not in stderr
    assert "Interrupted at epoch" in stderr
    folder = tmp_path / "approx" / "4x10-tanh-rmsprop-lr0.001-e1000000-s0-n20"
    document = strict_json(folder / "run.json")
    assert document["status"] == "interrupted"
    stopped = document["stopped_epoch"]
    assert stopped >= epoch_at_signal
    # Epochs trained after the signal, at the speed measured just before it:
    # the stop delay, overestimated by the progress bar's refresh interval.
    assert epochs_per_second > 0
    assert (stopped - epoch_at_signal) / epochs_per_second < 1.0
    assert exited_after < 60
    history = check_csv(folder / "history.csv")
    assert len(history) - 1 == stopped
    check_png(folder / "loss.png")
    check_png(folder / "fit.png")
    counts = check_outputs_tree(tmp_path)
    assert counts["temporary"] == 0
    index = list(csv.DictReader((tmp_path / "runs.csv").open(encoding="utf-8")))
    assert [row["status"] for row in index] == ["interrupted"]


def test_signal_before_first_epoch(tmp_path):
    run = Run("--epochs", "100", "--n", "20", "--outputs", str(tmp_path))
    # Python and typer start in about half a second; Keras takes seconds more.
    time.sleep(1.5)
    run.process.send_signal(signal.SIGINT)
    code, stderr = run.finish()
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert "Interrupted" in stderr
    run_json = tmp_path / "approx" / "4x10-tanh-rmsprop-lr0.001-e100-s0-n20" / "run.json"
    if run_json.exists():
        # The machine was fast enough for an epoch to finish before the signal.
        assert strict_json(run_json)["status"] == "interrupted"
    check_outputs_tree(tmp_path)


def test_second_signal_stops_at_once(tmp_path):
    run = Run("--epochs", "1000000", "--n", "20", "--outputs", str(tmp_path))
    run.wait_for_epoch(5)
    run.process.send_signal(signal.SIGTERM)
    run.process.send_signal(signal.SIGTERM)
    code, stderr = run.finish()
    assert code == 143, stderr
    assert "Traceback" not in stderr
    check_outputs_tree(tmp_path)


WRITER = """
import sys, itertools
from pathlib import Path
from keraslab_cli.core.outputs import append_index, write_atomic, write_json
folder = Path(sys.argv[1])
for index in itertools.count():
    write_atomic(folder / "big.csv", lambda path: path.write_text("a,b\\n" + "1,2\\n" * 200000))
    write_json(folder / "run.json", {"status": "completed", "values": list(range(20000))})
    append_index(folder, {"command": "approx", "status": "completed", "folder": str(index), "parameters": {"i": index}})
"""


def test_sigkill_during_writes_leaves_whole_files(tmp_path):
    generator = random.Random(8)
    for _attempt in range(6):
        process = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)])
        time.sleep(generator.uniform(0.8, 2.0))
        process.kill()
        process.wait(timeout=30)
        assert (tmp_path / "big.csv").read_text().count("\n") == 200001
        assert strict_json(tmp_path / "run.json")["values"][-1] == 19999
        rows = check_csv(tmp_path / "runs.csv")
        assert rows[0][0] == "time"
        assert sum(1 for row in rows if row[0] == "time") == 1
    hidden = [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]
    for name in hidden:
        assert TEMPORARY_NAME.match(name) or LOCK_NAME.match(name), name


@pytest.mark.slow
def test_random_kills_leave_readable_outputs(tmp_path):
    """Kill runs at random moments of training and saving, then read every file."""
    generator = random.Random(2024)
    signals = [signal.SIGKILL, signal.SIGKILL, signal.SIGKILL, signal.SIGKILL, signal.SIGINT, signal.SIGTERM]
    configurations = [("--seed", str(index % 3)) for index in range(len(signals))]
    for batch in range(0, len(signals), 3):
        runs = []
        for index in range(batch, batch + 3):
            run = Run("--epochs", "400", "--n", "20", "--outputs", str(tmp_path), *configurations[index])
            runs.append((run, signals[index]))
        for run, signal_number in runs:
            try:
                run.wait_for_epoch(1)
            except AssertionError:
                pass  # finished before the progress bar showed; nothing to time
            time.sleep(generator.uniform(0.0, 4.0))
            if run.process.poll() is None:
                run.process.send_signal(signal_number)
        for run, _signal in runs:
            code, stderr = run.finish()
            # A signal that lands after keraslab returned, while the interpreter
            # shuts down, ends the process by that signal; shells show 130 or 143.
            assert code in {0, 130, 143, -signal.SIGKILL, -signal.SIGINT, -signal.SIGTERM}, stderr
            assert "Traceback" not in stderr
    counts = check_outputs_tree(tmp_path)
    assert counts["output"] > 0

    # A complete run of a configuration removes what killed runs left in its folder.
    run = Run("--epochs", "5", "--n", "20", "--outputs", str(tmp_path), "--name", "4x10-tanh-rmsprop-lr0.001-e400-s0-n20")
    code, stderr = run.finish(timeout=STARTUP_TIMEOUT)
    assert code == 0, stderr
    folder = tmp_path / "approx" / "4x10-tanh-rmsprop-lr0.001-e400-s0-n20"
    assert not [path for path in folder.iterdir() if TEMPORARY_NAME.match(path.name)]
    assert strict_json(folder / "run.json")["status"] == "completed"
    check_outputs_tree(tmp_path)


def test_temporary_pattern_matches_write_atomic(tmp_path):
    names = []
    write_atomic(tmp_path / "model.keras", lambda path: names.append(path.name) or path.write_bytes(b""), suffix=".keras")
    write_json(tmp_path / "run.json", {"loss": math.nan})
    append_index(tmp_path, {"command": "approx"})
    assert TEMPORARY_NAME.match(names[0])
    for path in tmp_path.iterdir():
        if path.name.startswith("."):
            assert LOCK_NAME.match(path.name), path.name
