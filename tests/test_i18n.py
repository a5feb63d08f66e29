"""French and English on every screen: catalogs, help, errors, tables, plots, files."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import string
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import pytest
import typer
from typer import _click
from typer.testing import CliRunner

from keraslab_cli.core import i18n
from keraslab_cli.core.i18n import format_number, load_catalog, resolve_language, set_language

ROOT = Path(__file__).resolve().parent.parent
CATALOG_FOLDER = ROOT / "keraslab_cli" / "locale" / "fr" / "LC_MESSAGES"
# The run that every acceptance check looks at: tiny, so it trains in seconds.
SMALL_RUN = ("approx", "--layers", "2", "--p", "3", "--epochs", "4", "--n", "12", "--name", "tiny")
# A locale environment with no keraslab override: only LANG decides.
FRENCH_LOCALE = {"KERASLAB_LANG": None, "LC_ALL": None, "LC_MESSAGES": None, "LANG": "fr_FR.UTF-8", "COLUMNS": "200"}
ENGLISH_LOCALE = {**FRENCH_LOCALE, "LANG": "C.UTF-8"}
# Fields of run.json, runs.csv and --json that measure time or memory, so they differ between two runs.
TIMING_FIELDS = {"created", "train_seconds", "ms_per_epoch", "total_seconds", "peak_rss_mb", "time", "seconds"}


def load_extractor():
    spec = importlib.util.spec_from_file_location("extract_messages", ROOT / "scripts" / "extract_messages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def french_catalog() -> dict[str, str]:
    load_catalog.cache_clear()
    return load_catalog("fr")


def fields_of(message: str) -> set[str]:
    """Return the str.format fields of a message, with their conversion and format spec."""
    return {
        f"{name}!{conversion}:{spec}"
        for _text, name, spec, conversion in string.Formatter().parse(message)
        if name is not None
    }


# Catalogs


def test_every_message_has_french_translation():
    catalog = french_catalog()
    missing: dict[str, list[str]] = defaultdict(list)
    for filename, line, message in load_extractor().extract_messages():
        if message not in catalog and message not in missing[filename]:
            missing[filename].append(f"{line}: {message!r}")
    missing = {filename: messages for filename, messages in missing.items() if messages}
    report = "\n".join(f"{filename}\n    " + "\n    ".join(messages) for filename, messages in sorted(missing.items()))
    if missing:
        pytest.fail(f"messages without a French translation in {CATALOG_FOLDER}:\n{report}", pytrace=False)


def test_extractor_finds_calls_inside_fstrings():
    messages = {message for _file, _line, message in load_extractor().extract_messages()}
    # render.py writes _('learning rate') inside an f-string, which Babel alone misses.
    assert "learning rate" in messages
    assert "Show this message and exit." in messages


@pytest.mark.parametrize("po_path", sorted(CATALOG_FOLDER.glob("*.po")), ids=lambda path: path.name)
def test_translations_keep_format_fields(po_path):
    from babel.messages.pofile import read_po

    with po_path.open("rb") as handle:
        messages = [message for message in read_po(handle) if message.id and message.string]
    assert messages, f"{po_path.name} has no translated message"
    wrong = [
        f"{message.id!r}: {sorted(fields_of(message.id))} != {sorted(fields_of(message.string))}"
        for message in messages
        if fields_of(message.id) != fields_of(message.string)
    ]
    assert not wrong, "translations whose {fields} differ from the English:\n" + "\n".join(wrong)


def test_template_lists_every_message():
    extractor = load_extractor()
    messages = extractor.extract_messages()
    template = extractor.build_template(messages)
    assert {message.id for message in template if message.id} == {message for _f, _l, message in messages}
    assert template["Invalid value for {flag}: {value}. Expected {expected}."].flags == {"python-brace-format"}


# Language selection


@pytest.mark.parametrize(
    ("flag", "environ", "expected"),
    [
        ("en", {"KERASLAB_LANG": "fr", "LANG": "fr_FR.UTF-8"}, "en"),
        ("fr", {"KERASLAB_LANG": "en", "LANG": "C.UTF-8"}, "fr"),
        (None, {"KERASLAB_LANG": "en", "LANG": "fr_FR.UTF-8"}, "en"),
        (None, {"KERASLAB_LANG": "fr", "LANG": "C.UTF-8"}, "fr"),
        (None, {"KERASLAB_LANG": " FR ", "LANG": "C"}, "fr"),
        (None, {"KERASLAB_LANG": "de", "LANG": "fr_FR.UTF-8"}, "fr"),
        (None, {"LANG": "fr_FR.UTF-8"}, "fr"),
        (None, {"LANG": "fr_CA"}, "fr"),
        (None, {"LANG": "C.UTF-8"}, "en"),
        (None, {"LC_ALL": "en_US.UTF-8", "LANG": "fr_FR.UTF-8"}, "en"),
        (None, {"LC_ALL": "fr_FR.UTF-8", "LANG": "C"}, "fr"),
        (None, {"LC_MESSAGES": "fr_BE.UTF-8", "LANG": "en_GB"}, "fr"),
        (None, {}, "en"),
        ("de", {"LANG": "fr_FR.UTF-8"}, "fr"),
    ],
)
def test_language_precedence(flag, environ, expected):
    assert resolve_language(flag, environ) == expected


@pytest.mark.parametrize(
    ("arguments", "environment", "expected"),
    [
        (["--lang", "en"], {"KERASLAB_LANG": "fr", "LANG": "fr_FR.UTF-8"}, "Number of hidden layers."),
        (["--lang=fr"], {"KERASLAB_LANG": "en", "LANG": "C.UTF-8"}, "Nombre de couches cachées."),
        ([], {"KERASLAB_LANG": "en", "LANG": "fr_FR.UTF-8"}, "Number of hidden layers."),
        ([], {"KERASLAB_LANG": "fr", "LANG": "C.UTF-8"}, "Nombre de couches cachées."),
        ([], {"KERASLAB_LANG": None, "LANG": "fr_FR.UTF-8"}, "Nombre de couches cachées."),
        ([], {"KERASLAB_LANG": None, "LANG": "C.UTF-8"}, "Number of hidden layers."),
    ],
)
def test_help_follows_language_precedence(invoke, arguments, environment, expected):
    environment = {"LC_ALL": None, "LC_MESSAGES": None, **environment}
    result = invoke("approx", "--help", *arguments, env=environment)
    assert result.exit_code == 0, result.output
    assert expected in result.stdout


# Help of every command and option


def help_texts(language: str) -> dict[str, str]:
    """Return the help of every command and visible option of the app, by path, in a language."""
    from keraslab_cli.cli.app import app, apply_language

    root = typer.main.get_command(app)
    set_language(language)
    apply_language(root)
    texts = {}

    def visit(command, path: str) -> None:
        texts[path] = command.help or ""
        for parameter in command.params:
            if not getattr(parameter, "hidden", False):
                texts[f"{path} {parameter.opts[0] if parameter.opts else parameter.name}"] = parameter.help or ""
        for name, child in getattr(command, "commands", {}).items():
            visit(child, f"{path} {name}")

    visit(root, "keraslab")
    return texts


def test_every_command_and_option_has_english_help():
    english = help_texts("en")
    assert any(path.startswith("keraslab approx --") for path in english)
    empty = sorted(path for path, text in english.items() if not text.strip())
    assert not empty, f"commands or options without help: {empty}"


def test_every_command_and_option_has_french_help():
    english, french = help_texts("en"), help_texts("fr")
    assert french.keys() == english.keys()
    untranslated = sorted(path for path in english if french[path] == english[path])
    assert not untranslated, f"help shown in English to French users: {untranslated}"


def test_french_help_screen(invoke):
    result = invoke("approx", "--help", env={**FRENCH_LOCALE, "COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    screen = result.stdout
    for text in ("Utilisation : ", "approx [OPTIONS]", "Réseau", "Entraînement", "Afficher ce message et quitter.", "[défaut : 4]"):
        assert text in screen, text
    for english in ("Usage:", "Show this message", "[default:", "Number of hidden layers"):
        assert english not in screen, english
    assert max(len(line) for line in screen.splitlines()) <= 80


def test_english_help_screen(invoke):
    result = invoke("--help", env=ENGLISH_LOCALE)
    assert result.exit_code == 0, result.output
    for text in ("Usage: ", "COMMAND [ARGS]", "Commands", "approx", "Show this message and exit.", "Print the version and exit."):
        assert text in result.stdout, text
    assert "Afficher" not in result.stdout


# Usage errors


USAGE_ERRORS = [
    (["approx", "--epoch", "5"], "No such option: --epoch. Did you mean --epochs?", "Option inconnue : --epoch. Vouliez-vous dire --epochs ?"),
    (["approx", "--p"], "Option --p requires a value.", "L'option --p attend une valeur."),
    (["approx", "--interval", "0"], "Option --interval requires 2 values.", "L'option --interval attend 2 valeurs."),
    (["approx", "--p", "abc"], "Invalid value for --p / --units: 'abc' is not an integer.", "Valeur invalide pour --p / --units : 'abc' n'est pas un nombre entier."),
    (["approx", "--epochs", "1.5"], "Invalid value for --epochs: '1.5' is not an integer.", "Valeur invalide pour --epochs : '1.5' n'est pas un nombre entier."),
    (["approx", "--lr", "fast"], "Invalid value for --lr / --learning-rate: 'fast' is not a number.", "Valeur invalide pour --lr / --learning-rate : 'fast' n'est pas un nombre."),
    (["approx", "--lr", "0,01"], "Invalid value for --lr / --learning-rate: '0,01' is not a number. Write decimals with a point: 0.01.",
     "Valeur invalide pour --lr / --learning-rate : '0,01' n'est pas un nombre. Écrivez les décimales avec un point : 0.01."),
    (["approx", "--interval", "0", "b"], "Invalid value for --interval: 'b' is not a number.", "Valeur invalide pour --interval : 'b' n'est pas un nombre."),
    (["approx", "--engine", "slow"], "Invalid value for --engine: 'slow' is not one of auto, fast, fit.", "Valeur invalide pour --engine : 'slow' ne fait pas partie des valeurs possibles : auto, fast, fit."),
    (["approx", "--normalize=yes"], "Option --normalize does not take a value.", "L'option --normalize ne prend pas de valeur."),
    (["approx", "extra"], "Unexpected extra argument: extra.", "Argument en trop : extra."),
    (["aprox"], "No such command 'aprox'. Did you mean approx?", "Commande inconnue : 'aprox'. Vouliez-vous dire approx ?"),
    (["approx", "--lang", "de"], "Invalid value for --lang: 'de' is not one of en, fr.", "Valeur invalide pour --lang : 'de' ne fait pas partie des valeurs possibles : en, fr."),
]


@pytest.mark.parametrize(("arguments", "english", "french"), USAGE_ERRORS, ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_usage_error_in_both_languages(invoke, arguments, english, french):
    for environment, expected, prefix in ((ENGLISH_LOCALE, english, "Error: "), (FRENCH_LOCALE, french, "Erreur : ")):
        result = invoke(*arguments, env=environment)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        message = " ".join(result.stderr.split())
        assert prefix + expected in message, message


def usage_error(function, arguments: list[str]) -> _click.exceptions.ClickException:
    """Return the usage error that a one-command typer app raises for some arguments."""
    application = typer.Typer()
    application.command()(function)
    command = typer.main.get_command(application)
    with pytest.raises(_click.exceptions.ClickException) as caught:
        command.main(args=arguments, prog_name="demo", standalone_mode=False)
    return caught.value


def path_option(model: Annotated[Path, typer.Option("--model", exists=True, dir_okay=False)]) -> None:
    """A command that takes an existing file."""


def bool_argument(flag: Annotated[bool, typer.Argument()]) -> None:
    """A command that takes a boolean value."""


def bounded_option(count: Annotated[int, typer.Option("--count", min=1, max=9)] = 1) -> None:
    """A command that takes an integer in [1, 9]."""


def uuid_option(identifier: Annotated[Optional[uuid.UUID], typer.Option("--id")] = None) -> None:
    """A command whose value type has no translated message."""


def required_option(name: Annotated[str, typer.Option("--name")], size: Annotated[Optional[int], typer.Option("--size")] = None) -> None:
    """A command with a required option."""


@pytest.mark.parametrize(
    ("function", "arguments", "english", "french"),
    [
        (path_option, ["--model", "no-such-model.keras"], "Invalid value for --model: 'no-such-model.keras' does not exist.", "Valeur invalide pour --model : 'no-such-model.keras' n'existe pas."),
        (path_option, ["--model", "."], "Invalid value for --model: '.' is a folder, not a file.", "Valeur invalide pour --model : '.' est un dossier, pas un fichier."),
        (bool_argument, ["maybe"], "Invalid value for flag: 'maybe' is not a boolean (true or false).", "Valeur invalide pour flag : 'maybe' n'est pas un booléen (true ou false)."),
        (bounded_option, ["--count", "0"], "Invalid value for --count: 0 is below the minimum 1.", "Valeur invalide pour --count : 0 est inférieur au minimum 1."),
        (bounded_option, ["--count", "12"], "Invalid value for --count: 12 is above the maximum 9.", "Valeur invalide pour --count : 12 est supérieur au maximum 9."),
        (required_option, ["--size", "2"], "Missing option --name.", "Option manquante : --name."),
        (bounded_option, ["--count", "\x1b[31m"], "Invalid value for --count: '\\x1b[31m' is not an integer.", "Valeur invalide pour --count : '\\x1b[31m' n'est pas un nombre entier."),
        (uuid_option, ["--id", "zz"], "Invalid value for --id: 'zz' (Input should be a valid UUID, invalid character: found `z` at 0).",
         "Valeur invalide pour --id : 'zz' (Input should be a valid UUID, invalid character: found `z` at 0)."),
    ],
    ids=["path-missing", "path-folder", "bool", "below-minimum", "above-maximum", "missing-option", "control-characters", "other-type"],
)
def test_click_error_descriptions(function, arguments, english, french):
    from keraslab_cli.cli.console import describe_click_error

    error = usage_error(function, arguments)
    set_language("en")
    assert describe_click_error(error) == english
    set_language("fr")
    assert describe_click_error(error) == french


def test_unknown_click_message_passes_through():
    from keraslab_cli.cli.console import translate_click_message

    set_language("fr")
    assert translate_click_message("Something Click says that keraslab does not know.") == "Something Click says that keraslab does not know."


def test_invalid_value_of_core_in_french(invoke, tmp_path):
    result = invoke("approx", "--lr", "-1", "--outputs", tmp_path, env=FRENCH_LOCALE)
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "Erreur : Valeur invalide pour --lr : -1.0. Attendu : un nombre fini strictement positif, par exemple 0.001." in message
    assert not any(tmp_path.iterdir()), "a rejected value must not create any output"


# Runs: tables, plots and files in both languages


class PlotRecorder:
    """Wraps plots.save_figure to keep the texts of every figure before it is saved."""

    def __init__(self, save_figure) -> None:
        self.save_figure = save_figure
        self.figures: dict[str, dict] = {}

    def __call__(self, figure, path):
        from matplotlib.text import Text

        axes = figure.axes
        self.figures[Path(path).name] = {
            "titles": [axis.get_title() for axis in axes],
            "xlabels": [axis.get_xlabel() for axis in axes],
            "ylabels": [axis.get_ylabel() for axis in axes],
            "legend": [text.get_text() for axis in axes if axis.get_legend() for text in axis.get_legend().get_texts()],
            "texts": [text.get_text() for text in figure.findobj(Text)],
        }
        return self.save_figure(figure, path)


def run_in(language_environment: dict, outputs: Path, *extra: str):
    """Run the small approx run in-process and return (result, recorded plots)."""
    from keraslab_cli.cli.app import app
    from keraslab_cli.core import plots

    recorder = PlotRecorder(plots.save_figure)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "save_figure", recorder)
        result = CliRunner().invoke(app, [*SMALL_RUN, "--outputs", str(outputs), *extra], env=language_environment, catch_exceptions=False)
    set_language("en")
    return result, recorder.figures


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same small run in French and in English, with a table, and again with --json."""
    root = tmp_path_factory.mktemp("languages")
    found = {}
    for language, environment in (("fr", FRENCH_LOCALE), ("en", ENGLISH_LOCALE)):
        found[language] = run_in(environment, root / language)
        found[language + "-json"] = run_in(environment, root / (language + "-json"), "--json")
    found["root"] = root
    return found


