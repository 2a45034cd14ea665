"""TextClassifier (backbone, preprocessor, task), poolings, WordTokenizer, TextPipeline.

Independent of the IMDB loader: models are tiny and built from random ids,
except one tokenizer test that reads a few reviews straight from the shared
IMDB archive.
"""

import gzip
import json
import os
import tarfile

import keras
import numpy as np
import pytest

import kzoo.models
from kzoo.models import (
    AttentionPooling1D,
    GlobalMaskedAveragePooling1D,
    GlobalMaskedMaxPooling1D,
    TextClassifier,
    TextPipeline,
    WordTokenizer,
)
from kzoo.models.text_classifier import TextClassifierBackbone, TextClassifierPreprocessor
from tests.harness import run_without_tensorflow

ATOL = 1e-5
POOLINGS = ["last", "max", "mean", "attention", ["last", "max", "mean", "attention"]]

# Ids of three texts of lengths 5, 2 and 0, right-padded to 6 steps.
IDS = np.array(
    [[3, 7, 1, 9, 4, 0], [5, 2, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]],
    dtype="int32",
)
LENGTHS = [5, 2, 0]


def numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype="float64")


def small_classifier(**kwargs):
    args = dict(vocabulary_size=12, embedding_dim=5, units=4, seed=3)
    args.update(kwargs)
    return TextClassifier(**args)


def run(model, ids):
    return numpy(model(ids, training=False))


# --- float64 NumPy references -------------------------------------------------


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def gru_reference(x, kernel, recurrent_kernel, bias):
    """GRU (reset_after, gates z, r, h) over `x (time, features)`: all outputs."""
    units = recurrent_kernel.shape[0]
    h = np.zeros(units)
    outputs = []
    for x_t in x:
        xz, xr, xh = np.split(x_t @ kernel + bias[0], 3)
        hz, hr, hh = np.split(h @ recurrent_kernel + bias[1], 3)
        z = sigmoid(xz + hz)
        r = sigmoid(xr + hr)
        g = np.tanh(xh + r * hh)
        h = z * h + (1 - z) * g
        outputs.append(h)
    return np.array(outputs).reshape(len(x), units)


def classifier_reference(model, ids, lengths, bidirectional):
    """Embedding -> (Bi)GRU -> [last, max, mean] -> sigmoid, one text at a time."""
    embeddings = numpy(model.get_layer("embedding").embeddings)
    recurrent = model.get_layer("bidirectional_0" if bidirectional else "gru_0")
    layers = [recurrent.forward_layer, recurrent.backward_layer] if bidirectional else [recurrent]
    dense = model.get_layer("output")
    kernel, bias = numpy(dense.kernel), numpy(dense.bias)
    results = []
    for row, n in zip(ids, lengths):
        x = embeddings[row[:n]]  # padding removed: (n, features)
        lasts, sequences = [], []
        for i, layer in enumerate(layers):
            cell = layer.cell
            weights = [numpy(w) for w in (cell.kernel, cell.recurrent_kernel, cell.bias)]
            backward = i == 1
            out = gru_reference(x[::-1] if backward else x, *weights)
            lasts.append(out[-1] if n else np.zeros(cell.units))
            sequences.append(out[::-1] if backward else out)
        sequence = np.concatenate(sequences, axis=-1)
        width = sequence.shape[-1]
        pooled = np.concatenate(
            [
                np.concatenate(lasts),
                sequence.max(axis=0) if n else np.zeros(width),
                sequence.mean(axis=0) if n else np.zeros(width),
            ]
        )
        results.append(sigmoid(pooled @ kernel + bias))
    return np.array(results)


# --- poolings -------------------------------------------------------------------


def pooling_inputs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 4)).astype("float32")
    mask = np.arange(6)[None, :] < np.array(LENGTHS)[:, None]  # (batch, time)
    return x, mask


