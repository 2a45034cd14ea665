"""SequenceTagger: training, masking, raw-text tagging, save/load, losses, parts."""

import itertools
import json
import os

import keras
import numpy as np
import pytest
from keras import ops

from kzoo.layers import CRF, CharacterEncoder, UnknownWordDropout
from kzoo.models.sequence_tagger import (
    CASINGS,
    SequenceTagger,
    SequenceTaggerBackbone,
    SequenceTaggerPreprocessor,
    casing_of,
)
from tests.conftest import BACKEND
from tests.harness import run_without_tensorflow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = os.path.join(ROOT, "saved_models", "ner_crf.keras")
TOL = 1e-5
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
SENTENCES = [
    ("John Smith lives in Paris .", "B-PER I-PER O O B-LOC O"),
    ("Mary visited Berlin", "B-PER O B-LOC"),
    ("the weather in London is bad", "O O O B-LOC O O"),
    ("Anna Maria Lopez met John in New York .", "B-PER I-PER I-PER O B-PER O B-LOC I-LOC O"),
]
TOKENS = [s.split() for s, _ in SENTENCES]
LABELS = [t.split() for _, t in SENTENCES]


def make_tagger(decoder="crf", char_encoder="cnn", buckets=(16,), **kwargs):
    words, chars = SequenceTagger.build_vocabularies(TOKENS)
    args = dict(
        word_dim=8,
        char_dim=4,
        char_units=4,
        max_word_length=6,
        casing_dim=3,
        lstm_units=6,
        dropout=0.0,
        buckets=buckets,
        seed=0,
    )
    args.update(kwargs)
    return SequenceTagger(words, TAGS, chars, char_encoder=char_encoder, decoder=decoder, **args)


def numpy(x):
    return ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def trained():
    """One tagger per decoder, trained on the toy sentences (shared: building and
    compiling dominate the cost of these tests on JAX)."""
    taggers, losses = {}, {}
    for decoder in ("softmax", "crf"):
        keras.utils.set_random_seed(0)
        tagger = make_tagger(decoder, buckets=(8, 16))
        tagger.compile(optimizer=keras.optimizers.Adam(0.05))
        x, y = tagger.encode(TOKENS, length=16), tagger.encode_tags(LABELS, length=16)
        # train_on_batch returns the loss before its update (no dropout here).
        history = [float(tagger.train_on_batch(x, y)) for _ in range(41)]
        taggers[decoder], losses[decoder] = tagger, history
    return taggers, losses


@pytest.mark.parametrize("decoder", ["softmax", "crf"])
def test_training_lowers_the_loss(trained, decoder):
    _, losses = trained
    history = losses[decoder]
    assert np.isfinite(history[0]) and history[1] < history[0]  # one step
    assert history[-1] < 0.1 * history[0]


def test_a_trained_tagger_tags_its_training_sentences(trained):
    for tagger in trained[0].values():
        assert tagger.predict(SENTENCES[0][0]) == [LABELS[0]]
        assert tagger.predict(TOKENS) == LABELS


def test_softmax_loss_is_masked_token_cross_entropy(trained):
    tagger = trained[0]["softmax"]
    x = tagger.encode(TOKENS[:3], length=16, rows=4)  # one row is all padding
    y = tagger.encode_tags(LABELS[:3], length=16, rows=4)
    scores = numpy(tagger(x)).astype("float64")
    log_probs = scores - np.log(np.exp(scores).sum(-1, keepdims=True))
    mask = x["words"] != 0
    picked = np.take_along_axis(log_probs, y[..., None], -1)[..., 0]
    expected = -picked[mask].mean()
    loss = float(numpy(tagger.compute_loss(x, y, scores.astype("float32"))))
    assert abs(loss - expected) <= TOL * (1 + abs(expected))