def test_french_run_table(runs):
    result, _figures = runs["fr"]
    assert result.exit_code == 0, result.output
    table = result.stdout
    for label in ("Architecture", "couche", "neurones", "Résumé", "Réseau", "2 couches cachées × 3 neurones", "Paramètres entraînables",
                  "Époques", "4 sur 4", "Perte finale", "Durée d'entraînement", "ms par époque", "État", "terminé"):
        assert label in table, label
    for english in ("Summary", "Final loss", "Trainable parameters", "completed", "hidden layers"):
        assert english not in table, english


def test_english_run_table(runs):
    result, _figures = runs["en"]
    assert result.exit_code == 0, result.output
    for label in ("Architecture", "layer", "Summary", "2 hidden layers × 3 neurons", "Final loss", "4 of 4", "completed"):
        assert label in result.stdout, label
    assert "Résumé" not in result.stdout


def test_decimal_comma_in_french_table_only(runs):
    french, english = runs["fr"][0].stdout, runs["en"][0].stdout
    # The learning rate row: rmsprop's Keras default 0.001.
    assert "taux d'apprentissage 0,001" in french
    assert "learning rate 0.001" in english
    assert not re.search(r"\d,\d", english)
    final_loss = json.loads(runs["en-json"][0].stdout)["metrics"]["final_loss"]
    assert format_number(final_loss).replace(".", ",") in french