def test_masked_max_and_mean_match_numpy():
    x, mask = pooling_inputs()
    got_max = numpy(GlobalMaskedMaxPooling1D()(x, mask=mask))
    got_mean = numpy(GlobalMaskedAveragePooling1D()(x, mask=mask))
    for i, n in enumerate(LENGTHS):
        valid = x[i, :n].astype("float64")
        want_max = valid.max(axis=0) if n else np.zeros(4)
        want_mean = valid.mean(axis=0) if n else np.zeros(4)
        np.testing.assert_allclose(got_max[i], want_max, atol=ATOL)
        np.testing.assert_allclose(got_mean[i], want_mean, atol=ATOL)


def test_attention_pooling_matches_numpy():
    x, mask = pooling_inputs()
    layer = AttentionPooling1D(3)
    pooled, weights = layer(x, mask=mask, return_attention_scores=True)
    w, b, v = (numpy(t) for t in (layer.kernel, layer.bias, layer.context))
    for i, n in enumerate(LENGTHS):
        valid = x[i, :n].astype("float64")
        scores = np.tanh(valid @ w + b) @ v
        alpha = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum() if n else []
        want = (alpha[:, None] * valid).sum(axis=0) if n else np.zeros(4)
        np.testing.assert_allclose(numpy(pooled)[i], want, atol=ATOL)
        np.testing.assert_allclose(numpy(weights)[i, :n], alpha, atol=ATOL)
        np.testing.assert_allclose(numpy(weights)[i, n:], 0.0, atol=0)


def test_poolings_without_mask_use_every_step():
    x, _ = pooling_inputs()
    np.testing.assert_allclose(numpy(GlobalMaskedMaxPooling1D()(x)), x.max(axis=1), atol=ATOL)
    np.testing.assert_allclose(numpy(GlobalMaskedAveragePooling1D()(x)), x.mean(axis=1), atol=ATOL)


def test_pooling_rejects_wrong_rank():
    with pytest.raises(ValueError, match="rank 3"):
        GlobalMaskedMaxPooling1D()(np.ones((2, 3), "float32"))
    with pytest.raises(ValueError, match="units"):
        AttentionPooling1D(0)


# --- TextClassifier ---------------------------------------------------------------


@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_matches_numpy_reference(bidirectional):
    model = small_classifier(bidirectional=bidirectional, pooling=["last", "max", "mean"])
    want = classifier_reference(model, IDS, LENGTHS, bidirectional)
    np.testing.assert_allclose(run(model, IDS), want, atol=ATOL)


# One model with all four poolings (sequence outputs and final states), plus
# the "last"-only path (no sequence output) and a plain max pooling.
@pytest.mark.parametrize(
    "cell_type, pooling, num_layers",
    [("gru", POOLINGS[-1], 1), ("lstm", "last", 2), ("rnn", "max", 1)],
    ids=str,
)
def test_padding_does_not_change_predictions(cell_type, pooling, num_layers):
    model = small_classifier(
        cell_type=cell_type, pooling=pooling, num_layers=num_layers, head_units=3
    )
    padded = run(model, np.pad(IDS, ((0, 0), (0, 7))))
    np.testing.assert_allclose(run(model, IDS), padded, atol=ATOL)
    alone = run(model, IDS[:1, : LENGTHS[0]])  # the first text without any padding
    np.testing.assert_allclose(alone[0], padded[0], atol=ATOL)


def test_multiclass_head_gives_distributions():
    model = small_classifier(num_classes=4, pooling="attention", bidirectional=False)
    probabilities = run(model, IDS)
    assert probabilities.shape == (3, 4)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=ATOL)


def test_dropout_only_in_training():
    model = small_classifier(
        bidirectional=False,
        embedding_dropout=0.5, spatial_dropout=0.5, dropout=0.5, recurrent_dropout=0.5,
        word_type_dropout=0.5, head_dropout=0.5, head_units=4, pooling=["max", "mean"],
    )  # fmt: skip
    np.testing.assert_allclose(run(model, IDS), run(model, IDS), atol=0)
    trained = [numpy(model(IDS, training=True)) for _ in range(2)]
    assert np.abs(trained[0] - trained[1]).max() > 1e-4


