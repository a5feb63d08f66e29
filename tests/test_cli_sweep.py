"""The sweep command through the CLI: dry runs, tables, files, reuse, errors, French."""

import csv
import json
from pathlib import Path

import pytest

SMALL = ("--epochs", "12", "--n", "16")


def sweep(invoke, tmp_path, *args, env=None):
    return invoke("sweep", "approx", *SMALL, "--outputs", tmp_path, "--jobs", "1", *args, env=env)


def test_dry_run_lists_without_training(invoke, tmp_path):
    result = sweep(invoke, tmp_path, "--p", "2:6:2", "--normalize", "both", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "6 runs planned" in result.stdout
    assert result.stdout.count(" train ") == 6
    assert not (tmp_path / "approx").exists()


def test_dry_run_json(invoke, tmp_path):
    result = sweep(invoke, tmp_path, "--p", "2,3", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [run["config"]["units"] for run in document["runs"]] == [2, 3]
    assert all(run["reuse"] is False for run in document["runs"])


def test_sweep_table_files_and_reuse(invoke, tmp_path):
    result = sweep(invoke, tmp_path, "--p", "2,3", "--optimizer", "sgd,adam")
    assert result.exit_code == 0, result.output
    assert "4 configurations ranked by final loss" in result.stdout
    folder = tmp_path / "sweep" / "approx-p=2,3-epochs=12-optimizer=sgd,adam-n=16"
    header = (folder / "sweep.csv").read_text().splitlines()[0].split(",")
    assert len(header) == len(set(header))
    with open(folder / "sweep.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(row["optimizer"], row["learning_rate"]) for row in rows} == {("sgd", "0.01"), ("adam", "0.001")}
    losses = [float(row["final_loss"]) for row in rows]
    assert losses == sorted(losses)
    assert [row["rank"] for row in rows] == ["1", "2", "3", "4"]
    for name in ("losses.png", "fits.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Each run's final loss in the table is the last line of its own history.csv.
    with open(folder / "sweep-runs.csv", newline="") as handle:
        for run in csv.DictReader(handle):
            history = (Path(run["folder"]) / "history.csv").read_text().splitlines()
            assert float(history[-1].split(",")[1]) == pytest.approx(float(run["final_loss"]), rel=1e-12)
    index = (tmp_path / "runs.csv").read_text().splitlines()
    assert len(index) == 1 + 4

    again = sweep(invoke, tmp_path, "--p", "2,3", "--optimizer", "sgd,adam")
    assert again.exit_code == 0, again.output
    assert again.stdout.count("reused") == 4
    assert len((tmp_path / "runs.csv").read_text().splitlines()) == 1 + 4
    forced = sweep(invoke, tmp_path, "--p", "2", "--optimizer", "sgd", "--force")
    assert "reused" not in forced.stdout


def test_json_output_is_only_stdout(invoke, tmp_path):
    result = sweep(invoke, tmp_path, "--p", "2,3", "--repeat", "2", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert len(document["configurations"]) == 2
    assert len(document["runs"]) == 4
    first = document["configurations"][0]
    assert first["final_loss_std"] is not None
    losses = [run["metrics"]["final_loss"] for run in document["runs"] if run["run"] in first["runs"]]
    assert first["final_loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-12)


def test_diverged_run_is_marked(invoke, tmp_path):
    result = sweep(invoke, tmp_path, "--p", "2", "--optimizer", "sgd", "--lr", "0.01,1000")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert "completed" in rows[0]
    assert "diverged" in rows[1]


def test_failed_run_exits_one_after_the_others(invoke, tmp_path):
    blocked = tmp_path / "approx" / "4x3-tanh-rmsprop-lr0.001-e12-s0-n16"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file, not a folder")
    result = sweep(invoke, tmp_path, "--p", "2,3")
    assert result.exit_code == 1
    assert "Run 2 failed" in result.stderr
    assert (tmp_path / "approx" / "4x2-tanh-rmsprop-lr0.001-e12-s0-n16" / "run.json").is_file()


@pytest.mark.parametrize(
    ("args", "flag"),
    [(("--p", "2:x"), "--p"), (("--normalize", "maybe"), "--normalize"), (("--optimizer", "sgd,nope"), "--optimizer"), (("--repeat", "2", "--seed", "1,2"), "--seed")],
)
def test_invalid_values_exit_two(invoke, tmp_path, args, flag):
    result = sweep(invoke, tmp_path, *args)
    assert result.exit_code == 2
    assert flag in result.stderr
    assert "Traceback" not in result.output


def test_sweep_noisy_dry_run(invoke, tmp_path):
    result = invoke("sweep", "noisy", "--sigma", "0.1,0.3", "--val-split", "0,0.2", "--outputs", tmp_path, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    configs = [run["config"] for run in json.loads(result.stdout)["runs"]]
    assert {(config["sigma"], config["val_split"]) for config in configs} == {(0.1, 0.0), (0.1, 0.2), (0.3, 0.0), (0.3, 0.2)}


def test_french_table_and_help(invoke, tmp_path):
    result = sweep(invoke, tmp_path, "--p", "2,3", env={"KERASLAB_LANG": "fr"})
    assert result.exit_code == 0, result.output
    assert "classées par perte finale" in result.stdout
    assert "terminé" in result.stdout
    help_text = invoke("sweep", "approx", "--help", env={"KERASLAB_LANG": "fr"}).stdout
    assert "Balayer les options d'approx" in help_text
    assert "Exécutions par configuration" in help_text


def test_csv_identical_in_both_languages(invoke, tmp_path):
    english = sweep(invoke, tmp_path / "en", "--p", "2", "--name", "same")
    french = sweep(invoke, tmp_path / "fr", "--p", "2", "--name", "same", env={"KERASLAB_LANG": "fr"})
    assert english.exit_code == french.exit_code == 0
    read = lambda root: (root / "sweep" / "same" / "sweep.csv").read_text().split("\n")[0]
    assert read(tmp_path / "en") == read(tmp_path / "fr")


def test_interrupt_reports_and_resumes(tmp_path):
    """SIGINT during the second run: a message on stderr, no empty folder, and the rerun reuses the first."""
    import os
    import signal
    import subprocess
    import sys
    import time

    arguments = [sys.executable, "-c", "from keraslab_cli.entry import main; main()", "sweep", "approx", "--p", "2", "--n", "16",
                 "--epochs", "5,200000", "--jobs", "1", "--outputs", str(tmp_path)]
    environment = {**os.environ, "KERASLAB_LANG": "en", "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if line.startswith("[1/2]") or not line:
            break
    assert lines[-1].startswith("[1/2]"), lines
    time.sleep(1)  # the second run is training by now
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Sweep interrupted: 1 of 2 runs finished." in stderr
    assert "Run the same command again to resume" in stderr
    assert "Traceback" not in stderr
    runs = sorted(path.name for path in (tmp_path / "approx").iterdir() if path.is_dir())
    assert runs == ["4x2-tanh-rmsprop-lr0.001-e5-s0-n16"]
    assert (tmp_path / "approx" / runs[0] / "run.json").is_file()
    assert not (tmp_path / "sweep").exists() or not any((tmp_path / "sweep").iterdir())

    dry_run = subprocess.run(arguments + ["--dry-run", "--json"], capture_output=True, text=True, env=environment, timeout=120)
    assert [run["reuse"] for run in json.loads(dry_run.stdout)["runs"]] == [True, False]


@pytest.mark.parametrize(("value", "corrected"), [("0,3", "0.0,3.0"), ("0,001", "0.001")])
def test_decimal_comma_exits_two(invoke, tmp_path, value, corrected):
    result = invoke("sweep", "noisy", "--sigma", value, "--epochs", "10", "--outputs", tmp_path, "--dry-run")
    assert result.exit_code == 2
    assert "--sigma" in result.stderr
    assert value in result.stderr
    assert corrected in result.stderr
    french = invoke("sweep", "noisy", "--sigma", value, "--dry-run", "--outputs", tmp_path, env={"KERASLAB_LANG": "fr"})
    assert french.exit_code == 2
    assert "nombres décimaux écrits avec un point" in french.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [(("--normalize", "--p", "2"), [True]), (("--p", "2", "--normalize"), [True]), (("--normalize", "both"), [False, True]),
     (("--normalize", "non"), [False]), (("--normalize=oui",), [True])],
)
def test_bare_on_off_flag_means_true(invoke, tmp_path, args, expected):
    result = sweep(invoke, tmp_path, *args, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert [run["config"]["normalize"] for run in json.loads(result.stdout)["runs"]] == expected


def test_bare_nesterov_before_another_flag(invoke, tmp_path):
    result = sweep(invoke, tmp_path, "--optimizer", "sgd", "--nesterov", "--momentum", "0.9", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["runs"][0]["config"]["nesterov"] is True


def test_singular_titles(invoke, tmp_path):
    result = sweep(invoke, tmp_path, "--p", "2", "--dry-run")
    assert "1 run planned" in result.stdout
    french = sweep(invoke, tmp_path, "--p", "2", "--dry-run", env={"KERASLAB_LANG": "fr"})
    assert "1 exécution prévue" in french.stdout


def test_french_swept_epochs_and_timing_columns(invoke, tmp_path):
    result = invoke("sweep", "approx", "--n", "16", "--p", "2", "--epochs", "5,8", "--outputs", tmp_path, "--jobs", "1", env={"KERASLAB_LANG": "fr"})
    assert result.exit_code == 0, result.output
    assert "2 exécutions, une par configuration" in result.stdout
    header = next(line for line in result.stdout.splitlines() if line.startswith("┃"))
    assert "époques" in header
    assert "epochs" not in header
    assert "ms par époque" in header
    folder = tmp_path / "sweep" / "approx-p=2-epochs=5,8-n=16"
    document = json.loads((folder / "sweep.json").read_text())
    for configuration in document["configurations"]:
        runs = [run for run in document["runs"] if run["run"] in configuration["runs"]]
        assert configuration["ms_per_epoch"] == pytest.approx(runs[0]["metrics"]["ms_per_epoch"], rel=1e-12)


def test_noisy_table_ranked_by_mse(invoke, tmp_path):
    result = invoke("sweep", "noisy", "--n", "20", "--p", "2", "--epochs", "6", "--l2", "0,0.1", "--outputs", tmp_path, "--jobs", "1", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ranked_by"] == "dense_mse"
    mse = [configuration["dense_mse"] for configuration in document["configurations"]]
    assert mse == sorted(mse)
    table = invoke("sweep", "noisy", "--n", "20", "--p", "2", "--epochs", "6", "--l2", "0,0.1", "--outputs", tmp_path, "--jobs", "1")
    assert "2 configurations ranked by MSE(F, f) on the interval" in table.stdout
