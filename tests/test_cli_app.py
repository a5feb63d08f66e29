"""The application shell: help without arguments, command summaries, choice suggestions."""

import json

import pytest

from keraslab_cli.cli.app import first_sentence


def test_no_arguments_prints_help_once(invoke):
    result = invoke()
    assert result.exit_code == 2
    assert result.stdout.count("Usage:") == 1
    for command in ("handnet", "predict", "approx", "noisy", "sweep", "smallest"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Train a network. Then save it.", "Train a network."),
        ("Build a network (weights: by hand, or from a file). More.", "Build a network (weights: by hand, or from a file)."),
        ("Run a study: every combination.", "Run a study."),
        ("Cherche le plus petit réseau : le moins de paramètres.", "Cherche le plus petit réseau."),
        ("Version 0.1 of f(x) = 2.5 x", "Version 0.1 of f(x) = 2.5 x"),
    ],
)
def test_first_sentence_cuts_outside_brackets(text, expected):
    assert first_sentence(text) == expected


@pytest.mark.parametrize(("value", "suggestion"), [("sdg", "sgd"), ("adamm", "adam"), ("rmsporp", "rmsprop")])
def test_mistyped_optimizer_suggests_closest(invoke, tmp_path, value, suggestion):
    result = invoke("approx", "--optimizer", value, "--outputs", tmp_path)
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2
    assert f"--optimizer: {value}" in message
    assert f"(did you mean {suggestion}?)" in message
    assert not any(tmp_path.iterdir())


def test_optimizer_name_is_case_insensitive(invoke, tmp_path):
    result = invoke("approx", "--optimizer", "SGD", "--activation", "ReLU", "--epochs", "2", "--n", "10", "--outputs", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)["config"]
    assert config["optimizer"] == "sgd"
    assert config["activation"] == "relu"
    assert config["learning_rate"] == 0.01


def test_narrow_loss_range_gets_readable_ticks():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keraslab_cli.core.plots import label_narrow_log_axis

    figure, axis = plt.subplots()
    losses = [4.96 - 0.002 * epoch for epoch in range(400)]
    axis.plot(losses)
    axis.set_yscale("log")
    # Lists and the arrays that Matplotlib lines hold are both accepted.
    label_narrow_log_axis(axis, [losses, axis.lines[0].get_ydata(), None])
    figure.canvas.draw()
    labels = [tick.get_text() for tick in axis.get_yticklabels() if tick.get_text()]
    plt.close(figure)
    assert len(labels) >= 4
    assert all("10" not in label for label in labels)


def readme(name: str) -> str:
    from pathlib import Path

    return (Path(__file__).resolve().parent.parent / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["README.md", "README.fr.md"])
def test_every_command_and_flag_documented(name):
    from keraslab_cli.cli.options import TRAINING_OPTIONS

    text = readme(name)
    for command in ("handnet", "predict", "approx", "noisy", "sweep", "smallest"):
        assert f"keraslab {command}" in text, command
    for option in TRAINING_OPTIONS:
        assert option.flags[0].split("/")[0] in text, option.flags[0]


def test_readme_network_file_example_holds(invoke, tmp_path):
    """The README's TOML network and its --expect value agree."""
    import re

    text = readme("README.md")
    network = re.search(r"```toml\n(.*?)```", text, flags=re.DOTALL).group(1)
    command = re.search(r"keraslab handnet my-net\.toml (--at \S+) --expect (\S+) --tol (\S+)", text)
    path = tmp_path / "my-net.toml"
    path.write_text(network, encoding="utf-8")
    result = invoke("handnet", path, "--at", command.group(1).split()[1], "--expect", command.group(2), "--tol", command.group(3), "--outputs", tmp_path, "--quiet")
    assert result.exit_code == 0, result.output


def test_readme_index_column_example():
    """The README's awk example selects the units column of runs.csv."""
    import re

    from keraslab_cli.core.outputs import INDEX_COLUMNS

    for name in ("README.md", "README.fr.md"):
        column = int(re.search(r"awk -F, 'NR > 1 && \$(\d+) == 5'", readme(name)).group(1))
        assert INDEX_COLUMNS[column - 1] == "units", name
