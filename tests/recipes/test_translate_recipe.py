"""`recipes/translate.py`: its batches, and a tiny run killed mid-epoch and resumed."""

import math

import keras
import numpy as np

import kzoo.models  # noqa: F401  (registers Seq2Seq for load_model)
from kzoo.models import Seq2SeqPreprocessor
from tests.recipes.kill_resume import check_kill_and_resume
from tests.recipes.recipe_module import assert_model_card, load_recipe, set_flags

# A tiny model on the 1,500 shortest pairs: 44 training batches of 32 per epoch.
TINY = ["--quick", *set_flags(
    num_pairs=1500, max_words=4, test_size=50, validation_size=50, bleu_pairs=50,
    source_vocab=400, target_vocab=300, embedding_dim=16, units=32, batch_size=32, epochs=2,
    learning_rate=0.01, beam_width="none", max_target_len=8,
)]  # fmt: skip


def test_make_batches_share_one_bucket_length():
    recipe = load_recipe("translate.py")
    pairs = [("¿Dónde está Tom?", "Where is Tom?"), ("Hola.", "Hello.")] * 3
    pairs.append(("uno " * 12, "one " * 12))  # 12 tokens: longer than the last bucket
    pre = Seq2SeqPreprocessor.from_pairs(pairs, 20, 20)
    settings = recipe.Settings(batch_size=4, buckets=(4, 8))
    rows = 0
    for (source, decoder_in), target in recipe.make_batches(pairs, pre, settings, seed=1):
        # One padded length per batch, from the buckets, for all three arrays.
        assert source.shape[1] == decoder_in.shape[1] == target.shape[1] in (4, 8)
        assert (decoder_in[:, 0] == pre.start_token_id).all()
        # The target is the decoder input shifted left, ending with the end token.
        words = (target[:, :-1] != pre.pad_token_id) & (target[:, :-1] != pre.end_token_id)
        np.testing.assert_array_equal(decoder_in[:, 1:][words], target[:, :-1][words])
        assert ((target == pre.end_token_id).sum(axis=1) == 1).all()
        rows += len(source)
    assert rows == 6


def test_translate_kill_resume_and_learning(offline_data, tmp_path):
    # Killed in the middle of the 2nd epoch (44 batches per epoch).
    metrics, output = check_kill_and_resume("translate.py", TINY, tmp_path, kill_after_batches=66)
    assert "Smoke run (--quick)" in output
    assert metrics["pairs"] == {"test": 50, "validation": 50, "train": 1400}
    assert metrics["epochs_run"] == 2 and metrics["best_epoch"] in (1, 2)
    assert 0.0 <= metrics["test_bleu_greedy"] <= 100.0 and "test_bleu_beam" not in metrics
    # An untrained model's loss is about log(vocabulary size); this one has learned.
    run = tmp_path / "full"
    model = keras.saving.load_model(run / "model.keras")
    untrained = math.log(len(model.preprocessor.target_vocabulary))
    assert metrics["validation_loss"] < 0.8 * untrained
    assert len(metrics["examples"]) == 8

    # The vocabularies are inside the file: raw text in, sentences out.
    (translation,) = model.translate(["¿Dónde está Tom?"])
    assert isinstance(translation, str)
    assert (run / "attention.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "BLEU" in assert_model_card(run / "model_card.md")