def test_crf_loss_is_mean_negative_log_likelihood_of_real_sentences(trained):
    tagger = trained[0]["crf"]
    sentences = [["John", "lives"], ["Mary", "Smith", "."]]
    gold = [["B-PER", "O"], ["O", "I-LOC", "B-PER"]]  # an unlikely path too
    x = tagger.encode(sentences, length=8, rows=3)  # the third row is empty
    y = tagger.encode_tags(gold, length=8, rows=3)
    emissions = numpy(tagger(x)).astype("float64")
    trans, start, end = (
        numpy(w).astype("float64")
        for w in (tagger.crf.transitions, tagger.crf.start_scores, tagger.crf.end_scores)
    )

    def path_score(e, path):
        s = start[path[0]] + end[path[-1]] + sum(e[t, k] for t, k in enumerate(path))
        return s + sum(trans[a, b] for a, b in zip(path, path[1:]))

    nll = []
    for row, sentence in enumerate(sentences):
        e = emissions[row, : len(sentence)]
        paths = itertools.product(range(len(TAGS)), repeat=len(sentence))
        log_z = np.logaddexp.reduce([path_score(e, p) for p in paths])
        nll.append(log_z - path_score(e, list(y[row, : len(sentence)])))
    expected = np.mean(nll)  # the empty row does not count
    loss = float(numpy(tagger.compute_loss(x, y, emissions.astype("float32"))))
    assert abs(loss - expected) <= TOL * (1 + abs(expected))


def check_padding_invariance(tagger, decode=True):
    sentence = TOKENS[1]  # 3 tokens
    alone = tagger.encode([sentence], length=8)
    batched = tagger.encode([TOKENS[3], sentence, TOKENS[0]], length=16, rows=5)
    scores_alone = numpy(tagger(alone))[0, :3]
    scores_batched = numpy(tagger(batched))[1, :3]
    np.testing.assert_allclose(scores_batched, scores_alone, rtol=TOL, atol=TOL)
    if not decode:
        return
    tags_alone = tagger.predict(alone)
    tags_batched = tagger.predict(batched)
    assert tags_alone.shape == (1, 8) and tags_batched.shape == (5, 16)
    np.testing.assert_array_equal(tags_batched[1, :3], tags_alone[0, :3])
    assert (tags_alone[0, 3:] == -1).all() and (tags_batched[1, 3:] == -1).all()
    assert (tags_batched[3:] == -1).all()  # empty rows


@pytest.mark.parametrize("decoder", ["softmax", "crf"])
def test_padding_does_not_change_a_sentence(trained, decoder):
    check_padding_invariance(trained[0][decoder])


def test_padding_does_not_change_a_sentence_with_character_lstm():
    # The scores are what the character encoder can change; decoding them is
    # covered above (and skipping it saves two compilations on JAX).
    check_padding_invariance(make_tagger("crf", "lstm", buckets=(8, 16)), decode=False)


def test_predict_tags_raw_sentences(trained):
    tagger = trained[0]["crf"]
    sentences = ["EU rejects German call to boycott British lamb .", TOKENS[0], "Paris"]
    tagged = tagger.predict(sentences)
    assert [len(t) for t in tagged] == [9, 6, 1]
    assert all(tag in TAGS for tags in tagged for tag in tags)
    ids = tagger.predict(tagger.encode(sentences, length=16))
    assert tagged == [[TAGS[k] for k in row[: len(t)]] for row, t in zip(ids, tagged)]
    assert tagger.predict("Paris") == [tagged[2]]
    pairs = tagger.tag(sentences)
    assert [[tag for _, tag in s] for s in pairs] == tagged
    assert [token for token, _ in pairs[0]] == sentences[0].split()
    assert pairs[1] == list(zip(TOKENS[0], LABELS[0]))
    assert all(isinstance(pair, tuple) and len(pair) == 2 for s in pairs for pair in s)


def test_save_load_round_trip(trained, tmp_path):
    tagger = trained[0]["crf"]
    path = os.path.join(tmp_path, "tagger.keras")
    tagger.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, SequenceTagger)
    assert loaded.get_config() == tagger.get_config()
    assert loaded.word_vocabulary == tagger.word_vocabulary
    x = tagger.encode(TOKENS, length=16)
    np.testing.assert_allclose(numpy(loaded(x)), numpy(tagger(x)), rtol=TOL, atol=TOL)
    np.testing.assert_array_equal(numpy(loaded.crf.transitions), numpy(tagger.crf.transitions))
    sentences = ["Mary lives in Berlin", "Unseen Words Here ."]
    assert loaded.predict(sentences) == tagger.predict(sentences)


