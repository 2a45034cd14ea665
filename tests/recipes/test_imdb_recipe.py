"""recipes/imdb.py: killed mid-training and resumed, it ends as an uninterrupted run.

The recipe runs on a small folder of real reviews cut from the shared archive
(reading the whole archive takes a minute), on this backend, with TensorFlow
unimportable on JAX and PyTorch.
"""

import json
import os
import tarfile

import keras
import numpy as np
import pytest

import kzoo.models
from tests.recipes.kill_resume import check_kill_and_resume
from tests.recipes.recipe_module import load_recipe

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN, TEST = 300, 100  # reviews per class
_SUBSET = {}


def imdb_subset(archive, folder):
    """A small `aclImdb/` folder of real reviews, for the recipe's `data_path`.

    The archive stores the test reviews first: reading only those (an eighth
    of the archive) is fast. So the subset's training and test reviews are both
    cut from the archive's test reviews, without overlap, with their file names
    (the recipe's validation split relies on the review ids).
    """
    wanted = {label: TRAIN + TEST for label in ("neg", "pos")}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or parts[1] != "test":
                continue
            label = parts[2]
            if wanted.get(label, 0) == 0:
                continue
            split = "train" if wanted[label] > TEST else "test"
            os.makedirs(os.path.join(folder, "aclImdb", split, label), exist_ok=True)
            with open(os.path.join(folder, "aclImdb", split, label, parts[3]), "wb") as f:
                f.write(tar.extractfile(member).read())
            wanted[label] -= 1
            if not any(wanted.values()):
                return folder
    raise AssertionError(f"the archive lacks test reviews: {wanted}")


@pytest.fixture
def small_imdb(shared_data_dir, tmp_path_factory, monkeypatch, tmp_path):
    """The subset folder (made once per test session), with a fresh Keras cache."""
    monkeypatch.setenv("KZOO_DATA_DIR", shared_data_dir)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    # PyTorch's default of one thread per core crawls on a busy 2-core machine.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return cached_subset(shared_data_dir, tmp_path_factory)


def cached_subset(shared_data_dir, tmp_path_factory):
    """`imdb_subset`, made once per test session."""
    if "path" not in _SUBSET:
        folder = str(tmp_path_factory.mktemp("imdb_subset"))
        _SUBSET["path"] = imdb_subset(os.path.join(shared_data_dir, "aclImdb_v1.tar.gz"), folder)
    return _SUBSET["path"]


TINY = [
    "--quick",
    "--set", "units=8",
    "--set", "bidirectional=false",
    "--set", "pooling=max",
    "--set", "embedding_dim=16",
    "--set", "vocab=2000",
    "--set", "maxlen=64",
    "--set", "bucket_width=64",
    "--set", "epochs=4",
    "--set", "learning_rate=0.01",
    "--set", "lr_gamma=1",
    "--set", "train_reviews=None",
    "--set", "test_reviews=None",
]  # fmt: skip


def test_imdb_recipe_resumes_after_a_kill_and_learns(small_imdb, tmp_path):
    argv = [*TINY, "--set", f"data_path={small_imdb}"]
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
    card = (run / "model_card.md").read_text()
    sections = ["Intended use", "Limitations", "Data", "Metrics", "Training"]
    assert [line[3:] for line in card.splitlines() if line.startswith("## ")] == sections
    assert "Licence:" in card and f"{metrics['test_accuracy']:.2%}" in card
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
