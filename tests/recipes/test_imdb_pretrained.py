"""recipes/imdb_pretrained.py: killed in the language-model stage and resumed, it ends as an
uninterrupted run, and its classifier learns.

The recipe runs on a small folder of real reviews cut from the shared archive (reading the
whole archive takes a minute), on this backend, with TensorFlow unimportable on JAX and PyTorch.
"""

import csv
import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest

from kzoo.models import TextClassifier, load
from kzoo.models.text_classifier import TextClassifierPreprocessor
from kzoo.preprocessing import WordTokenizer
from kzoo.recipes import RunFolder
from kzoo.utils.atomic_write import save_model
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


def small_settings(recipe, **kwargs):
    return recipe.Settings(
        vocab=12, embedding_dim=4, num_layers=2, lm_batch_size=2, num_sampled=3, maxlen=8,
        **kwargs,
    )  # fmt: skip


def small_tokenizer():
    texts = ["a good film", "a bad film", "good acting and a good plot", "bad plot"]
    return WordTokenizer.from_texts(texts, max_tokens=12, sequence_length=8, truncating="pre")


def test_transfer_weights_false_trains_the_same_classifier_from_random_weights():
    recipe = load_recipe("imdb_pretrained.py")
    tokenizer = small_tokenizer()
    language_model = None
    embeddings = {}
    for transfer in (True, False):
        settings = small_settings(recipe, transfer_weights=transfer)
        if language_model is None:
            language_model = recipe.build_language_model(settings, tokenizer, seed=0)
        model, _ = recipe.build_classifier(
            settings, tokenizer, {"forward": language_model}, 10, seed=0
        )
        backbone = model.backbone.get_layer("forward_backbone")
        embeddings[transfer] = backbone.get_layer("embedding").embeddings.numpy()
    lm_embedding = language_model.get_layer("embedding").embeddings.numpy()
    np.testing.assert_array_equal(embeddings[True], lm_embedding)
    assert not np.allclose(embeddings[False], lm_embedding)


