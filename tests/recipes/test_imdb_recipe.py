"""recipes/imdb.py: killed mid-training and resumed, it ends as an uninterrupted run.

The recipe runs on a small folder of real reviews cut from the shared archive
(reading the whole archive takes a minute), on this backend, with TensorFlow
unimportable on JAX and PyTorch.
"""

import json
import os

import keras
import numpy as np
import pytest

import kzoo.models
from tests.recipes.kill_resume import check_kill_and_resume
from tests.recipes.recipe_module import assert_model_card, load_recipe, set_flags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Reviews per folder: 300 training and 100 test reviews per class.
SUBSET = {("train", "neg"): 300, ("train", "pos"): 300, ("test", "neg"): 100,
          ("test", "pos"): 100}  # fmt: skip


TINY = ["--quick", *set_flags(
    units=8, bidirectional="false", pooling="max", embedding_dim=16, vocab=2000, maxlen=64,
    bucket_width=64, epochs=4, learning_rate=0.01, lr_gamma=1, train_reviews="None",
    test_reviews="None",
)]  # fmt: skip


def test_imdb_recipe_resumes_after_a_kill_and_learns(imdb_subset, tmp_path):
    argv = [*TINY, "--set", f"data_path={imdb_subset(SUBSET)}"]
    # 540 training reviews in batches of 32: 16 batches per epoch. The kill
    # falls in epoch 3, after epoch 2 wrote a weight average to resume from
    # (early stopping cannot end the run before epoch 3).
    metrics, output = check_kill_and_resume("imdb.py", argv, tmp_path, kill_after_batches=40)
    assert "Smoke run (--quick)" in output
    assert (metrics["train_reviews"], metrics["validation_reviews"]) == (540, 60)
    assert metrics["test_reviews"] == 200
    epochs = metrics["epochs"]
    assert len(epochs) >= 3 and epochs[-1]["loss"] < epochs[0]["loss"] < 0.75
    assert metrics["average_val_accuracy"] is not None
    assert metrics["test_accuracy"] > 0.55  # chance: 0.5

    run = tmp_path / "resumed"
    for name in ("model_card.md", "timings.json", "curves.png", "log.csv", "best.keras"):
        assert (run / name).stat().st_size > 0, name
    card = assert_model_card(run / "model_card.md")
    assert f"{metrics['test_accuracy']:.2%}" in card
    model = kzoo.models.load(str(run / "model.keras"))
    assert isinstance(model, kzoo.models.TextClassifier)
    assert model.class_names == ["negative", "positive"]
    expected = json.loads((run / "model.expected.json").read_text())
    np.testing.assert_allclose(
        model.predict(expected["texts"])[:, 0], expected["probabilities"], atol=1e-5
    )
    assert not os.path.exists(os.path.join(ROOT, "runs", "imdb", "resumed"))


def test_imdb_settings_parse_and_check_their_values(capsys):
    recipe = load_recipe("imdb.py")
    settings, options = recipe.parse_settings(
        recipe.Settings,
        recipe.QUICK,
        argv=["--quick", "--units", "5", "--set", "pooling=max", "--set", "test_reviews=none"],
        recipe="imdb",
    )
    assert (settings.units, settings.pooling, settings.test_reviews) == (5, ("max",), None)
    assert settings.vocab == recipe.QUICK["vocab"]
    assert options.output_dir == os.path.join(
        "runs", "imdb", f"{keras.backend.backend()}-quick-seed1337"
    )
    for bad in (["--set", "word_type_dropout=1.5"], ["--cell-type", "transformer"]):
        with pytest.raises(SystemExit):
            recipe.parse_settings(recipe.Settings, recipe.QUICK, argv=bad, recipe="imdb")
    assert "1.5" in capsys.readouterr().err


@pytest.mark.large
def test_export_recipe_scores_float_and_int8_litert(tmp_path, shared_data_dir, monkeypatch):
    """recipes/imdb_export.py on 128 test reviews with the shipped model."""
    monkeypatch.setenv("KZOO_DATA_DIR", shared_data_dir)
    recipe = load_recipe("imdb_export.py")
    result = recipe.main(["--set", "limit=128", "--output-dir", str(tmp_path)])
    keras_row, float_row, int8_row = result["rows"]
    assert result["test_reviews"] == 128
    assert not [op for op in result["ops"] if op.startswith(("Flex", "Custom"))]
    assert float_row["agreement_with_keras"] == 1.0
    assert float_row["max_abs_probability_change"] < 1e-4
    assert int8_row["size_bytes"] < 0.3 * float_row["size_bytes"]
    assert abs(int8_row["accuracy"] - keras_row["accuracy"]) <= 0.02  # 2 reviews of 128
    assert keras_row["accuracy"] > 0.8
    assert json.loads((tmp_path / "metrics.json").read_text())["rows"] == result["rows"]