def test_encoding():
    words, chars = SequenceTagger.build_vocabularies(
        [["Paris", "paris", "1996", "Rome"], ["paris"]], min_count=2
    )
    assert words == ["paris"]  # lower-cased; "0000" and "rome" are seen once
    assert chars[:2] == ["a", "i"]
    tagger = SequenceTagger(
        ["paris", "0000"],
        TAGS,
        list("Pari19"),
        max_word_length=3,
        buckets=(4,),
        lstm_units=2,
        word_dim=2,
        char_units=2,
    )
    x = tagger.encode(["Paris 1997 Oslo"])
    assert x["words"].shape == (1, 4) and x["chars"].shape == (1, 4, 3)
    np.testing.assert_array_equal(x["words"][0], [2, 3, 1, 0])  # digits -> 0, unknown -> 1
    np.testing.assert_array_equal(x["chars"][0, 0], [2, 3, 4])  # "Par", cut at 3
    np.testing.assert_array_equal(x["chars"][0, 1], [6, 7, 7])  # "199"
    np.testing.assert_array_equal(x["chars"][0, 2], [1, 1, 1])  # "Osl": unknown characters
    np.testing.assert_array_equal(x["chars"][0, 3], [0, 0, 0])
    names = [CASINGS[k] for k in x["casing"][0]]
    assert names == ["title", "numeric", "title", "pad"]
    assert tagger.bucket_length(3) == 4 and tagger.bucket_length(9) == 12
    assert tagger.encode_tags([["B-PER", "O"]], length=4, rows=2).tolist() == [
        [1, 0, 0, 0],
        [0, 0, 0, 0],
    ]
    assert [CASINGS[casing_of(t)] for t in ["EU", "iPhone", "A4", "12.5", "--"]] == [
        "upper",
        "mixed",
        "has_digit",
        "mostly_numeric",
        "other",
    ]


def test_character_encoder_matches_numpy_cnn():
    layer = CharacterEncoder(10, "cnn", embedding_dim=3, units=4, kernel_size=3)
    ids = np.array([[[2, 3, 4, 0, 0], [5, 0, 0, 0, 0]]], "int32")  # (1, 2 tokens, 5 chars)
    out = numpy(layer(ids))
    table = numpy(layer.embedding.embeddings).astype("float64")
    kernel = numpy(layer.conv.kernel).astype("float64")  # (3, 3, 4)
    bias = numpy(layer.conv.bias).astype("float64")
    for t in range(2):
        valid = ids[0, t] != 0
        e = table[ids[0, t]] * valid[:, None]
        padded = np.concatenate([np.zeros((1, 3)), e, np.zeros((1, 3))])
        conv = np.stack([np.einsum("kd,kdu->u", padded[j : j + 3], kernel) for j in range(5)])
        conv = np.maximum(conv + bias, 0)
        np.testing.assert_allclose(out[0, t], conv[valid].max(0), rtol=TOL, atol=TOL)


def test_bad_arguments(trained):
    words, chars = SequenceTagger.build_vocabularies(TOKENS)
    with pytest.raises(ValueError, match="decoder"):
        SequenceTagger(words, TAGS, chars, decoder="hmm")
    with pytest.raises(ValueError, match="char_vocabulary"):
        SequenceTagger(words, TAGS, None, char_encoder="cnn")
    with pytest.raises(ValueError, match="char_encoder"):
        SequenceTagger(words, TAGS, chars, char_encoder="gru")
    with pytest.raises(ValueError, match="duplicate"):
        SequenceTagger(["a", "a"], TAGS, chars)
    with pytest.raises(ValueError, match="lstm_units"):
        SequenceTagger(words, TAGS, chars, lstm_units=0)
    with pytest.raises(ValueError, match="dropout"):
        SequenceTagger(words, TAGS, chars, dropout=1.0)
    tagger = trained[0]["crf"]
    with pytest.raises(ValueError, match="tag 'B-ORG'"):
        tagger.encode_tags([["B-ORG"]], length=4)
    with pytest.raises(ValueError, match=r"`sentences\[1\]` has no tokens"):
        tagger.predict(["Paris", "   "])
    with pytest.raises(ValueError, match=r"`sentences\[1\]` must be a string or a list"):
        tagger.tag(["Paris", 3])
    with pytest.raises(ValueError, match="3 tokens but 2 tags"):
        tagger.batches([["a", "b", "c"]], [["O", "O"]])
    with pytest.raises(ValueError, match="batch_size"):
        tagger.tag(["Paris"], batch_size=0)
    with pytest.raises(ValueError, match="compile it without `loss`"):
        tagger.compile(loss="sparse_categorical_crossentropy")


