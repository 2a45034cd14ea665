"""Smoke test of recipes/translate.py --quick on the real spa-eng pairs."""

import importlib.util
import os

import keras
import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = os.path.join(HERE, "..", "..", "recipes", "translate.py")


def _load_recipe():
    spec = importlib.util.spec_from_file_location("translate_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_batches_share_one_bucket_length():
    from kzoo.models import Seq2SeqPreprocessor

    recipe = _load_recipe()
    pairs = [("¿Dónde está Tom?", "Where is Tom?"), ("Hola.", "Hello.")] * 3
    pairs.append(("uno " * 12, "one " * 12))  # 12 tokens: longer than the last bucket
    pre = Seq2SeqPreprocessor.from_pairs(pairs, 20, 20)
    batches = recipe.make_batches(pairs, pre, batch_size=4, buckets=(4, 8))
    rows = 0
    for (source, decoder_in), target in batches:
        # One padded length per batch, from the buckets, for all three arrays.
        assert source.shape[1] == decoder_in.shape[1] == target.shape[1] in (4, 8)
        assert (decoder_in[:, 0] == pre.start_token_id).all()
        # The target is the decoder input shifted left, ending with the end token.
        words = (target[:, :-1] != pre.pad_token_id) & (target[:, :-1] != pre.end_token_id)
        np.testing.assert_array_equal(decoder_in[:, 1:][words], target[:, :-1][words])
        assert ((target == pre.end_token_id).sum(axis=1) == 1).all()
        rows += len(source)
    assert rows == 6


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
    # The vocabularies are inside the file: raw text in, sentences out.
    assert not os.path.exists(str(stem) + "_vocab.json")
    assert model.get_config()["source_vocab_size"] == len(model.preprocessor.source_vocabulary)
    (translation,) = model.translate(["¿Dónde está Tom?"])
    assert isinstance(translation, str)
    assert os.path.getsize(str(stem) + ".keras") <= 10 * 2**20
    with open(str(stem) + "_attention.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    card = (out / "translate_quick.md").read_text()
    assert "BLEU" in card
