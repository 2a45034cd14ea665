"""Every recipe checks its flags and output folder first, before any data or training.

A number outside a setting's range (`forecast.py --epochs 0`) ends the script
at once with argparse's message naming the flag and the value, with and
without `--quick`; an output folder that cannot be created stops the run
before any data is read. Checked for every setting with a declared minimum of
every script in `recipes/`, so a new recipe or setting is covered as it lands.
"""

import dataclasses
import os
import typing

import pytest

from tests.recipes.recipe_module import ROOT, load_recipe

SCRIPTS = sorted(f for f in os.listdir(os.path.join(ROOT, "recipes")) if f.endswith(".py"))
_MODULES = {}


def recipe(script):
    if script not in _MODULES:
        _MODULES[script] = load_recipe(script)
    return _MODULES[script]


def _number_type(hint):
    """int or float for `int`, `float`, `int | None`...; None for anything else."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return args[0] if len(args) == 1 and args[0] in (int, float) else None


def bounded_settings(script):
    """(flag, value below the minimum) for each numeric setting with a minimum."""
    settings = recipe(script).Settings
    hints = typing.get_type_hints(settings)
    cases = []
    for field in dataclasses.fields(settings):
        kind = _number_type(hints[field.name])
        if kind is None or "min" not in field.metadata:
            continue
        low = field.metadata["min"]
        cases.append(("--" + field.name.replace("_", "-"), str(kind(low - 1))))
    return cases


@pytest.fixture
def no_data(monkeypatch, tmp_path):
    """Any attempt to read a dataset fails loudly: nothing may be read before the checks."""
    monkeypatch.setenv("KZOO_DATA_DIR", str(tmp_path / "no_data_here"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_out_of_range_values_stop_the_run_when_parsing(script, no_data, tmp_path, capsys):
    cases = bounded_settings(script)
    assert cases, f"{script}: no numeric setting declares a minimum"
    for flag, value in cases:
        for quick in ([], ["--quick"]):
            argv = [flag, value, "--output-dir", str(tmp_path / "out"), *quick]
            with pytest.raises(SystemExit) as info:
                recipe(script).main(argv)
            assert info.value.code == 2, (script, flag)
            message = capsys.readouterr().err
            assert f"argument {flag}" in message and value in message, message
            assert "must be >=" in message, message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("script", SCRIPTS)
def test_unwritable_output_dir_stops_the_run_before_any_data(script, no_data, tmp_path):
    a_file = tmp_path / "not_a_folder"
    a_file.write_text("x")
    # A path below a regular file cannot be created, even by root (for whom a
    # read-only folder's permission bits do not count).
    argv = ["--quick", "--output-dir", str(a_file / "sub")]
    if script == "imdb_ensemble.py":  # its members are checked first: give two that exist
        argv += ["--members", f"{a_file} {a_file}"]
    with pytest.raises((ValueError, OSError)) as info:
        recipe(script).main(argv)
    assert "not_a_folder" in str(info.value), str(info.value)
