"""recipes/imdb_pretrained.py: killed in the language-model stage and resumed, it ends as an
uninterrupted run, and its classifier learns.

The recipe runs on a small folder of real reviews cut from the shared archive (reading the
whole archive takes a minute), on this backend, with TensorFlow unimportable on JAX and PyTorch.
"""

import csv
import json

import numpy as np

from kzoo.preprocessing import WordTokenizer
from tests.recipes.kill_resume import check_kill_and_resume
from tests.recipes.recipe_module import load_recipe

# Reviews per folder of the subset (cut from the archive's test reviews): (split, folder) -> count.
SUBSET = {("train", "neg"): 100, ("train", "pos"): 100, ("train", "unsup"): 160,
          ("test", "neg"): 30, ("test", "pos"): 30}  # fmt: skip


TINY = [
    "--quick",
    "--set", "train_reviews=None",
    "--set", "unsup_reviews=None",
    "--set", "test_reviews=None",
    "--set", "vocab=1500",
    "--set", "embedding_dim=16",
    "--set", "num_layers=1",
    "--set", "lm_valid_reviews=20",
    "--set", "lm_batch_size=8",
    "--set", "bptt=20",
    "--set", "num_sampled=64",
    "--set", "lm_steps_per_epoch=5",
    "--set", "lm_epochs=2",
    "--set", "maxlen=64",
    "--set", "bucket_width=64",
    "--set", "clf_batch_size=16",
    "--set", "clf_epochs=3",
    "--set", "clf_learning_rate=0.01",
]  # fmt: skip


def test_imdb_pretrained_resumes_after_a_kill_and_learns(imdb_subset, tmp_path):
    argv = [*TINY, "--set", f"data_path={imdb_subset(SUBSET)}"]
    # Language model: 2 epochs of 5 steps; the kill falls in its 2nd epoch.
    metrics, output = check_kill_and_resume(
        "imdb_pretrained.py", argv, tmp_path, kill_after_batches=7
    )
    assert "Smoke run (--quick)" in output
    assert "tokens/s" in output
    assert metrics["train_reviews"] + metrics["val_reviews"] == 200
    assert metrics["test_reviews"] == 60
    assert metrics["lm_val_perplexity"] < 1500  # below the uniform model's vocabulary size
    with open(tmp_path / "full" / "classifier" / "log.csv", newline="") as f:
        epochs = list(csv.DictReader(f))
    # The classifier learns: its training loss falls and it fits its reviews above chance.
    assert float(epochs[-1]["loss"]) < float(epochs[0]["loss"])
    assert float(epochs[-1]["accuracy"]) > 0.6
    names = ("imdb_lm.keras", "imdb_ulmfit.keras", "imdb_ulmfit.expected.json", "model_card.md")
    for name in (*names, "timings.json"):
        assert (tmp_path / "full" / name).exists()
    # The resumed run's stage times cover the epochs of both processes.
    with open(tmp_path / "resumed" / "timings.json") as f:
        timings = json.load(f)
    assert timings["language_model"]["epochs_trained"] == 2
    assert timings["classifier"]["epochs_trained"] == 3
    assert timings["language_model"]["seconds"] > 0


def test_transfer_weights_false_trains_the_same_classifier_from_random_weights():
    recipe = load_recipe("imdb_pretrained.py")
    texts = ["a good film", "a bad film", "good acting and a good plot", "bad plot"]
    tokenizer = WordTokenizer.from_texts(texts, max_tokens=12, sequence_length=8, truncating="pre")
    language_model = None
    embeddings = {}
    for transfer in (True, False):
        settings = recipe.Settings(
            vocab=12, embedding_dim=4, num_layers=1, lm_batch_size=2, num_sampled=3,
            maxlen=8, transfer_weights=transfer,
        )  # fmt: skip
        if language_model is None:
            language_model = recipe.build_language_model(settings, tokenizer, seed=0)
        model, _ = recipe.build_classifier(settings, tokenizer, language_model, 10, seed=0)
        embeddings[transfer] = model.backbone.get_layer("embedding").embeddings.numpy()
    lm_embedding = language_model.get_layer("embedding").embeddings.numpy()
    np.testing.assert_array_equal(embeddings[True], lm_embedding)
    assert not np.allclose(embeddings[False], lm_embedding)


def test_backward_classifier_reads_every_review_from_its_end():
    recipe = load_recipe("imdb_pretrained.py")
    texts = ["a good film", "a bad film", "good acting and a good plot", "bad plot"]
    tokenizer = WordTokenizer.from_texts(texts, max_tokens=12, sequence_length=8, truncating="pre")
    models = {}
    for backward in (False, True):
        settings = recipe.Settings(
            vocab=12, embedding_dim=4, num_layers=2, lm_batch_size=2, num_sampled=3,
            maxlen=8, backward=backward,
        )  # fmt: skip
        language_model = recipe.build_language_model(settings, tokenizer, seed=0)
        models[backward], _ = recipe.build_classifier(
            settings, tokenizer, language_model, 10, seed=0
        )
    models[True].set_weights(models[False].get_weights())
    ids = np.array([[2, 3, 4, 5, 0, 0], [6, 7, 8, 0, 0, 0]], dtype="int32")
    reversed_ids = np.array([[5, 4, 3, 2, 0, 0], [8, 7, 6, 0, 0, 0]], dtype="int32")
    np.testing.assert_allclose(
        models[True].predict(ids, verbose=0),
        models[False].predict(reversed_ids, verbose=0),
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip
    assert recipe.model_names(settings) == ("imdb_lm_backward", "imdb_ulmfit_backward")


def test_backward_run_trains_on_reversed_reviews(imdb_subset, tmp_path):
    recipe = load_recipe("imdb_pretrained.py")
    argv = [*TINY, "--set", f"data_path={imdb_subset(SUBSET)}", "--set", "backward=true"]
    argv += ["--set", "lm_epochs=1", "--set", "clf_epochs=1", "--output-dir", str(tmp_path)]
    metrics = recipe.main(argv)
    assert metrics["lm_val_perplexity"] < 1500  # below the uniform model's vocabulary size
    for name in ("imdb_lm_backward.keras", "imdb_ulmfit_backward.keras", "model_card.md"):
        assert (tmp_path / name).exists()
    assert "backward (last word first)" in (tmp_path / "model_card.md").read_text()
