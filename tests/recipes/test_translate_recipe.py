"""Smoke test of recipes/translate.py --quick on the real spa-eng pairs."""

import importlib.util
import json
import os

import keras
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = os.path.join(HERE, "..", "..", "recipes", "translate.py")


def _load_recipe():
    spec = importlib.util.spec_from_file_location("translate_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tokenize_and_buckets():
    recipe = _load_recipe()
    assert recipe.tokenize("¿Dónde está Tom?") == ["¿", "dónde", "está", "tom", "?"]
    assert recipe.bucket_length(3, (8, 16)) == 8
    assert recipe.bucket_length(9, (8, 16)) == 16


@pytest.mark.large
def test_translate_quick(shared_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("KZOO_DATA_DIR", shared_data_dir)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    recipe = _load_recipe()
    out = tmp_path / "out"
    # fewer pairs than the 8 printed examples
    results = recipe.main(["--quick", "--output-dir", str(out), "--eval-size", "5"])
    for key in ("bleu_greedy", "bleu_beam"):
        assert 0.0 <= results[key] <= 100.0
    stem = out / "translate_quick"
    model = keras.saving.load_model(str(stem) + ".keras")
    with open(str(stem) + "_vocab.json") as f:
        vocab = json.load(f)
    assert model.get_config()["source_vocab_size"] == len(vocab["source"])
    assert model.get_config()["target_vocab_size"] == len(vocab["target"])
    assert os.path.getsize(str(stem) + ".keras") <= 10 * 2**20
    with open(str(stem) + "_attention.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    card = (out / "translate_quick.md").read_text()
    assert "BLEU" in card
