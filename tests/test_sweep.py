"""The sweep core: value lists and ranges, plans, reuse, statistics, workers, figures."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from keraslab_cli.core.errors import InvalidValue
from keraslab_cli.core.spec import ExperimentSpec
from keraslab_cli.core.sweep import (
    RunOutcome,
    parse_values,
    plan_sweep,
    run_specs_in_one_worker,
    run_sweep,
    split_items,
    summarize,
    sweep_name,
    trainable_parameters,
    varying_fields,
    write_sweep_outputs,
)

SMALL = {"epochs": "15", "n": "16", "units": "2"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("field", "text", "expected"),
    [
        ("units", "2,5,10", [2, 5, 10]),
        ("units", "2:10:2", [2, 4, 6, 8, 10]),
        ("units", "3:5", [3, 4, 5]),
        ("units", "2,4,2:6:2", [2, 4, 6]),
        ("learning_rate", "0.1:0.3:0.1", [0.1, 0.2, 0.3]),
        ("learning_rate", "default,0.01", [None, 0.01]),
        ("normalize", "both", [False, True]),
        ("normalize", "true,no", [True, False]),
        ("nesterov", "off", [False]),
        ("batch_size", "none,8", [None, 8]),
        ("optimizer", "sgd, adam", ["sgd", "adam"]),
        ("interval", "0 5,-1 1", [(0.0, 5.0), (-1.0, 1.0)]),
        ("function", "maximum(x, 0),sin(x)", ["maximum(x, 0)", "sin(x)"]),
    ],
)
def test_values_expand(field, text, expected):
    assert parse_values(field, text) == expected


@pytest.mark.parametrize(
    ("field", "text"),
    [("units", "two"), ("units", "10:2"), ("units", "1:5:0"), ("units", "1:2:3:4"), ("units", "2,,5"),
     ("units", "1:100000"), ("normalize", "maybe"), ("interval", "0"), ("learning_rate", "fast")],
)
def test_invalid_values_name_field(field, text):
    with pytest.raises(InvalidValue) as caught:
        parse_values(field, text)
    assert caught.value.field == field


def test_split_keeps_parenthesized_commas():
    assert split_items("minimum(x, 1), x**2") == ["minimum(x, 1)", "x**2"]


def test_plan_is_cartesian_product(tmp_path):
    plan = plan_sweep("approx", {"units": "2,5,10", "epochs": "1000,4000", "optimizer": "sgd,adam", "normalize": "both"}, tmp_path)
    assert len(plan.configurations) == 24
    assert len(plan.runs) == 24
    combinations = {(spec.units, spec.epochs, spec.optimizer, spec.normalize) for spec in plan.configurations}
    assert len(combinations) == 24
    assert list(plan.swept) == ["units", "epochs", "optimizer", "normalize"]
    assert plan.folder == tmp_path / "sweep" / "approx-p=2,5,10-epochs=1000,4000-optimizer=sgd,adam-norm=both"
    assert all(not run.reusable for run in plan.runs)


def test_learning_rate_follows_optimizer(tmp_path):
    plan = plan_sweep("approx", {"optimizer": "sgd,adam"}, tmp_path)
    assert varying_fields(plan) == ["optimizer", "learning_rate"]
    assert varying_fields(plan_sweep("approx", {"units": "2,3"}, tmp_path)) == ["units"]


def test_plan_repeat_uses_consecutive_seeds(tmp_path):
    plan = plan_sweep("approx", {"units": "2,3", "seed": "7"}, tmp_path, repeat=3)
    assert [run.spec.seed for run in plan.runs] == [7, 8, 9, 7, 8, 9]
    assert [run.configuration for run in plan.runs] == [0, 0, 0, 1, 1, 1]
    assert plan.fixed == {"seed": 7}


def test_plan_drops_configurations_resolving_alike(tmp_path):
    # rmsprop's Keras default learning rate is 0.001, so both values give one run.
    plan = plan_sweep("approx", {"learning_rate": "default,0.001"}, tmp_path)
    assert len(plan.runs) == 1


def test_plan_noisy_keeps_noisy_defaults(tmp_path):
    plan = plan_sweep("noisy", {"sigma": "0.1,0.5"}, tmp_path)
    assert [spec.sigma for spec in plan.configurations] == [0.1, 0.5]
    assert {spec.n for spec in plan.configurations} == {60}
    assert {spec.val_split for spec in plan.configurations} == {0.2}


def test_invalid_configuration_names_it(tmp_path):
    with pytest.raises(InvalidValue) as caught:
        plan_sweep("approx", {"optimizer": "sgd,adam", "momentum": "0.9"}, tmp_path)
    assert caught.value.field == "momentum"
    assert "optimizer=adam" in caught.value.expected


def test_seed_list_with_repeat_rejected(tmp_path):
    with pytest.raises(InvalidValue) as caught:
        plan_sweep("approx", {"seed": "0,1"}, tmp_path, repeat=2)
    assert caught.value.field == "seed"


def test_sweep_name_long_is_shortened():
    name = sweep_name("approx", {"units": ",".join(str(value) for value in range(1, 80))}, 1)
    assert len(name) <= 100
    assert name == sweep_name("approx", {"units": ",".join(str(value) for value in range(1, 80))}, 1)


@pytest.mark.parametrize(("layers", "units"), [(1, 1), (1, 3), (2, 5), (4, 10)])
def test_parameter_count_matches_keras(layers, units):
    from keraslab_cli.core.data import make_dataset
    from keraslab_cli.core.models import build_mlp

    spec = ExperimentSpec(layers=layers, units=units)
    model = build_mlp(spec, make_dataset(spec))
    assert trainable_parameters(spec) == sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


def fake_outcome(index, status, final_loss, dense_mse, seconds=1.0):
    metrics = {"final_loss": final_loss, "dense_mse": dense_mse, "total_seconds": seconds}
    return RunOutcome(index, status, False, "folder", metrics, loss=[final_loss])


def test_summary_mean_and_sample_std(tmp_path):
    plan = plan_sweep("approx", {"units": "2,3"}, tmp_path, repeat=3)
    losses = [0.3, 0.1, 0.2, 0.05, 0.07, 0.09]
    outcomes = [fake_outcome(index, "completed", loss, 2 * loss) for index, loss in enumerate(losses)]
    summaries = summarize(plan, outcomes)
    best, second = summaries
    assert best.spec.units == 3
    assert best.rank == 1
    assert best.final_loss == pytest.approx(np.mean([0.05, 0.07, 0.09]), abs=1e-12)
    assert best.final_loss_std == pytest.approx(0.02, abs=1e-12)
    assert second.final_loss_std == pytest.approx(0.1, abs=1e-12)
    assert second.dense_mse == pytest.approx(0.4, abs=1e-12)


def test_summary_ranks_failures_last(tmp_path):
    plan = plan_sweep("approx", {"units": "1,2,3"}, tmp_path)
    outcomes = [
        fake_outcome(0, "failed", None, None),
        fake_outcome(1, "diverged", float("inf"), 1e40),
        fake_outcome(2, "completed", 3.0, 3.1),
    ]
    summaries = summarize(plan, outcomes)
    assert [summary.status for summary in summaries] == ["completed", "diverged", "failed"]
    assert summaries[1].final_loss is None
    assert summaries[1].dense_mse is None


def test_outputs_files_and_figure_data(tmp_path):
    plan = plan_sweep("approx", {"units": "2,3", "epochs": "4"}, tmp_path, repeat=2)
    outcomes = [
        RunOutcome(index, "completed", False, f"run{index}", {"final_loss": 1.0 + index, "dense_mse": 2.0, "total_seconds": 0.5}, loss=[4.0, 3.0, 2.0, 1.0 + index], fit=list(np.zeros(400)))
        for index in range(4)
    ]
    files = write_sweep_outputs(plan, summarize(plan, outcomes), outcomes)
    for name in ("losses.png", "fits.png"):
        content = Path(files[name]).read_bytes()
        assert content[:8] == PNG_SIGNATURE
        assert len(content) > 20_000
    with open(files["sweep.csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["units"] for row in rows] == ["2", "3"]
    assert float(rows[0]["final_loss"]) == pytest.approx(1.5)
    document = json.loads(Path(files["sweep.json"]).read_text())
    assert document["swept"] == {"units": [2, 3]}
    assert len(document["runs"]) == 4


def test_mean_curve_of_unequal_lengths():
    from keraslab_cli.core.sweep_plots import mean_curve

    mean, low, high = mean_curve([[4.0, 2.0, 1.0], [2.0, 1.0]])
    np.testing.assert_allclose(mean, [3.0, 1.5, 1.0])
    np.testing.assert_allclose(low, [2.0, 1.0, 1.0])
    np.testing.assert_allclose(high, [4.0, 2.0, 1.0])


def test_fit_grid_draws_each_configuration(tmp_path, monkeypatch):
    from keraslab_cli.core import sweep_plots

    plan = plan_sweep("approx", {"units": "1,2,3"}, tmp_path)
    outcomes = [RunOutcome(index, "completed", False, "f", {"final_loss": 1.0, "dense_mse": 0.5}, loss=[1.0], fit=list(np.full(400, index))) for index in range(3)]
    outcomes[2] = RunOutcome(2, "diverged", False, "f", {}, loss=[1.0, float("nan")])
    drawn = []
    monkeypatch.setattr(sweep_plots, "save_figure", lambda figure, path: drawn.append(figure) or path)
    sweep_plots.plot_fit_grid(tmp_path / "fits.png", plan, summarize(plan, outcomes))
    axes = [axis for axis in drawn[0].axes if axis.get_visible()]
    assert len(axes) == 3
    titles = [axis.get_title() for axis in axes]
    assert titles[0].startswith("p=1")
    assert "diverged" in titles[2]
    red_lines = [line for line in axes[1].lines if line.get_color() == "tab:red"]
    np.testing.assert_allclose(red_lines[0].get_ydata(), np.full(400, 1.0))
    assert not [line for line in axes[2].lines if line.get_color() == "tab:red"]


def test_reuse_and_failed_run_does_not_stop(tmp_path):
    plan = plan_sweep("approx", {**SMALL, "units": "2,3"}, tmp_path)
    # A file where the second run's folder must go makes that run fail.
    blocked = plan.runs[1].folder
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a folder")
    outcomes = run_sweep(plan, jobs=1)
    assert [outcome.status for outcome in outcomes] == ["completed", "failed"]
    assert str(blocked) in outcomes[1].error
    assert len(outcomes[0].fit) == 400
    assert len(outcomes[0].loss) == 15

    blocked.unlink()
    again = plan_sweep("approx", {**SMALL, "units": "2,3"}, tmp_path)
    assert [run.reusable for run in again.runs] == [True, False]
    outcomes_again = run_sweep(again, jobs=1)
    assert [outcome.reused for outcome in outcomes_again] == [True, False]
    assert outcomes_again[0].loss == outcomes[0].loss
    np.testing.assert_allclose(outcomes_again[0].fit, outcomes[0].fit, rtol=0, atol=0)
    assert not any(run.reusable for run in plan_sweep("approx", {**SMALL, "units": "2,3"}, tmp_path, force=True).runs)


def test_changed_config_is_not_reused(tmp_path):
    plan = plan_sweep("approx", SMALL, tmp_path)
    run_sweep(plan, jobs=1)
    run_json = plan.runs[0].folder / "run.json"
    document = json.loads(run_json.read_text())
    document["config"]["l2"] = 0.5
    run_json.write_text(json.dumps(document))
    assert not plan_sweep("approx", SMALL, tmp_path).runs[0].reusable


def test_worker_numbers_equal_plain_approx(tmp_path, invoke):
    """Runs in spawned workers (one torch thread, Keras imported once) match keraslab approx."""
    plan = plan_sweep("approx", {**SMALL, "units": "2,3", "seed": "4"}, tmp_path / "sweep")
    outcomes = run_sweep(plan, jobs=2)
    assert [outcome.status for outcome in outcomes] == ["completed", "completed"]
    for run, outcome in zip(plan.runs, outcomes):
        result = invoke("approx", "--epochs", "15", "--n", "16", "--p", run.spec.units, "--seed", "4", "--outputs", tmp_path / "plain", "--json")
        assert result.exit_code == 0, result.output
        plain = json.loads(result.stdout)
        plain_loss = [float(row["loss"]) for row in csv.DictReader(open(Path(plain["files"]["history.csv"]), newline=""))]
        assert outcome.loss == plain_loss
        assert outcome.metrics["dense_mse"] == plain["metrics"]["dense_mse"]


def test_one_worker_runs_many_specs(tmp_path):
    specs = [ExperimentSpec(epochs=5, n=12, units=2, seed=seed) for seed in range(3)]
    outcomes = run_specs_in_one_worker(specs, tmp_path)
    assert [outcome.status for outcome in outcomes] == ["completed"] * 3
    assert all(outcome.rss_mb > 50 for outcome in outcomes)
    assert outcomes[0].loss != outcomes[1].loss


@pytest.mark.parametrize(
    ("field", "text", "corrected"),
    [("sigma", "0,3", "write 0.3, or 0.0,3.0 to sweep 0 and 3"), ("l2", "0,001", "write 0.001"),
     ("learning_rate", "0,01,0,001", "write 0.01,0.001"), ("mu", "-1,5", "write -1.5, or -1.0,5.0"), ("sigma", "0.1,01", "for example 0.01,0.001")],
)
def test_decimal_comma_rejected(field, text, corrected):
    with pytest.raises(InvalidValue) as caught:
        parse_values(field, text)
    assert caught.value.field == field
    assert caught.value.value == text
    assert corrected in caught.value.expected
    assert "decimals written with a point" in caught.value.expected


@pytest.mark.parametrize(
    ("field", "text", "expected"),
    [("units", "2,5", [2, 5]), ("sigma", "0.0,3.0", [0.0, 3.0]), ("sigma", "0,0.3", [0.0, 0.3]), ("l2", "0,1,2", [0.0, 1.0, 2.0]), ("sigma", "10", [10.0])],
)
def test_lists_that_are_not_decimal_commas(field, text, expected):
    assert parse_values(field, text) == expected


def test_french_on_off_words():
    assert parse_values("normalize", "oui,non") == [True, False]
    assert parse_values("nesterov", "Vrai") == [True]
    assert parse_values("nesterov", "faux") == [False]


def test_plural_forms_by_language():
    from keraslab_cli.core.i18n import plural, set_language

    forms = ("{count} run", "{count} runs")
    assert [plural(count, *forms).format(count=count) for count in (0, 1, 2)] == ["0 runs", "1 run", "2 runs"]
    set_language("fr")
    assert [plural(count, *forms).format(count=count) for count in (0, 1, 2)] == ["0 exécution", "1 exécution", "2 exécutions"]


def test_noisy_ranked_by_dense_mse(tmp_path):
    plan = plan_sweep("noisy", {"l2": "0,0.01"}, tmp_path)
    # l2=0 has the lower training loss, l2=0.01 the F closer to f.
    outcomes = [fake_outcome(0, "completed", 0.01, 0.3), fake_outcome(1, "completed", 0.05, 0.1)]
    summaries = summarize(plan, outcomes)
    assert [summary.spec.l2 for summary in summaries] == [0.01, 0.0]
    approx = plan_sweep("approx", {"units": "2,3"}, tmp_path)
    assert [summary.spec.units for summary in summarize(approx, outcomes)] == [2, 3]


def test_ms_per_epoch_is_mean_of_runs(tmp_path):
    plan = plan_sweep("approx", {"units": "2"}, tmp_path, repeat=2)
    outcomes = [fake_outcome(index, "completed", 1.0, 1.0) for index in range(2)]
    outcomes[0].metrics["ms_per_epoch"], outcomes[1].metrics["ms_per_epoch"] = 2.0, 4.0
    summary = summarize(plan, outcomes)[0]
    assert summary.ms_per_epoch == pytest.approx(3.0, abs=1e-12)
    files = write_sweep_outputs(plan, [summary], outcomes)
    with open(files["sweep.csv"], newline="") as handle:
        assert float(next(csv.DictReader(handle))["ms_per_epoch"]) == pytest.approx(3.0)


def curve_outcome(index, train, validation, penalty=0.0):
    curves = {"loss": [value + penalty for value in train], "val_loss": [value + penalty for value in validation]}
    if penalty:
        curves.update(data_loss=list(train), val_data_loss=list(validation))
    metrics = {"final_loss": train[-1] + penalty, "dense_mse": 0.1 * (index + 1), "final_val_loss": validation[-1]}
    return RunOutcome(index, "completed", False, "f", metrics, loss=curves["loss"], curves=curves)


@pytest.mark.parametrize("penalty", [0.0, 0.5])
def test_loss_plot_draws_validation_dashed(tmp_path, monkeypatch, penalty):
    from keraslab_cli.core import sweep_plots

    plan = plan_sweep("noisy", {"sigma": "0.1,0.2", "l2": "0.01" if penalty else "0"}, tmp_path)
    outcomes = [curve_outcome(0, [4.0, 2.0, 1.0], [5.0, 3.0, 2.5], penalty), curve_outcome(1, [3.0, 1.5, 0.5], [6.0, 4.0, 3.5], penalty)]
    drawn = []
    monkeypatch.setattr(sweep_plots, "save_figure", lambda figure, path: drawn.append(figure) or path)
    sweep_plots.plot_loss_curves(tmp_path / "losses.png", plan, summarize(plan, outcomes))
    axis = drawn[0].axes[0]
    solid = [line for line in axis.lines if line.get_linestyle() == "-"]
    dashed = [line for line in axis.lines if line.get_linestyle() == "--"]
    # Ranked by MSE(F, f): run 0 first. Without penalty the curves are the losses, with it the data losses.
    np.testing.assert_allclose(solid[0].get_ydata(), [4.0, 2.0, 1.0])
    np.testing.assert_allclose(dashed[0].get_ydata(), [5.0, 3.0, 2.5])
    np.testing.assert_allclose(dashed[1].get_ydata(), [6.0, 4.0, 3.5])
    assert solid[0].get_color() == dashed[0].get_color()
    assert solid[1].get_color() != solid[0].get_color()
    legend = axis.get_legend()
    assert len(legend.get_texts()) == 2
    assert "dashed: validation loss" in legend.get_title().get_text()
    assert "MSE(F, f)" in legend.get_title().get_text()
    assert ("without the L1/L2 penalty" in axis.get_ylabel()) == bool(penalty)


def test_loss_plot_mixes_penalized_and_plain_runs(tmp_path, monkeypatch):
    from keraslab_cli.core import sweep_plots

    plan = plan_sweep("noisy", {"l2": "0,0.01"}, tmp_path)
    outcomes = [curve_outcome(0, [4.0, 2.0], [5.0, 3.0]), curve_outcome(1, [3.0, 1.5], [6.0, 4.0], penalty=0.5)]
    drawn = []
    monkeypatch.setattr(sweep_plots, "save_figure", lambda figure, path: drawn.append(figure) or path)
    sweep_plots.plot_loss_curves(tmp_path / "losses.png", plan, summarize(plan, outcomes))
    solid = [line.get_ydata().tolist() for line in drawn[0].axes[0].lines if line.get_linestyle() == "-"]
    assert solid == [[4.0, 2.0], [3.0, 1.5]]
