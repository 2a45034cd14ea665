"""Recipe flags are checked where they are parsed, before any data or training.

A bad number (`forecast.py --epochs -3`, `char_lm.py --quick --units 0`)
or an output folder that cannot be written ends the script at once with
argparse's message naming the flag and the value; a value given together with
`--quick` is used, not replaced by the quick setting.
"""

import pytest

from tests.recipes.recipe_module import load_recipe

BAD_VALUES = {
    "ner.py": [
        ("--epochs", "0"),
        ("--time-budget-minutes", "-1"),
        ("--word-dropout", "1.5"),
        ("--lstm-units", "0"),
        ("--min-count", "0"),
        ("--patience", "-1"),
        ("--max-train-sentences", "0"),
    ],
    "translate.py": [
        ("--epochs", "0"),
        ("--time-budget-minutes", "0"),
        ("--units", "0"),
        ("--embedding-dim", "0"),
        ("--vocab", "4"),  # followed by a valid target size below
        ("--eval-size", "0"),
    ],
}
HAS_QUICK = {"ner.py", "translate.py"}
CASES = [
    (script, flag, value, quick)
    for script, bad in BAD_VALUES.items()
    for flag, value in bad
    for quick in ([False, True] if script in HAS_QUICK else [False])
]


@pytest.fixture(scope="module")
def recipes():
    modules = {}

    def get(script):
        if script not in modules:
            modules[script] = load_recipe(script)
        return modules[script]

    return get


def base_args(script, tmp_path, output_dir=None):
    """The arguments a recipe needs besides the one under test."""
    args = ["--output-dir", str(output_dir or tmp_path / "out")]
    return args


def parse_error(recipe, argv, capsys):
    with pytest.raises(SystemExit) as info:
        recipe.parse_args(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(("script", "flag", "value", "quick"), CASES)
def test_bad_numeric_flag_is_an_argparse_error(
    recipes, script, flag, value, quick, tmp_path, capsys
):
    argv = base_args(script, tmp_path) + [flag, value] + (["--quick"] if quick else [])
    if script == "translate.py" and flag == "--vocab":
        argv.insert(argv.index(value) + 1, "100")
    message = parse_error(recipes(script), argv, capsys)
    shown = f"--set {value.split('=')[0]}" if flag == "--set" else f"argument {flag}"
    assert shown in message, message
    assert value.split("=")[-1] in message, message


@pytest.mark.parametrize("script", sorted(BAD_VALUES))
def test_unwritable_output_dir_is_found_when_parsing(recipes, script, tmp_path, capsys):
    a_file = tmp_path / "not_a_folder"
    a_file.write_text("x")
    # A path below a regular file cannot be created, even by root (for whom
    # a read-only folder's permission bits do not count).
    argv = base_args(script, tmp_path, output_dir=a_file / "sub")
    message = parse_error(recipes(script), argv, capsys)
    assert "argument --output-dir" in message and "not_a_folder" in message, message
    assert "not a folder" in message


def test_valid_flags_parse(recipes, tmp_path):
    for script in sorted(BAD_VALUES):
        recipes(script).parse_args(base_args(script, tmp_path))


def test_explicit_values_win_over_quick(recipes, tmp_path):
    out = ["--output-dir", str(tmp_path)]
    translate = recipes("translate.py")
    settings = translate.make_settings(translate.parse_args([*out, "--quick", "--units", "8"]))
    assert settings["UNITS"] == 8 and settings["EPOCHS"] == translate.QUICK["EPOCHS"]
