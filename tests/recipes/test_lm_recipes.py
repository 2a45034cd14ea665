"""Smoke tests: recipes/char_lm.py and recipes/word_lm.py in --quick mode."""

import importlib.util
import io
import math
import os
import zipfile

import keras
import pytest

RECIPES = os.path.join(os.path.dirname(__file__), "..", "..", "recipes")


def stored_float_dtypes(path):
    import h5py

    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as raw:
        with h5py.File(io.BytesIO(raw.read()), "r") as store:
            found = []
            store.visititems(
                lambda name, item: (
                    found.append(item.dtype.name)
                    if isinstance(item, h5py.Dataset) and item.dtype.kind == "f"
                    else None
                )
            )
    return set(found)


def load_recipe(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(RECIPES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def offline_data(shared_data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("KZOO_DATA_DIR", shared_data_dir)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


def test_char_lm_quick(offline_data, tmp_path, capsys):
    result = load_recipe("char_lm").main(["--quick", "--output-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "bits/char" in out and "sample, temperature 0.5" in out
    valid = result["valid"]
    assert valid["tokens"] > 1000
    assert abs(valid["bits_per_token"] - valid["loss"] / math.log(2)) < 1e-9
    # six steps of a tiny model: about the uniform loss over ~60 characters
    assert 2.0 < valid["loss"] < 5.0
    assert result["steps"] == 6
    model = keras.saving.load_model(result["path"])
    assert not model.stateful and os.path.getsize(result["path"]) < 10e6
    assert len(model.generate("\n", max_length=10, sampler="top_k", k=3, seed=0)) == 10
    assert os.path.exists(result["path"].replace(".keras", ".md"))


def test_word_lm_quick(offline_data, tmp_path, capsys):
    recipe = load_recipe("word_lm")
    result = recipe.main(["--quick", "--output-dir", str(tmp_path), "--save-dtype", "float16"])
    out = capsys.readouterr().out
    assert "validation perplexity" in out and "test perplexity" in out
    test = result["test"]
    assert test["tokens"] == recipe.QUICK["eval_tokens"]  # every token, <eos> included
    assert abs(test["perplexity"] - math.exp(test["loss"])) < 1e-6 * test["perplexity"]
    assert 100 < test["perplexity"] < 20_000
    # the float16 file scores the test tokens like the float32 model
    assert abs(result["saved_test"]["loss"] - test["loss"]) < 0.01
    model = keras.saving.load_model(result["path"])
    assert model.dtype_policy.name == "float32"  # float16 storage, float32 compute
    assert stored_float_dtypes(result["path"]) == {"float16"}
    assert len(model.generate("the company", max_length=6, seed=0).split()) == 6