def test_word_type_dropout_drops_every_occurrence_of_a_word_together():
    vocabulary_size, rate = 2000, 0.3
    drop = kzoo.models.WordTypeDropout(rate, vocabulary_size, seed=3)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocabulary_size, size=(8, 3000)).astype("int32")
    ids[:, -50:] = 0  # padding
    np.testing.assert_array_equal(numpy(drop(ids)), ids)  # inference: unchanged
    out = numpy(drop(ids, training=True))
    changed = out != ids
    assert np.all(out[changed] == 1)  # dropped words become the unknown id
    assert not np.any(changed[ids <= 1])  # padding and unknown stay
    dropped_types = set(ids[changed].tolist())
    kept_types = set(ids[~changed].tolist()) - {0, 1}
    assert not dropped_types & kept_types  # one draw per word type and batch
    fraction = len(dropped_types) / len(dropped_types | kept_types)
    assert abs(fraction - rate) < 0.05
    again = numpy(drop(ids, training=True))
    assert not np.array_equal(again, out)  # a new draw per batch


@pytest.mark.parametrize("kwargs", [{"vocabulary_size": 5, "unknown_id": 5}, {"rate": 1.0}])
def test_word_type_dropout_rejects_bad_arguments(kwargs):
    args = {"rate": 0.1, "vocabulary_size": 5, **kwargs}
    with pytest.raises(ValueError, match="unknown_id|rate"):
        kzoo.models.WordTypeDropout(**args)


def test_config_round_trip():
    model = small_classifier(
        cell_type="lstm", num_layers=2, pooling=["attention", "max"], attention_units=3,
        head_units=2, head_dropout=0.1, embedding_dropout=0.1, spatial_dropout=0.1,
        word_type_dropout=0.1, sequence_length=6, name="clf",
    )  # fmt: skip
    config = model.get_config()
    assert json.loads(json.dumps(config)) == config
    clone = TextClassifier.from_config(config)
    assert clone.get_config() == config
    assert clone.name == "clf" and clone.head_units == 2
    assert clone.backbone.cell_type == "lstm" and clone.backbone.pooling == ["attention", "max"]
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(run(clone, IDS), run(model, IDS), atol=ATOL)


def test_save_and_load_keras_file(tmp_path):
    model = small_classifier(pooling=["last", "mean"])
    path = str(tmp_path / "clf.keras")
    model.save(path)
    loaded = kzoo.models.load(path)
    assert isinstance(loaded, TextClassifier)
    np.testing.assert_allclose(run(loaded, IDS), run(model, IDS), atol=ATOL)