def test_french_plot_texts(runs):
    figures = runs["fr"][1]
    assert set(figures) == {"fit.png", "loss.png"}
    fit, loss = figures["fit.png"], figures["loss.png"]
    assert fit["legend"] == ["f (fonction cible)", "F (réseau)"]
    assert fit["ylabels"] == ["y", "F(x) − f(x)"]
    assert "MSE(F, f) sur l'intervalle" in fit["titles"][0]
    assert "4 époques" in fit["titles"][0]
    assert loss["xlabels"] == ["époque"]
    assert loss["ylabels"] == ["perte (MSE, échelle log)"]
    assert loss["legend"][0] == "perte d'entraînement"
    assert "perte d'entraînement finale (MSE)" in loss["titles"][0]
    english_words = ("training", "target function", "network", "epoch", "log scale", "on the interval", "final loss")
    for figure in figures.values():
        for text in figure["texts"]:
            assert not any(word in text for word in english_words), text


def test_english_plot_texts(runs):
    figures = runs["en"][1]
    assert figures["fit.png"]["legend"] == ["f (target function)", "F (network)"]
    assert figures["loss.png"]["xlabels"] == ["epoch"]
    assert figures["loss.png"]["ylabels"] == ["loss (MSE, log scale)"]
    assert "4 epochs" in figures["fit.png"]["titles"][0]


