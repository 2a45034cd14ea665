"""`recipes/ner.py`: killed mid-epoch and resumed, it ends as an uninterrupted run; it learns."""

import json

import keras

import kzoo.models  # noqa: F401  (registers the tagger for load_model)
from tests.recipes.kill_resume import check_kill_and_resume
from tests.recipes.recipe_module import assert_model_card, set_flags

# A tiny tagger (no character features) on 400 short sentences: 25 batches of 16 per epoch.
TINY = ["--quick", *set_flags(
    train_sentences=400, valid_sentences=64, test_sentences=64, max_tokens=16, buckets=16,
    char_encoder="none", word_dim=16, lstm_units=16, batch_size=16, epochs=3,
    learning_rate=0.02,
)]  # fmt: skip


def test_ner_kill_resume_and_learning(offline_data, tmp_path):
    # Killed in the middle of the 2nd epoch (25 batches per epoch).
    metrics, output = check_kill_and_resume("ner.py", TINY, tmp_path, kill_after_batches=35)
    assert "Smoke run (--quick)" in output
    assert metrics["sentences"] == {"train": 400, "valid": 64, "test": 64}
    assert 1 <= metrics["best_epoch"] <= metrics["epochs_run"] <= 3
    # An untrained tagger finds no entity (F1 0): this one has learned some.
    assert metrics["valid"]["f1"] > 0.05 and metrics["test"]["f1"] > 0.05
    assert set(metrics["test"]["per_type"]) <= {"PER", "ORG", "LOC", "MISC"}
    assert len(metrics["sample"]["tags"]) == 9

    run = tmp_path / "full"
    assert_model_card(run / "model_card.md")
    assert "seconds" not in json.dumps(metrics)  # timings live in timings.json
    assert (run / "timings.json").is_file()
    tagger = keras.saving.load_model(run / "model.keras")
    sentence = metrics["sample"]["sentence"]
    assert tagger.predict([sentence]) == [metrics["sample"]["tags"]]