def test_fit_with_plain_keras():
    model = small_classifier(pooling=["max", "mean"], spatial_dropout=0.1, bidirectional=False)
    model.compile(
        keras.optimizers.Adam(0.05, clipnorm=1.0), "binary_crossentropy", metrics=["accuracy"]
    )
    rng = np.random.default_rng(1)
    x = rng.integers(0, 12, size=(32, 6)).astype("int32")
    y = (x == 3).any(axis=1).astype("float32")  # positive iff word 3 occurs
    before = model.evaluate(x, y, verbose=0)[0]
    history = model.fit(x, y, epochs=4, batch_size=16, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert model.evaluate(x, y, verbose=0)[0] < before


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(vocabulary_size=1), "vocabulary_size"),
        (dict(cell_type="transformer"), "cell_type"),
        (dict(pooling="sum"), "pooling"),
        (dict(pooling=["max", "max"]), "twice"),
        (dict(pooling=[]), "pooling"),
        (dict(dropout=1.0), "dropout"),
        (dict(units=0), "units"),
        (dict(num_classes=1), "num_classes"),
        (dict(head_units=-1), "head_units"),
        (dict(class_names=["a"]), "class_names"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_classifier(**kwargs)


# --- WordTokenizer ------------------------------------------------------------------

TRICKY = [
    "Hello, World! It's GREAT -- isn't it?",
    "ÉCOLE école Straße STRASSE naïve NAÏVE",
    "tabs\tand\nnewlines\r\nand\x0bvertical\x0cfeeds",
    "no\xa0break\u2003em\u2028line \x1cfile\x85next",
    "emoji 😀 and 日本語のテキスト, mixed-case MiXeD",
    "<br />line<br/>breaks<BR>here",
    "   leading and trailing   ",
    "",
    "[UNK] unk ''' ... ¡¿ «quotes» “curly” ‘single’",
]


def text_vectorization(corpus, max_tokens=None):
    layer = keras.layers.TextVectorization(max_tokens=max_tokens)
    layer.adapt(np.asarray(corpus, dtype=object))
    return layer


def vectorization_ids(layer, texts):
    ids = keras.ops.convert_to_numpy(layer(np.asarray(texts, dtype=object)))
    return [row[: np.count_nonzero(row)] for row in ids]


def test_tokenizer_equals_text_vectorization_on_tricky_text():
    corpus = [t.replace("<br />", " ") for t in TRICKY] + ["word " * 3 + "other"]
    layer = text_vectorization(corpus, max_tokens=25)
    tokenizer = WordTokenizer.from_text_vectorization(layer, replace_br_tags=False)
    want = vectorization_ids(layer, TRICKY)
    got = tokenizer.encode(TRICKY)
    for text, a, b in zip(TRICKY, got, want):
        np.testing.assert_array_equal(a, b, err_msg=repr(text))


def imdb_reviews(data_dir, count=300):
    """The first `count` test reviews of the archive, read without extracting it."""
    reviews = []
    with tarfile.open(os.path.join(data_dir, "aclImdb_v1.tar.gz"), "r:gz") as archive:
        for member in archive:
            if member.isfile() and member.name.endswith(".txt"):
                reviews.append(archive.extractfile(member).read().decode("utf-8"))
                if len(reviews) == count:
                    break
    return reviews


def test_tokenizer_equals_text_vectorization_on_imdb_reviews(shared_data_dir):
    reviews = imdb_reviews(shared_data_dir)
    assert sum("<br />" in r for r in reviews) > 50  # the markup is really there
    cleaned = [r.replace("<br />", " ") for r in reviews]
    layer = text_vectorization(cleaned[:200], max_tokens=3000)
    tokenizer = WordTokenizer.from_text_vectorization(layer)
    got = tokenizer.encode(reviews)  # raw reviews, markup included
    want = vectorization_ids(layer, cleaned)
    assert sum(len(ids) for ids in got) > 50_000
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    assert any((ids == 1).any() for ids in got[200:])  # unseen words map to [UNK]


def test_tokenizer_truncation_and_padding():
    tokenizer = WordTokenizer(["", "[UNK]", "a", "b", "c"], sequence_length=2)
    np.testing.assert_array_equal(tokenizer(["a b c", "c"]), [[2, 3], [4, 0]])
    tail = WordTokenizer(["", "[UNK]", "a", "b", "c"], sequence_length=2, truncating="pre")
    np.testing.assert_array_equal(tail(["a b c", "x", ""]), [[3, 4], [1, 0], [0, 0]])
    assert tail([""]).shape == (1, 1)


@pytest.mark.parametrize(
    "vocabulary, message",
    [(["a", "b"], "start with"), (["", "[UNK]", "a", "a"], "duplicate"), ("abc", "list")],
)
def test_tokenizer_rejects_bad_vocabulary(vocabulary, message):
    with pytest.raises(ValueError, match=message):
        WordTokenizer(vocabulary)


# --- TextPipeline -------------------------------------------------------------------

WORDS = ["", "[UNK]", "good", "bad", "movie", "plot", "great", "awful", "acting", "film"]


def small_pipeline(**kwargs):
    tokenizer = WordTokenizer(WORDS, sequence_length=20)
    classifier = small_classifier(vocabulary_size=len(WORDS), pooling=["max", "mean"], **kwargs)
    return TextPipeline(tokenizer, classifier, bucket_width=20)  # one padded shape


TEXTS = [
    "Good movie, great acting!",
    "",
    "Bad plot.<br /><br />AWFUL film",
    "Très bien — 映画 ÉNORME",
    "good " * 5000,
]


def test_pipeline_predicts_raw_text_like_the_classifier_on_ids():
    pipeline = small_pipeline()
    probabilities = pipeline.predict(TEXTS)
    assert probabilities.shape == (len(TEXTS),)
    assert probabilities.dtype == np.float32
    ids = pipeline.tokenizer(TEXTS)
    np.testing.assert_allclose(probabilities, run(pipeline.classifier, ids)[:, 0], atol=ATOL)
    # The long review is cut to sequence_length tokens.
    assert len(pipeline.tokenizer.encode([TEXTS[-1]])[0]) == 20
    np.testing.assert_allclose(pipeline.predict(TEXTS[1]), probabilities[1:2], atol=ATOL)
    np.testing.assert_allclose(pipeline.predict(np.array(TEXTS)), probabilities, atol=ATOL)
    np.testing.assert_allclose(pipeline.predict(ids)[:, 0], probabilities, atol=ATOL)
    assert pipeline.predict([]).shape == (0,)


def test_pipeline_save_load_round_trip(tmp_path):
    pipeline = small_pipeline(cell_type="lstm")
    path = str(tmp_path / "pipe.keras")
    pipeline.save(path)
    loaded = kzoo.models.load(path)
    assert isinstance(loaded, TextPipeline)
    assert loaded.tokenizer.get_config() == pipeline.tokenizer.get_config()
    # Batches of 2 sorted by length: the results come back in input order.
    np.testing.assert_allclose(
        loaded.predict(TEXTS, batch_size=2), pipeline.predict(TEXTS), atol=ATOL
    )


@pytest.mark.parametrize(
    "texts, error, message",
    [
        (None, TypeError, "list of strings"),
        (["good", None], TypeError, r"texts\[1\].*NoneType"),
        (["good", 3], TypeError, r"texts\[1\].*int"),
        ({"a": "good"}, TypeError, "dict"),
        (np.array([["good"]]), ValueError, "1-D"),
        ([b"\xff\xfe"], ValueError, "UTF-8"),
    ],
)
def test_pipeline_rejects_bad_input(texts, error, message):
    with pytest.raises(error, match=message):
        small_pipeline().predict(texts)


def test_load_reports_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="No saved model"):
        kzoo.models.load(str(tmp_path / "missing.keras"))
    other = tmp_path / "model.txt"
    other.write_text("not a model")
    with pytest.raises(ValueError, match=r"\.keras"):
        kzoo.models.load(str(other))
    broken = tmp_path / "broken.keras"
    with gzip.open(broken, "wb") as f:
        f.write(b"not a zip")
    # kzoo.models.load names what is wrong with the file (it exists, so not
    # "File not found").
    with pytest.raises(ValueError, match=r"broken\.keras.*not a \.keras model file"):
        kzoo.models.load(str(broken))
    with pytest.raises(TypeError, match="path"):
        kzoo.models.load(None)


