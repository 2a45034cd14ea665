"""recipes/imdb_ensemble.py: averaging saved IMDB pipelines into one."""

import json
import os

import numpy as np
import pytest

import kzoo.models
from kzoo.models import TextClassifier, TextPipeline, WordTokenizer
from kzoo.models.text_classifier import TextClassifierPreprocessor
from tests.recipes.recipe_module import load_recipe

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
    members = [member(1), member(2), member(3)]
    ensemble = load_recipe("imdb_ensemble.py").build_ensemble(members, "ens")
    assert isinstance(ensemble, TextPipeline)
    expected = np.mean([m.predict(TEXTS)[:, 0] for m in members], axis=0)
    got = ensemble.predict(TEXTS)
    assert got.shape == (len(TEXTS),)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert not np.allclose(got, members[0].predict(TEXTS)[:, 0], atol=1e-4)  # members differ
    # An ensemble of TextPipeline members (files of older runs) works too.
    old = [
        TextPipeline(m.tokenizer, TextClassifier.from_config(m.get_config())) for m in members[:2]
    ]
    assert load_recipe("imdb_ensemble.py").build_ensemble(old, "old").predict(TEXTS).shape == (4,)


def test_members_with_different_tokenizers_are_refused():
    with pytest.raises(ValueError, match="another tokenizer"):
        load_recipe("imdb_ensemble.py").build_ensemble(
            [member(1), member(2, sequence_length=40)], "ens"
        )


@pytest.mark.large
def test_ensemble_recipe_saves_scores_and_reloads(tmp_path, shared_data_dir):
    paths = []
    for seed in (1, 2):
        paths.append(str(tmp_path / f"member{seed}.keras"))
        member(seed).save(paths[-1])
    archive = os.path.join(shared_data_dir, "aclImdb_v1.tar.gz")
    args = [*paths, "--name", "ens", "--output-dir", str(tmp_path), "--data-path", archive]
    # A budget below the float32 size makes the recipe store float16 weights.
    results = load_recipe("imdb_ensemble.py").main(
        [*args, "--test-size", "40", "--max-megabytes", "0.001"]
    )
    assert results["weights_dtype"] == "float16"
    assert results["test_size"] == 40 and 0 <= results["test_accuracy"] <= 1
    assert len(results["members"]) == 2
    saved = kzoo.models.load(str(tmp_path / "ens.keras"))
    average = np.mean([kzoo.models.load(p).predict(TEXTS)[:, 0] for p in paths], axis=0)
    np.testing.assert_allclose(saved.predict(TEXTS), average, atol=2e-3)  # float16 weights
    with open(tmp_path / "ens.expected.json") as f:
        expected = json.load(f)
    np.testing.assert_allclose(
        saved.predict(expected["texts"]), expected["probabilities"], atol=1e-6
    )
    assert "Test accuracy" in (tmp_path / "ens.md").read_text()