def test_backward_classifier_reads_every_review_from_its_end():
    recipe = load_recipe("imdb_pretrained.py")
    tokenizer = small_tokenizer()
    models = {}
    for direction in ("forward", "backward"):
        settings = small_settings(recipe, direction=direction)
        language_model = recipe.build_language_model(settings, tokenizer, seed=0)
        models[direction], _ = recipe.build_classifier(
            settings, tokenizer, {direction: language_model}, 10, seed=0
        )
    models["backward"].set_weights(models["forward"].get_weights())
    ids = np.array([[2, 3, 4, 5, 0, 0], [6, 7, 8, 0, 0, 0]], dtype="int32")
    reversed_ids = np.array([[5, 4, 3, 2, 0, 0], [8, 7, 6, 0, 0, 0]], dtype="int32")
    np.testing.assert_allclose(
        models["backward"].predict(ids, verbose=0),
        models["forward"].predict(reversed_ids, verbose=0),
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip


def test_both_directions_start_from_their_own_language_model_in_shared_groups():
    recipe = load_recipe("imdb_pretrained.py")
    tokenizer = small_tokenizer()
    settings = small_settings(recipe, direction="both")
    language_models = {
        direction: recipe.build_language_model(settings, tokenizer, seed=seed)
        for seed, direction in enumerate(("forward", "backward"))
    }
    model, groups = recipe.build_classifier(settings, tokenizer, language_models, 10, seed=0)
    assert groups[:3] == [
        ["embedding", "backward_embedding"],
        ["lstm_0", "backward_lstm_0"],
        ["lstm_1", "backward_lstm_1"],
    ]
    assert groups[3] == ["feature_norm", "hidden", "output"]
    for direction, prefix in (("forward", ""), ("backward", "backward_")):
        backbone = model.backbone.get_layer(f"{direction}_backbone")
        np.testing.assert_array_equal(
            backbone.get_layer(f"{prefix}embedding").embeddings.numpy(),
            language_models[direction].get_layer("embedding").embeddings.numpy(),
        )
    # The head reads both directions' pooled features: 2 directions x 3 poolings x 4 units.
    assert model.backbone.output.shape == (None, 24)


def test_both_directions_run_end_to_end(imdb_subset, tmp_path):
    recipe = load_recipe("imdb_pretrained.py")
    argv = [*TINY, "--set", f"data_path={imdb_subset(SUBSET)}", "--set", "direction=both"]
    argv += ["--set", "lm_epochs=1", "--set", "clf_epochs=1", "--output-dir", str(tmp_path)]
    metrics = recipe.main(argv)
    # Both language models beat the uniform model (its perplexity: the vocabulary size).
    assert metrics["lm_val_perplexity"] < 1500 and metrics["lm_backward_val_perplexity"] < 1500
    names = ["imdb_lm.keras", "imdb_lm_backward.keras", "imdb_ulmfit_bidirectional.keras"]
    for name in [*names, "imdb_ulmfit_bidirectional.expected.json", "model_card.md"]:
        assert (tmp_path / name).exists()
    assert (tmp_path / "language_model_backward" / "best.keras").exists()
    assert "last word first" in (tmp_path / "model_card.md").read_text()


def teacher_file(path, seed):
    """A small raw-text classifier (random weights) saved as a teacher."""
    words = ["", "[UNK]", "good", "great", "bad", "awful", "film", "plot", "acting"]
    teacher = TextClassifier(
        len(words), embedding_dim=4, units=3, pooling=["max"], seed=seed,
        preprocessor=TextClassifierPreprocessor(WordTokenizer(words, sequence_length=40)),
    )  # fmt: skip
    save_model(teacher, path)
    return str(path)


def test_a_teacher_labels_the_unlabelled_reviews_and_the_classifier_learns_from_them(
    imdb_subset, tmp_path, capsys
):
    recipe = load_recipe("imdb_pretrained.py")
    data_path = imdb_subset(SUBSET)
    # Two teachers: their probabilities are averaged.
    teachers = [teacher_file(tmp_path / f"teacher{seed}.keras", seed=seed) for seed in (3, 5)]
    teacher = " ".join(teachers)
    argv = [*TINY, "--set", f"data_path={data_path}", "--set", f"teacher={teacher}"]
    argv += ["--set", "lm_epochs=1", "--set", "clf_epochs=1", "--output-dir", str(tmp_path / "run")]
    metrics = recipe.main(argv)
    # The language model's unlabelled reviews (160 read, 20 held out for its validation).
    assert metrics["unlabelled_reviews"] == 140
    assert "Tokenizing 320 reviews" in capsys.readouterr().out  # 180 labelled + 140 unlabelled
    settings = recipe.Settings(data_path=data_path, lm_valid_reviews=20, teacher=teacher)
    data = recipe.load_reviews(settings, 0, {})
    texts = data["unlabelled"][0]
    np.testing.assert_allclose(
        np.load(tmp_path / "run" / "teacher" / "probabilities.npy"),
        np.mean([load(t).predict(texts)[:, 0] for t in teachers], axis=0),
        atol=1e-6,
    )
    val_texts, val_labels = data["val"]
    val_probabilities = np.mean([load(t).predict(val_texts)[:, 0] for t in teachers], axis=0)
    expected = np.mean((val_probabilities > 0.5) == (val_labels == 1))
    assert metrics["teacher_val_accuracy"] == pytest.approx(expected)
    for name in ("imdb_ulmfit_distilled.keras", "imdb_ulmfit_distilled.expected.json"):
        assert (tmp_path / "run" / name).exists()
    assert "teacher" in (tmp_path / "run" / "model_card.md").read_text()
    # Resumed with another teacher, the run refuses the stored probabilities.
    argv[argv.index(f"teacher={teacher}")] = f"teacher={teachers[0]}"
    with pytest.raises(ValueError, match="another teacher"):
        recipe.main(argv)


def test_a_teacher_that_is_not_a_two_class_text_classifier_is_refused(tmp_path):
    recipe = load_recipe("imdb_pretrained.py")
    tokenizer = small_tokenizer()
    settings = small_settings(recipe)
    save_model(recipe.build_language_model(settings, tokenizer, seed=0), tmp_path / "lm.keras")
    settings = small_settings(recipe, teacher=str(tmp_path / "lm.keras"))
    data = {"unlabelled": (["a good film"], np.array([-1]))}
    with pytest.raises(ValueError, match="two-class kzoo classifier of raw text"):
        recipe.teacher_stage(
            RunFolder(str(tmp_path / "teacher")), data, settings, SimpleNamespace(resume=True),
            {}, {},
        )  # fmt: skip


def test_a_finished_language_model_is_fine_tuned_without_pretraining(imdb_subset, tmp_path):
    recipe = load_recipe("imdb_pretrained.py")
    argv = [*TINY, "--set", f"data_path={imdb_subset(SUBSET)}"]
    argv += ["--set", "lm_epochs=1", "--set", "clf_epochs=1"]
    pretrained = recipe.main([*argv, "--output-dir", str(tmp_path / "pretrain")])
    language_model = str(tmp_path / "pretrain" / "imdb_lm.keras")
    given = recipe.main(
        [*argv, "--set", f"language_model={language_model}", "--output-dir", str(tmp_path / "run")]
    )
    # The same model on the same held-out reviews: the same perplexity.
    assert given["lm_val_perplexity"] == pytest.approx(pretrained["lm_val_perplexity"], rel=1e-4)
    # No vocabulary or language-model stage, and the user's model is not written again.
    for name in ("vocabulary", "language_model", "imdb_lm.keras"):
        assert not (tmp_path / "run" / name).exists()
    classifier = load(str(tmp_path / "run" / "imdb_ulmfit.keras"))
    words = load(language_model).vocabulary[2:]
    assert classifier.preprocessor.tokenizer.vocabulary == ["", "[UNK]", *words]
    assert f"`{language_model}`" in (tmp_path / "run" / "model_card.md").read_text()


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"num_layers": 3}, r"num_layers=2 \(this run: 3\)"),
        ({"embedding_dim": 5}, r"embedding_dim=4 \(this run: 5\), units=4 \(this run: 5\)"),
        ({"direction": "both"}, "needs a forward and a backward one"),
    ],
)
def test_a_language_model_that_does_not_fit_the_classifier_is_refused(tmp_path, settings, message):
    recipe = load_recipe("imdb_pretrained.py")
    model = recipe.build_language_model(small_settings(recipe), small_tokenizer(), seed=0)
    model.save_stateless(str(tmp_path / "lm.keras"))
    settings = dataclasses.replace(
        small_settings(recipe, language_model=str(tmp_path / "lm.keras")), **settings
    )
    with pytest.raises(ValueError, match=message):
        recipe.finished_language_model({}, settings, {})


def test_a_language_model_argument_that_is_a_classifier_is_refused(tmp_path):
    recipe = load_recipe("imdb_pretrained.py")
    settings = small_settings(recipe, language_model=teacher_file(tmp_path / "c.keras", seed=0))
    with pytest.raises(ValueError, match="must be a word-level kzoo LanguageModel"):
        recipe.finished_language_model({}, settings, {})
