"""Smoke run of recipes/imdb.py --quick on the real IMDB data (subprocess)."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import kzoo.models
from tests.recipes.recipe_module import load_recipe

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_recipe(script, args, tmp_path, shared_data_dir, timeout):
    """Runs `recipes/<script>` on this backend in `tmp_path`; asserts it succeeded."""
    env = dict(
        os.environ,
        KERAS_BACKEND=keras.backend.backend(),
        KZOO_DATA_DIR=shared_data_dir,
        # torch's default of one thread per core crawls on a busy 2-core machine.
        OMP_NUM_THREADS="1",
    )
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "recipes", script), *args],
        env=env,
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.large
def test_quick_recipe_trains_evaluates_and_saves(tmp_path, shared_data_dir):
    args = ["--quick", "--verbose", "2", "--output-dir", str(tmp_path)]
    proc = run_recipe("imdb.py", args, tmp_path, shared_data_dir, timeout=600)
    match = re.search(r"Test accuracy: ([0-9.]+)% on 500 test reviews", proc.stdout)
    assert match, proc.stdout[-2000:]
    accuracy = float(match.group(1))
    assert 0 <= accuracy <= 100
    assert "WordTokenizer == TextVectorization" in proc.stdout
    loaded = re.search(r"Loaded (\d+) train, (\d+) validation \(from train", proc.stdout)
    assert loaded and int(loaded.group(1)) + int(loaded.group(2)) == 1000, proc.stdout[-2000:]
    assert 50 <= int(loaded.group(2)) <= 150  # about 10 % of the 1,000 training reviews

    name = "imdb_bigru_quick"
    for suffix in (".keras", ".md", "_curves.png", "_history.json", ".expected.json"):
        assert (tmp_path / f"{name}{suffix}").stat().st_size > 0, suffix
    with open(tmp_path / f"{name}_history.json") as f:
        history = json.load(f)
    assert history["test_accuracy"] * 100 == pytest.approx(accuracy, abs=0.01)
    assert history["backend"] == keras.backend.backend()
    assert len(history["epoch_seconds"]) == 1

    model = kzoo.models.load(str(tmp_path / f"{name}.keras"))
    with open(tmp_path / f"{name}.expected.json") as f:
        expected = json.load(f)
    assert isinstance(model, kzoo.models.TextClassifier)
    assert model.class_names == ["negative", "positive"]
    got = model.predict(expected["texts"])[:, 0]
    np.testing.assert_allclose(got, expected["probabilities"], atol=1e-5)
    assert np.all((got > 0) & (got < 1))


@pytest.mark.large
def test_export_recipe_scores_float_and_int8_litert(tmp_path, shared_data_dir):
    """recipes/imdb_export.py on 128 test reviews with the shipped model."""
    model = os.path.join(ROOT, "saved_models", "imdb_bigru.keras")
    args = ["--model", model, "--limit", "128", "--output-dir", str(tmp_path)]
    run_recipe("imdb_export.py", args, tmp_path, shared_data_dir, timeout=900)
    result = json.loads((tmp_path / f"imdb_export_{keras.backend.backend()}.json").read_text())
    keras_row, float_row, int8_row = result["rows"]
    assert result["test_reviews"] == 128
    assert not [op for op in result["ops"] if op.startswith(("Flex", "Custom"))]
    assert float_row["agreement_with_keras"] == 1.0
    assert float_row["max_abs_probability_change"] < 1e-4
    assert int8_row["size_bytes"] < 0.3 * float_row["size_bytes"]
    assert abs(int8_row["accuracy"] - keras_row["accuracy"]) <= 0.02  # 2 reviews of 128
    assert keras_row["accuracy"] > 0.8


def test_set_overrides_settings_with_their_types():
    recipe = load_recipe("imdb.py")
    _, config, _ = recipe.parse_args(
        ["--set", "word_type_dropout=0", "--set", 'pooling=["max"]', "--set", "truncating=post"]
    )
    assert config["word_type_dropout"] == 0.0 and isinstance(config["word_type_dropout"], float)
    assert config["pooling"] == ["max"] and config["truncating"] == "post"


@pytest.mark.parametrize(
    "item", ["no_such_key=1", "units=1.5", "units=true", "bidirectional=3", "units"]
)
def test_set_rejects_unknown_keys_and_wrong_types(item, capsys):
    with pytest.raises(SystemExit):
        load_recipe("imdb.py").parse_args(["--set", item])
    assert "--set" in capsys.readouterr().err
