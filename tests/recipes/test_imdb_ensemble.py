"""recipes/imdb_ensemble.py: averaging saved IMDB classifiers into one."""

import json
import os

import numpy as np
import pytest

from kzoo.models import TextClassifier, TextPipeline, WordTokenizer
from kzoo.models.text_classifier import TextClassifierPreprocessor
from tests.harness import run_without_tensorflow
from tests.recipes.recipe_module import load_recipe
from tests.recipes.test_imdb_recipe import SUBSET

WORDS = ["", "[UNK]", "wonderful", "film", "great", "acting", "awful", "boring", "plot"]
TEXTS = ["A wonderful film with great acting", "", "Awful, boring plot.", "film " * 200]


def member(seed, sequence_length=50):
    """A classifier as recipes/imdb.py saves it: with its preprocessor."""
    tokenizer = WordTokenizer(WORDS, sequence_length=sequence_length)
    return TextClassifier(
        len(WORDS),
        embedding_dim=6,
        units=5,
        pooling=["max"],
        seed=seed,
        preprocessor=TextClassifierPreprocessor(tokenizer),
    )


def test_ensemble_averages_the_members_probabilities():
    members = [member(1), member(2)]
    ensemble = load_recipe("imdb_ensemble.py").build_ensemble(members, "ens")
    assert isinstance(ensemble, TextPipeline)
    expected = np.mean([m.predict(TEXTS)[:, 0] for m in members], axis=0)
    got = ensemble.predict(TEXTS)
    assert got.shape == (len(TEXTS),)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert not np.allclose(got, members[0].predict(TEXTS)[:, 0], atol=1e-4)  # members differ
    # An ensemble of TextPipeline members (files of older runs) works too.
    old = [TextPipeline(m.tokenizer, TextClassifier.from_config(m.get_config())) for m in members]
    assert load_recipe("imdb_ensemble.py").build_ensemble(old, "old").predict(TEXTS).shape == (4,)


def test_a_forward_and_a_backward_classifier_average_into_one(tmp_path):
    """ULMFiT's pair: the backward member reads reversed ids (`ReverseSequence`)."""
    import keras

    from kzoo.layers import ReverseSequence
    from kzoo.models import TextClassifierBackbone, load
    from kzoo.utils.atomic_write import save_model

    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    inner = TextClassifierBackbone(len(WORDS), embedding_dim=6, units=5, pooling=["last"], seed=3)
    backward = TextClassifier(
        backbone=keras.Model(token_ids, inner(ReverseSequence()(token_ids))),
        preprocessor=TextClassifierPreprocessor(WordTokenizer(WORDS, sequence_length=50)),
        seed=3,
    )
    path = str(tmp_path / "backward.keras")
    save_model(backward, path)
    members = [member(1), load(path)]
    ensemble = load_recipe("imdb_ensemble.py").build_ensemble(members, "fwd_bwd")
    expected = np.mean([m.predict(TEXTS)[:, 0] for m in members], axis=0)
    np.testing.assert_allclose(ensemble.predict(TEXTS), expected, atol=1e-6)


def test_members_with_different_tokenizers_are_refused():
    with pytest.raises(ValueError, match="another tokenizer"):
        load_recipe("imdb_ensemble.py").build_ensemble(
            [member(1), member(2, sequence_length=40)], "ens"
        )


def test_missing_members_are_named_before_anything_loads(tmp_path):
    recipe = load_recipe("imdb_ensemble.py")
    missing = str(tmp_path / "nowhere.keras")
    with pytest.raises(FileNotFoundError, match="nowhere.keras"):
        recipe.main(["--members", f"{missing} {missing}", "--output-dir", str(tmp_path / "o")])
    with pytest.raises(ValueError, match="at least two"):
        recipe.main(["--members", missing, "--output-dir", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


def check_ensemble_recipe(folder, data_path):
    """Runs the recipe on two small members; checks its files (called in a subprocess)."""
    paths = []
    for seed in (1, 2):
        paths.append(os.path.join(folder, f"member{seed}.keras"))
        member(seed).save(paths[-1])
    out = os.path.join(folder, "run")
    argv = ["--members", " ".join(paths), "--output-dir", out, "--set", f"data_path={data_path}"]
    # A budget below the float32 size makes the recipe store float16 weights.
    metrics = load_recipe("imdb_ensemble.py").main([*argv, "--set", "max_megabytes=0.001"])
    assert metrics["weights_dtype"] == "float16" and metrics["test_reviews"] == 200
    assert [m["path"] for m in metrics["members"]] == paths
    import kzoo.models

    saved = kzoo.models.load(os.path.join(out, "model.keras"))
    average = np.mean([kzoo.models.load(p).predict(TEXTS)[:, 0] for p in paths], axis=0)
    np.testing.assert_allclose(saved.predict(TEXTS), average, atol=2e-3)  # float16 weights
    with open(os.path.join(out, "model.expected.json")) as f:
        expected = json.load(f)
    np.testing.assert_allclose(
        saved.predict(expected["texts"]), expected["probabilities"], atol=1e-6
    )
    with open(os.path.join(out, "metrics.json")) as f:
        assert json.load(f) == metrics
    with open(os.path.join(out, "model_card.md")) as f:
        card = f.read()
    headings = [line[3:] for line in card.splitlines() if line.startswith("## ")]
    assert headings == ["Intended use", "Limitations", "Data", "Metrics", "Training"]
    assert "Licence:" in card and f"{metrics['test_accuracy']:.2%}" in card
    print("ENSEMBLE_OK")


@pytest.mark.large
def test_ensemble_recipe_saves_scores_and_reloads(tmp_path, imdb_subset):
    """On JAX in a process where TensorFlow cannot be imported (once, in the large pass)."""
    subset = imdb_subset(SUBSET)
    proc = run_without_tensorflow(
        "from tests.recipes.test_imdb_ensemble import check_ensemble_recipe\n"
        f"check_ensemble_recipe({str(tmp_path)!r}, {subset!r})\n",
        "jax",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "ENSEMBLE_OK" in proc.stdout