def test_unknown_word_dropout_replaces_words_only_in_training():
    ids = np.random.default_rng(0).integers(2, 50, (64, 50)).astype("int32")
    ids[:, 40:] = 0  # padding
    ids[:, 0] = 1  # already unknown
    layer = UnknownWordDropout(0.25, seed=3)
    np.testing.assert_array_equal(numpy(layer(ids)), ids)  # inference: unchanged
    dropped = numpy(layer(ids, training=True))
    changed = dropped != ids
    assert np.all(dropped[changed] == 1)  # replaced by the unknown id only
    assert not changed[:, 40:].any() and not changed[:, 0].any()
    assert 0.2 < changed[:, 1:40].mean() < 0.3
    clone = UnknownWordDropout.from_config(layer.get_config())
    assert clone.rate == 0.25 and clone.unknown_id == 1


def test_word_dropout_is_saved_with_the_tagger(tmp_path):
    tagger = make_tagger(word_dropout=0.2)
    assert tagger.get_layer("word_dropout").rate == 0.2
    path = str(tmp_path / "tagger.keras")
    tagger.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.word_dropout == 0.2
    with pytest.raises(ValueError, match="word_dropout"):
        make_tagger(word_dropout=1.0)


SHIPPED_TAGS = [
    [("EU", "B-ORG"), ("rejects", "O"), ("German", "B-MISC"), ("call", "O"), (".", "O")],
    [("Peter", "B-PER"), ("Blackburn", "I-PER")],
]


def test_shipped_ner_model_tags_raw_text_on_this_backend():
    """saved_models/ner_crf.keras (trained on JAX) loads and tags on every backend."""
    tagger = keras.saving.load_model(SHIPPED)
    assert type(tagger) is SequenceTagger and tagger.task == "tag"
    tags = tagger.predict(["EU rejects German call to boycott British lamb .", "Peter Blackburn"])
    assert tags == [
        ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"],
        ["B-PER", "I-PER"],
    ]
    assert tagger.tag(["EU rejects German call.", ["Peter", "Blackburn"]]) == SHIPPED_TAGS


