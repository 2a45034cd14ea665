"""WordTokenizer.from_texts: TextVectorization's vocabulary in plain Python."""

import keras
import numpy as np
import pytest

from kzoo.preprocessing import WordTokenizer
from tests.harness import run_without_tensorflow
from tests.models.test_text_classifier import imdb_reviews

BACKEND = keras.backend.backend()

# Ties everywhere: equal counts must be ordered as TextVectorization orders them
# (decreasing UTF-8 bytes), including non-ASCII words and words that differ in case.
CORPUS = [
    "b b a c a d D e é É [UNK] [unk] zz",
    "Hello, World! It's GREAT -- isn't it? école Straße naïve",
    "tabs\tand\nnewlines\r\nand\x0bvertical\x0cfeeds no\xa0break",
    "emoji 😀 and 日本語 mixed-case MiXeD ... '' «quotes» “curly”",
    "a a b zz zz y x w v 1 2 10 02",
    "",
]


def test_from_texts_counts_and_breaks_ties_by_decreasing_bytes():
    tokenizer = WordTokenizer.from_texts(["b b a c a d", "D"])
    # a, b, d twice (D lower-cased); ties: d > b > a; then c.
    assert tokenizer.vocabulary == ["", "[UNK]", "d", "b", "a", "c"]
    top = WordTokenizer.from_texts(["b b a c a d", "D"], max_tokens=4)
    assert top.vocabulary == ["", "[UNK]", "d", "b"]
    frequent = WordTokenizer.from_texts(["b b a c a d", "D"], min_count=2)
    assert frequent.vocabulary == ["", "[UNK]", "d", "b", "a"]
    np.testing.assert_array_equal(top(["a b c d"]), [[1, 3, 1, 2]])


def test_from_texts_keeps_the_other_settings():
    tokenizer = WordTokenizer.from_texts(
        ["x<br />Y y"],
        sequence_length=2,
        standardize="lower",
        replace_br_tags=False,
        truncating="pre",
    )
    # Without <br /> replacement "x<br" and "/>y" are words ("lower" keeps punctuation).
    assert tokenizer.vocabulary == ["", "[UNK]", "y", "x<br", "/>y"]
    assert tokenizer.get_config() == {
        "vocabulary": tokenizer.vocabulary,
        "sequence_length": 2,
        "standardize": "lower",
        "replace_br_tags": False,
        "truncating": "pre",
    }
    np.testing.assert_array_equal(tokenizer(["y x<br y"]), [[3, 2]])
    assert WordTokenizer.from_texts(["x<br />y"]).vocabulary == ["", "[UNK]", "y", "x"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_tokens=2), "max_tokens"),
        (dict(max_tokens=2.5), "max_tokens"),
        (dict(min_count=0), "min_count"),
        (dict(standardize="upper"), "standardize"),
        (dict(sequence_length=0), "sequence_length"),
    ],
)
def test_from_texts_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WordTokenizer.from_texts(["a b"], **kwargs)


def test_from_texts_bad_texts_are_named():
    with pytest.raises(TypeError, match="texts"):
        WordTokenizer.from_texts(None)
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        WordTokenizer.from_texts(["a", 3])


def adapted_vocabulary(texts, **kwargs):
    layer = keras.layers.TextVectorization(**kwargs)
    layer.adapt(np.asarray(texts, dtype=object))
    return [str(word) for word in layer.get_vocabulary()]


@pytest.mark.skipif(
    BACKEND != "tensorflow", reason="compared with TextVectorization once, on TensorFlow"
)
@pytest.mark.parametrize("max_tokens", [None, 3, 4, 12])
@pytest.mark.parametrize("standardize", ["lower_and_strip_punctuation", "lower", None])
def test_from_texts_equals_text_vectorization(max_tokens, standardize):
    got = WordTokenizer.from_texts(CORPUS, max_tokens=max_tokens, standardize=standardize)
    want = adapted_vocabulary(CORPUS, max_tokens=max_tokens, standardize=standardize)
    assert got.vocabulary == want


@pytest.mark.skipif(
    BACKEND != "tensorflow", reason="compared with TextVectorization once, on TensorFlow"
)
def test_from_texts_equals_text_vectorization_on_imdb_reviews(shared_data_dir):
    reviews = [r.replace("<br />", " ") for r in imdb_reviews(shared_data_dir, 500)]
    full = WordTokenizer.from_texts(reviews)
    assert len(full.vocabulary) > 5000  # so that max_tokens=5000 cuts inside the ties
    assert full.vocabulary == adapted_vocabulary(reviews)
    top = WordTokenizer.from_texts(reviews, max_tokens=5000)
    assert top.vocabulary == adapted_vocabulary(reviews, max_tokens=5000)


@pytest.mark.skipif(
    BACKEND != "jax", reason="checked once, on JAX (the tokenizer has no backend code)"
)
def test_from_texts_runs_without_tensorflow():
    proc = run_without_tensorflow(
        """
        from kzoo.preprocessing import WordTokenizer
        tok = WordTokenizer.from_texts(["b b a c a d", "D"] * 50, max_tokens=5, verbose=1)
        assert tok.vocabulary == ["", "[UNK]", "d", "b", "a"], tok.vocabulary
        print("ids", tok(["a d x"]).tolist())
        """,
        BACKEND,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ids [[4, 2, 1]]" in proc.stdout
    assert "Counting words" in proc.stdout
