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