@pytest.mark.skipif(BACKEND == "tensorflow", reason="checks the JAX and PyTorch backends")
def test_shipped_ner_model_tags_without_tensorflow():
    """Raw strings in, (token, tag) pairs out, with TensorFlow unimportable."""
    result = run_without_tensorflow(
        f"""
        import json
        import kzoo.models
        tagger = kzoo.models.load({SHIPPED!r})
        print(json.dumps(tagger.tag(["EU rejects German call.", "Peter Blackburn"])))
        """,
        BACKEND,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    tagged = json.loads(result.stdout.strip().splitlines()[-1])
    assert [[tuple(pair) for pair in s] for s in tagged] == SHIPPED_TAGS


def test_first_two_batches_differ_in_length_every_epoch():
    """Keras's TF adapter takes its tensor spec from the first two batches."""
    tagger = make_tagger(buckets=(2, 4, 8))
    sentences = [["w"] * n for n in [1, 1, 1, 1, 1, 1, 3, 7]]
    data = tagger.batches(sentences, batch_size=2, shuffle=True, seed=0)
    for _ in range(20):
        lengths = [data[i][0]["words"].shape[1] for i in range(len(data))]
        assert lengths[0] != lengths[1], lengths
        assert sorted(lengths) == [2, 2, 2, 4, 8]
        data.on_epoch_end()


def test_fit_with_several_buckets_for_several_epochs():
    tagger = make_tagger(buckets=(2, 4, 8))
    tagger.compile(optimizer="adam")
    sentences = TOKENS + [t[:2] for t in TOKENS] + [t[:1] for t in TOKENS]
    tags = LABELS + [t[:2] for t in LABELS] + [t[:1] for t in LABELS]
    history = tagger.fit(tagger.batches(sentences, tags, 2, shuffle=True, seed=1), epochs=3)
    assert np.all(np.isfinite(history.history["loss"]))


def test_preprocessor_splits_punctuation_and_clitics_it_knows():
    words = ["u.s.", "'s", "n't", "do", "germany", "..."]
    pre = SequenceTaggerPreprocessor(words, ["O"], list("abc"))
    assert pre.tokenize("EU rejects German call.") == ["EU", "rejects", "German", "call", "."]
    text = "(Reuters) \"Germany's\" U.S. don't 1996-08-22 ... ?!"
    assert pre.tokenize(text) == [
        "(", "Reuters", ")", '"', "Germany", "'s", '"', "U.S.", "do", "n't", "1996-08-22",
        "...", "?", "!",
    ]  # fmt: skip
    # Without "'s" in the vocabulary the ending stays on the word.
    assert SequenceTaggerPreprocessor(["a"], ["O"]).tokenize("Germany's") == ["Germany's"]
    # Token lists are taken as they are; a str is one sentence.
    assert pre.token_lists([["call."], "call."]) == [["call."], ["call", "."]]
    assert pre.token_lists("a b") == [["a", "b"]]
    clone = SequenceTaggerPreprocessor.from_config(pre.get_config())
    assert clone.get_config() == pre.get_config()
    assert clone.encode(["U.S. call."])["words"].tolist() == [[2, 1, 1, 0, 0, 0, 0, 0]]


def test_tagger_is_a_backbone_and_a_head(trained):
    tagger = trained[0]["crf"]
    assert isinstance(tagger.backbone, SequenceTaggerBackbone)
    assert isinstance(tagger.preprocessor, SequenceTaggerPreprocessor)
    assert isinstance(tagger.crf, CRF) and tagger.task == "tag"
    x = tagger.encode(TOKENS, length=16)
    hidden = tagger.backbone(x)
    assert tuple(hidden.shape) == (4, 16, 12)  # 2 directions x lstm_units
    scores = numpy(tagger.get_layer("emissions")(hidden))
    np.testing.assert_allclose(scores, numpy(tagger(x)), rtol=TOL, atol=TOL)
    config = tagger.backbone.get_config()
    assert SequenceTaggerBackbone.from_config(config).get_config() == config


def test_summary_counts_each_parameter_once(trained):
    tagger = trained[0]["crf"]
    tagger.tag(["Paris"])  # builds a decoding model that shares the tagger's layers
    unique = {id(v): v for v in tagger.weights}
    expected = sum(int(np.prod(v.shape)) for v in unique.values())
    assert len(unique) == len(tagger.weights) and tagger.count_params() == expected
    lines = []
    tagger.summary(print_fn=lambda line, **kwargs: lines.append(line))
    text = "\n".join(lines)
    # "Total params" adds the optimizer's variables (the fixture compiled it).
    assert f"Trainable params: {expected:,}" in text, text


def test_compile_defaults_train_with_the_crf_loss():
    keras.utils.set_random_seed(1)
    tagger = make_tagger()
    tagger.compile()
    assert isinstance(tagger.optimizer, keras.optimizers.Adam)
    x, y = tagger.encode(TOKENS, length=16), tagger.encode_tags(LABELS, length=16)
    loss = tagger.evaluate(x, y, batch_size=4, verbose=0)
    mask = x["words"] != 0
    expected = numpy(tagger.crf.negative_log_likelihood(tagger(x), y, mask))
    np.testing.assert_allclose(loss, expected, rtol=1e-4)


class _StopAfterOneBatch(keras.callbacks.Callback):
    def on_predict_batch_end(self, batch, logs=None):
        raise RuntimeError("interrupted")


def test_tagger_works_after_an_interrupted_predict(trained):
    """JAX's `predict` detaches the variables while it runs; an error raised
    inside (here by a callback) must not leave the tagger without weights."""
    tagger = trained[0]["crf"]
    before = tagger.tag(TOKENS)
    x = tagger.encode(TOKENS, length=16)
    with pytest.raises(RuntimeError, match="interrupted"):
        tagger.predict(x, batch_size=2, callbacks=[_StopAfterOneBatch()])
    assert tagger.tag(TOKENS) == before