# --- TextClassifier as a task: backbone, preprocessor, raw text ------------------------


def text_classifier(**kwargs):
    args = dict(
        vocabulary_size=len(WORDS),
        embedding_dim=5,
        units=4,
        pooling=["max", "mean"],
        seed=3,
        preprocessor=TextClassifierPreprocessor(WordTokenizer(WORDS, sequence_length=20), 8),
        class_names=["negative", "positive"],
    )
    args.update(kwargs)
    return TextClassifier(**args)


def test_backbone_is_the_classifier_network_up_to_the_pooling():
    model = small_classifier(pooling=["last", "max"], head_units=3)
    backbone = model.backbone
    assert isinstance(backbone, TextClassifierBackbone)
    features = numpy(backbone(IDS))
    assert features.shape == (3, 2 * 2 * 4)  # directions * units * poolings
    hidden = model.get_layer("hidden")
    kernel, bias = numpy(hidden.kernel), numpy(hidden.bias)
    head = np.maximum(features @ kernel + bias, 0) @ numpy(model.get_layer("output").kernel)
    np.testing.assert_allclose(
        run(model, IDS), sigmoid(head + numpy(model.get_layer("output").bias)), atol=ATOL
    )
    # Around a backbone built on its own: the same network, one head more.
    other = TextClassifier(
        backbone=TextClassifierBackbone(12, embedding_dim=5, units=4), num_classes=3
    )
    assert run(other, IDS).shape == (3, 3)
    assert len(other.weights) == len(other.backbone.weights) + 2  # the output kernel and bias
    with pytest.raises(ValueError, match="not both"):
        TextClassifier(12, backbone=TextClassifierBackbone(12))