@pytest.mark.parametrize("language", ["fr", "en"])
def test_saved_plots_are_images(runs, language):
    from matplotlib.image import imread

    folder = runs["root"] / language / "approx" / "tiny"
    for name in ("fit.png", "loss.png"):
        data = (folder / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
        assert len(data) > 10_000, name
        pixels = imread(folder / name)
        assert pixels.shape[0] > 300, name
        assert pixels.shape[1] > 500, name
        assert float(np.std(pixels[..., :3])) > 0.05, f"{name} is blank"


def without_timing(value, root: Path):
    """Drop timing fields and replace the outputs root, recursively, so two runs compare equal."""
    if isinstance(value, dict):
        return {key: without_timing(item, root) for key, item in value.items() if key not in TIMING_FIELDS}
    if isinstance(value, list):
        return [without_timing(item, root) for item in value]
    if isinstance(value, str):
        return value.replace(str(root), "ROOT")
    return value


def test_json_output_identical_in_both_languages(runs):
    documents = {}
    for language in ("fr", "en"):
        result = runs[language + "-json"][0]
        assert result.exit_code == 0, result.output
        documents[language] = without_timing(json.loads(result.stdout), runs["root"] / (language + "-json"))
    assert documents["fr"] == documents["en"]
    assert documents["fr"]["metrics"]["final_loss"] > 0


def test_run_files_identical_in_both_languages(runs):
    folders = {language: runs["root"] / language / "approx" / "tiny" for language in ("fr", "en")}
    assert (folders["fr"] / "history.csv").read_bytes() == (folders["en"] / "history.csv").read_bytes()
    rows = list(csv.DictReader((folders["fr"] / "history.csv").open()))
    assert [float(row["loss"]) for row in rows], "history.csv must hold numbers with a decimal point"

    documents = {
        language: without_timing(json.loads((folder / "run.json").read_text()), runs["root"] / language)
        for language, folder in folders.items()
    }
    for document in documents.values():
        # In-process runs see pytest's sys.argv, not the arguments given to the runner.
        document.pop("command_line")
    assert documents["fr"] == documents["en"]

    indexes = {}
    for language in ("fr", "en"):
        with (runs["root"] / language / "runs.csv").open() as handle:
            indexes[language] = [without_timing(row, runs["root"] / language) for row in csv.DictReader(handle)]
    assert indexes["fr"] == indexes["en"]
    assert len(indexes["fr"]) == 1


# Numbers


@pytest.mark.parametrize(
    ("value", "english", "french"),
    [
        (0.001, "0.001", "0,001"),
        (3.14159, "3.142", "3,142"),
        (2.5e-05, "2.500e-05", "2,500e-05"),
        (0.0, "0", "0"),
        (12345, "12,345", "12\u202f345"),
        (None, "—", "—"),
        (float("nan"), "NaN", "NaN"),
    ],
)
def test_format_number_by_language(value, english, french):
    set_language("en")
    assert format_number(value) == english
    set_language("fr")
    assert format_number(value) == french


def test_unknown_language_falls_back_to_english():
    set_language("de")
    assert i18n.get_language() == "en"
    assert i18n._("Summary") == "Summary"
    set_language("fr")
    assert i18n._("Summary") == "Résumé"
    assert i18n._("A message nobody translated") == "A message nobody translated"


def test_progress_bar_in_french():
    import io

    from rich.console import Console

    from keraslab_cli.cli.render import EpochProgress

    set_language("fr")
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=120, color_system=None)
    with EpochProgress(console, epochs=10, enabled=True) as progress:
        progress.update(10, {"loss": 0.0123, "val_loss": 0.5})
    text = output.getvalue()
    assert "Entraînement" in text
    assert "époque 10/10" in text
    assert "perte 0,0123" in text
    assert "val. 0,5" in text
    assert "époques/s" in text


def test_plot_numbers_keep_point_in_french():
    from keraslab_cli.core.i18n import format_number, format_plot_number

    set_language("fr")
    assert format_number(0.0123, 3) == "0,0123"
    assert format_plot_number(0.0123, 3) == "0.0123"
    assert format_plot_number(2.5) == "2.5"
