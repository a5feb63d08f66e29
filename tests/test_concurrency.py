"""Many keraslab processes writing the same outputs folder at once."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from keraslab_cli.core.outputs import INDEX_COLUMNS

PROCESSES = 8
FAST = ("--epochs", "20", "--n", "10", "--quiet")
RUN_FILES = ("fit.png", "loss.png", "history.csv", "model.keras", "run.json")


def run_all(outputs: Path, configurations: list[tuple[str, ...]]) -> list[subprocess.CompletedProcess]:
    """Start every configuration at the same time and wait for all of them."""
    # One thread each, so eight processes share the cores without oversubscription.
    environment = {**os.environ, "KERASLAB_LANG": "en", "OMP_NUM_THREADS": "1"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "keraslab_cli", "approx", *FAST, "--outputs", str(outputs), *arguments],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
        )
        for arguments in configurations
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return results


def read_index(outputs: Path) -> list[dict[str, str]]:
    text = (outputs / "runs.csv").read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert text.count("time,command,status") == 1
    rows = list(csv.DictReader(text.splitlines()))
    for row in rows:
        assert list(row) == list(INDEX_COLUMNS)
        assert None not in row.values(), row
        assert row["command"] == "approx"
        assert row["status"] == "completed"
        assert json.loads(row["parameters"])["epochs"] == 20
        float(row["final_loss"])
    return rows


def check_run_folder(folder: Path, seed: int) -> None:
    import keras
    import matplotlib.image

    for name in RUN_FILES:
        assert (folder / name).is_file(), name
    document = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    assert document["status"] == "completed"
    assert document["config"]["seed"] == seed
    history = list(csv.reader((folder / "history.csv").open(encoding="utf-8")))
    assert len(history) == 21
    assert float(history[-1][1]) == document["metrics"]["final_loss"]
    for plot in ("fit.png", "loss.png"):
        assert matplotlib.image.imread(folder / plot).shape[0] > 100
    model = keras.saving.load_model(folder / "model.keras")
    assert model.count_params() == document["metrics"]["trainable_params"]
    leftovers = [path.name for path in folder.iterdir() if ".tmp" in path.name or path.name.startswith(".write-check")]
    assert leftovers == []


def test_same_configuration_at_once(tmp_path):
    results = run_all(tmp_path, [() for _index in range(PROCESSES)])
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    folders = list((tmp_path / "approx").iterdir())
    run_folders = [folder for folder in folders if folder.is_dir()]
    assert [folder.name for folder in run_folders] == ["4x10-tanh-rmsprop-lr0.001-e20-s0-n10"]
    check_run_folder(run_folders[0], seed=0)
    rows = read_index(tmp_path)
    assert len(rows) == PROCESSES
    assert {row["folder"] for row in rows} == {str(run_folders[0])}
    # Same flags, same seed: every process computed the same numbers.
    assert len({row["final_loss"] for row in rows}) == 1


def test_different_configurations_at_once(tmp_path):
    results = run_all(tmp_path, [("--seed", str(seed)) for seed in range(PROCESSES)])
    for result in results:
        assert result.returncode == 0, result.stderr
    rows = read_index(tmp_path)
    assert len(rows) == PROCESSES
    seeds = sorted(json.loads(row["parameters"])["seed"] for row in rows)
    assert seeds == list(range(PROCESSES))
    for row in rows:
        folder = Path(row["folder"])
        seed = json.loads(row["parameters"])["seed"]
        assert folder.name == f"4x10-tanh-rmsprop-lr0.001-e20-s{seed}-n10"
        check_run_folder(folder, seed=seed)