def test_a_backbone_nested_in_a_functional_model_still_bounds_the_ids():
    ids = keras.Input(shape=(None,), dtype="int32")
    inner = TextClassifierBackbone(12, embedding_dim=5, units=4)
    model = TextClassifier(backbone=keras.Model(ids, inner(ids)))
    assert model.vocabulary_size == 12  # the nested backbone's embedding
    assert model.predict(IDS, verbose=0).shape == (3, 1)
    with pytest.raises(ValueError, match="12"):
        model.predict(np.array([[3, 12]]), verbose=0)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_reverse_backbone_reads_each_text_from_its_end(bidirectional):
    args = dict(embedding_dim=5, units=4, cell_type="lstm", num_layers=2, seed=3)
    args.update(bidirectional=bidirectional, pooling=["last", "max", "mean"])
    forward = TextClassifierBackbone(12, **args)
    backward = TextClassifierBackbone(12, reverse=True, **args)
    backward.set_weights(forward.get_weights())
    ids = np.array([[2, 3, 4, 5, 0, 0], [6, 7, 8, 9, 10, 11]], dtype="int32")
    reversed_ids = np.array([[5, 4, 3, 2, 0, 0], [11, 10, 9, 8, 7, 6]], dtype="int32")
    np.testing.assert_allclose(
        numpy(backward(ids)), numpy(forward(reversed_ids)), rtol=1e-5, atol=1e-6
    )
    # Its layers carry a prefix: a forward and a backward backbone fit in one model.
    names = {layer.name for layer in backward.layers} - {"token_ids", "reverse"}
    assert names and all(name.startswith("backward_") for name in names)
    assert TextClassifierBackbone.from_config(backward.get_config()).reverse is True
    classifier = TextClassifier(12, reverse=True, **args)
    assert classifier.backbone.reverse is True


def test_summary_and_count_params_count_each_weight_once():
    def unique_parameters(model):
        return sum(int(np.prod(w.shape)) for w in {id(w): w for w in model.weights}.values())

    for model in (text_classifier(head_units=3), small_pipeline()):
        lines = []
        model.summary(print_fn=lambda line, *args, lines=lines, **kwargs: lines.append(line))
        text = "\n".join(lines)
        total = int(text.split("Total params:")[1].split("(")[0].replace(",", "").strip())
        assert total == model.count_params() == unique_parameters(model), text
    model = text_classifier()
    assert len(model.weights) == len(model.backbone.weights) + 2


def test_raw_text_predict_matches_ids_and_keeps_input_order():
    model = text_classifier()
    probabilities = model.predict(TEXTS, batch_size=2)
    assert probabilities.shape == (len(TEXTS), 1) and probabilities.dtype == np.float32
    ids = model.tokenizer(TEXTS)
    np.testing.assert_allclose(probabilities, run(model, ids), atol=ATOL)
    np.testing.assert_allclose(model.predict(TEXTS[2]), probabilities[2:3], atol=ATOL)
    np.testing.assert_allclose(model.predict(np.array(TEXTS)), probabilities, atol=ATOL)
    np.testing.assert_allclose(model.predict(ids, verbose=0), probabilities, atol=ATOL)
    assert model.predict([]).shape == (0, 1)
    fixed = text_classifier(sequence_length=20)  # every batch padded to 20
    assert fixed.predict(TEXTS).shape == (len(TEXTS), 1)
    with pytest.raises(TypeError, match=r"texts\[1\].*int"):
        model.predict(["good", 3])
    with pytest.raises(ValueError, match="no preprocessor"):
        small_classifier().predict(["good film"])


def test_task_attributes_save_and_load_with_vocabulary(tmp_path):
    model = text_classifier(cell_type="lstm")
    assert model.task == "classify" and model.class_names == ["negative", "positive"]
    assert small_classifier(num_classes=3).class_names == ["0", "1", "2"]
    path = str(tmp_path / "clf.keras")
    model.save(path)
    loaded = kzoo.models.load(path)
    assert isinstance(loaded, TextClassifier)
    assert loaded.class_names == ["negative", "positive"]
    assert loaded.tokenizer.vocabulary == WORDS
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded.predict(TEXTS), model.predict(TEXTS), atol=ATOL)


def test_compile_defaults_train():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 12, size=(32, 6)).astype("int32")
    y = (x == 3).any(axis=1).astype("float32")  # positive iff word 3 occurs
    for num_classes, labels in ((2, y), (3, y.astype("int32") + (x == 5).any(axis=1))):
        model = small_classifier(num_classes=num_classes, bidirectional=False)
        model.compile(optimizer=keras.optimizers.Adam(0.05))  # loss and metrics: defaults
        assert model.loss.get_config()["from_logits"] is False
        before = model.evaluate(x, labels, verbose=0)
        history = model.fit(x, labels, epochs=3, batch_size=16, verbose=0)
        assert "accuracy" in history.history
        assert model.evaluate(x, labels, verbose=0)[0] < before[0]
        assert model.predict(x[:3], verbose=0).shape == (3, 1 if num_classes == 2 else 3)


def test_from_config_accepts_the_names_before_the_renames():
    # The flat config that TextClassifier files saved before the backbone split hold.
    old = dict(
        name="old", trainable=True, vocabulary_size=12, embedding_dim=5, cell="lstm", units=4,
        num_layers=1, bidirectional=False, dropout=0.0, recurrent_dropout=0.0,
        embedding_dropout=0.0, spatial_dropout=0.0, word_type_dropout=0.0, pooling="max",
        attention_units=64, hidden_units=3, head_dropout=0.0, num_classes=2,
        sequence_length=None, seed=1,
    )  # fmt: skip
    model = TextClassifier.from_config(old)
    assert model.backbone.cell_type == "lstm" and model.head_units == 3
    assert model.get_layer("lstm_0") is not None and model.get_layer("hidden") is not None
    assert (
        TextClassifierBackbone.from_config({"vocabulary_size": 5, "cell": "rnn"}).cell_type == "rnn"
    )


def test_raw_text_predict_without_tensorflow(tmp_path):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        pytest.skip("checks that JAX and PyTorch predict from raw text without TensorFlow")
    model = text_classifier()
    path = str(tmp_path / "clf.keras")
    model.save(path)
    expected = model.predict(TEXTS)
    code = f"""
    import json
    import numpy as np
    import kzoo.models
    model = kzoo.models.load({path!r})
    got = model.predict({TEXTS!r})
    np.testing.assert_allclose(got, np.array({expected.tolist()!r}), atol=1e-5)
    shipped = kzoo.models.load("saved_models/imdb_bigru.keras", compile=False)
    positive, negative = np.reshape(shipped.predict(["A wonderful film.", "Awful, boring."]), -1)
    assert positive > 0.5 > negative, (positive, negative)
    print("OK", shipped.class_names)
    """
    proc = run_without_tensorflow(code, backend)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK" in proc.stdout
