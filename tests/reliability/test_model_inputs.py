"""Bad inputs to kzoo's models, layers and generation: clear errors, no NaN, no
silent wrong answers, and a model that still works after a rejected call.

Every test runs on the backend of the test process (the suite runs once per
backend); the models are tiny and never trained beyond one step.
"""

import sys

import keras
import numpy as np
import pytest
from keras import ops

from kzoo.generation import BeamSampler, generate_ids
from kzoo.layers import (
    CRF,
    AttentionDecoderCell,
    BahdanauAttention,
    LSTMCell,
    LuongAttention,
)
from kzoo.metrics.ner import entity_f1
from kzoo.models import (
    AttentionPooling1D,
    Forecaster,
    GlobalMaskedAveragePooling1D,
    GlobalMaskedMaxPooling1D,
    LanguageModel,
    MaskedSequenceLoss,
    Seq2Seq,
    SequenceTagger,
    TextClassifier,
    TextPipeline,
    TiedEmbedding,
    UnknownWordDropout,
    WordTokenizer,
)

VOCAB = 10


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


# --- tiny models, built once per module ----------------------------------------


@pytest.fixture(scope="module")
def classifier():
    return TextClassifier(VOCAB, embedding_dim=4, units=3, seed=0)


@pytest.fixture(scope="module")
def language_model():
    return LanguageModel(VOCAB, embedding_dim=4, units=4, num_layers=1, seed=0)


@pytest.fixture(scope="module")
def seq2seq():
    model = Seq2Seq(VOCAB, VOCAB + 2, embedding_dim=4, units=4, seed=0)
    model.build()
    return model


@pytest.fixture(scope="module")
def tagger():
    return SequenceTagger(
        ["eu", "rejects"],
        ["O", "B-ORG", "B-MISC"],
        list("EUrejcts"),
        word_dim=4,
        char_dim=3,
        char_units=3,
        casing_dim=2,
        lstm_units=3,
        max_word_length=5,
        seed=0,
    )


# --- 1. token ids outside [0, vocabulary) ---------------------------------------

BAD_IDS = [(12, "12"), (VOCAB, str(VOCAB)), (-1, "-1"), (-7, "-7")]


@pytest.mark.parametrize("bad, shown", BAD_IDS)
def test_classifier_predict_and_evaluate_refuse_ids_outside_the_vocabulary(classifier, bad, shown):
    ids = np.array([[1, 2, 3], [4, bad, 0]])
    message = rf"in \[0, {VOCAB}\).*first is {shown} at index \(1, 1\)"
    with pytest.raises(ValueError, match=message):
        classifier.predict(ids, verbose=0)
    with pytest.raises(ValueError, match=message):
        classifier.predict_on_batch(ids)
    classifier.compile("sgd", "binary_crossentropy")
    with pytest.raises(ValueError, match=message):
        classifier.evaluate(ids, np.zeros((2, 1)), verbose=0)
    # Valid ids still run: no NaN.
    assert np.isfinite(classifier.predict(np.array([[1, 2, 3]]), verbose=0)).all()


def test_classifier_refuses_fractional_and_non_numeric_ids(classifier):
    with pytest.raises(ValueError, match=r"integer token ids.*1\.5"):
        classifier.predict(np.array([[1.0, 1.5]]), verbose=0)
    with pytest.raises(ValueError, match="integer token ids"):
        classifier.predict(np.array([["a", "b"]]), verbose=0)
    with pytest.raises(ValueError, match="x=None"):
        classifier.predict(None)
    with pytest.raises(ValueError, match=r"shape \(batch, time\)"):
        classifier.predict(np.zeros((0, 3), "int32"), verbose=0)
    # Whole-number floats are ids (Keras's Embedding casts them).
    as_float = classifier.predict(np.array([[1.0, 2.0]]), verbose=0)
    as_int = classifier.predict(np.array([[1, 2]]), verbose=0)
    np.testing.assert_allclose(as_float, as_int, rtol=1e-6)


def test_pipeline_predict_refuses_bad_id_arrays():
    tokenizer = WordTokenizer(["", "[UNK]", "good", "bad"])
    pipeline = TextPipeline(tokenizer, TextClassifier(4, embedding_dim=4, units=3, seed=0))
    for bad in (4, -1):
        with pytest.raises(ValueError, match=rf"in \[0, 4\).*first is {bad}"):
            pipeline.predict(np.array([[1, bad]]))
    assert pipeline.predict(["good", "bad"]).shape == (2,)


@pytest.mark.parametrize("bad", [VOCAB, -1])
def test_language_model_entries_refuse_ids_outside_the_vocabulary(language_model, bad):
    model = language_model
    message = rf"in \[0, {VOCAB}\).*first is {bad}"
    with pytest.raises(ValueError, match=message):
        model.predict(np.array([[1, bad]]), verbose=0)
    with pytest.raises(ValueError, match=message):
        model.generate([1, bad], max_length=4)
    with pytest.raises(ValueError, match=rf"prompt\[1\].*{message}"):
        model.generate([[1, 2], [bad]], max_length=4)
    with pytest.raises(ValueError, match=message):
        model.evaluate_stream([1, 2, bad, 3])
    with pytest.raises(ValueError, match=rf"start_token_id.*\[0, {VOCAB}\).*{bad}"):
        model.evaluate_stream([1, 2, 3], start_token_id=bad)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match=rf"`y`.*{message}"):
        model.evaluate(np.array([[1, 2]]), np.array([[2, bad]]), verbose=0)
    with pytest.raises(ValueError, match=message):
        generate_ids(model, np.array([[bad, 0, 0]]), np.array([[True, False, False]]))


def test_language_model_stream_must_be_one_dimensional(language_model):
    with pytest.raises(ValueError, match="1-D stream"):
        language_model.evaluate_stream(np.array([[1, 2], [3, 1]]))
    with pytest.raises(ValueError, match="token_ids=None"):
        language_model.evaluate_stream(None)


def test_decode_checks_its_arrays(language_model):
    sampler = "greedy"
    with pytest.raises(ValueError, match=r"\(batch, max_length\)"):
        generate_ids(language_model, np.array([1, 0, 0]), np.array([True, False, False]), sampler)
    with pytest.raises(ValueError, match=r"prompt_mask\[:, 0\]"):
        generate_ids(language_model, np.array([[1, 0]]), np.array([[False, True]]), sampler)
    with pytest.raises(ValueError, match="prompt_mask"):
        generate_ids(language_model, np.array([[1, 0]]), np.array([[True]]), sampler)
    # Ids at generated positions are overwritten, so any value is fine there.
    out, _ = generate_ids(language_model, np.array([[1, 99]]), np.array([[True, False]]), sampler)
    assert out.shape == (1, 1, 2) and 0 <= out[0, 0, 1] < VOCAB


@pytest.mark.parametrize("bad", [VOCAB, -1])
def test_seq2seq_entries_refuse_ids_outside_the_vocabularies(seq2seq, bad):
    source = np.array([[3, bad, 0]])
    message = rf"in \[0, {VOCAB}\).*first is {bad} at index \(0, 1\)"
    with pytest.raises(ValueError, match=rf"source_ids.*{message}"):
        seq2seq.generate(source, max_length=4)
    with pytest.raises(ValueError, match=rf"source_ids.*{message}"):
        seq2seq.generate(source, max_length=4, beam_width=2)
    with pytest.raises(ValueError, match=message):
        seq2seq.predict((source, np.array([[1, 3]])), verbose=0)
    target_bad = VOCAB + 2 if bad > 0 else bad
    with pytest.raises(ValueError, match=rf"decoder_input_ids.*\[0, {VOCAB + 2}\)"):
        seq2seq.predict((np.array([[3, 4]]), np.array([[1, target_bad]])), verbose=0)
    with pytest.raises(ValueError, match=rf"\[0, {VOCAB + 2}\)"):
        seq2seq.attention_weights(np.array([[3, 4]]), np.array([[1, target_bad]]))


@pytest.mark.parametrize("name", ["start_token_id", "end_token_id", "pad_token_id"])
@pytest.mark.parametrize("value", [12, -1, 1.0, "1"])
def test_seq2seq_special_ids_are_checked_at_construction(name, value):
    with pytest.raises(ValueError, match=rf"`{name}`.*Received: {name}={value!r}"):
        Seq2Seq(VOCAB, 12, embedding_dim=4, units=4, **{name: value})


def test_tagger_predict_refuses_ids_outside_each_vocabulary(tagger):
    encoded = tagger.encode(["EU rejects"])
    for key, size in (("words", 4), ("chars", 10), ("casing", 9)):
        bad = {k: v.copy() for k, v in encoded.items()}
        bad[key][(0,) * bad[key].ndim] = size
        with pytest.raises(ValueError, match=rf"x\['{key}'\].*\[0, {size}\)"):
            tagger.predict(bad)
    bad = {k: v.copy() for k, v in encoded.items()}
    bad["words"][0, 0] = -2
    with pytest.raises(ValueError, match="first is -2"):
        tagger.predict(bad)
    with pytest.raises(ValueError, match="keys 'words', 'chars'"):
        tagger.predict({"words": encoded["words"]})
    assert tagger.predict(encoded).shape == encoded["words"].shape


def test_tagger_tag_takes_one_sentence_or_a_list(tagger):
    assert tagger.tag("EU rejects") == tagger.tag(["EU rejects"])
    assert len(tagger.tag("EU rejects")[0]) == 2
    with pytest.raises(ValueError, match="`sentences` must be a list"):
        tagger.tag(None)


# --- 2. NaN or Inf at masked memory steps ---------------------------------------

ATTENTIONS = {
    "bahdanau": lambda: BahdanauAttention(5),
    "bahdanau_normalized": lambda: BahdanauAttention(5, normalize=True),
    "luong_dot": lambda: LuongAttention(score="dot"),
    "luong_general": lambda: LuongAttention(score="general", scale=True),
    "luong_concat": lambda: LuongAttention(5, score="concat"),
}


def _memory_with_garbage(fill):
    rng = np.random.default_rng(0)
    memory = rng.normal(size=(3, 5, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], bool)
    clean = np.where(mask[..., None], memory, 0.0).astype("float32")
    dirty = np.where(mask[..., None], memory, fill).astype("float32")
    return clean, dirty, mask


@pytest.mark.parametrize("fill", [np.nan, np.inf, -np.inf, 1e30])
@pytest.mark.parametrize("kind", sorted(ATTENTIONS))
def test_attention_ignores_nan_and_inf_in_masked_memory(kind, fill):
    attention = ATTENTIONS[kind]()
    clean, dirty, mask = _memory_with_garbage(fill)
    query = np.random.default_rng(1).normal(size=(3, 2, 4)).astype("float32")
    context_clean, weights_clean = attention(query, clean, mask=mask)
    context_dirty, weights_dirty = attention(query, dirty, mask=mask)
    # Precomputed keys (as a decoder passes them) carry the garbage too.
    keys = attention.project_keys(dirty)
    context_keys, _ = attention(query, dirty, mask=mask, projected_keys=keys)
    for got in (context_dirty, weights_dirty, context_keys):
        assert np.isfinite(_np(got)).all()
    np.testing.assert_allclose(_np(context_dirty), _np(context_clean), atol=1e-6)
    np.testing.assert_allclose(_np(weights_dirty), _np(weights_clean), atol=1e-6)
    np.testing.assert_allclose(_np(context_keys), _np(context_clean), atol=1e-6)
    np.testing.assert_array_equal(_np(context_clean)[2], 0.0)  # fully masked row


@pytest.mark.parametrize("attention", ["luong", "bahdanau"])
def test_attention_decoder_cell_ignores_nan_in_masked_memory(attention):
    layer = LuongAttention(score="general") if attention == "luong" else BahdanauAttention(4)
    cell = AttentionDecoderCell(LSTMCell(4), layer, attention_layer_size=4)
    clean, dirty, mask = _memory_with_garbage(np.nan)
    x = np.random.default_rng(2).normal(size=(3, 3)).astype("float32")
    outputs = {}
    for name, memory in (("clean", clean), ("dirty", dirty)):
        states = cell.get_initial_state(3)
        constants = cell.prepare_constants(memory, mask)
        for _ in range(2):
            y, states = cell(x, states, **constants)
        outputs[name] = _np(y)
    assert np.isfinite(outputs["dirty"]).all()
    np.testing.assert_allclose(outputs["dirty"], outputs["clean"], atol=1e-6)


# --- 3. CRF tags ----------------------------------------------------------------


def test_crf_refuses_fractional_tags_and_accepts_whole_floats():
    crf = CRF(3)
    emissions = np.random.default_rng(0).normal(size=(2, 4, 3)).astype("float32")
    tags = np.array([[0, 1, 2, 1], [2, 2, 0, 1]])
    with pytest.raises(ValueError, match=r"integer tag ids.*1\.5"):
        crf.log_likelihood(emissions, np.where(tags == 1, 1.5, tags))
    with pytest.raises(ValueError, match="integer tag ids"):
        crf.path_score(emissions, np.array([["a"] * 4] * 2))
    # 1.5 at a masked step does not matter (any value is allowed there).
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    padded = tags.astype("float32")
    padded[0, 3] = 1.5
    np.testing.assert_allclose(
        _np(crf.log_likelihood(emissions, padded, mask)),
        _np(crf.log_likelihood(emissions, tags, mask)),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        _np(crf.log_likelihood(emissions, tags.astype("float32"))),
        _np(crf.log_likelihood(emissions, tags)),
        rtol=1e-6,
    )


def test_crf_over_zero_time_steps_is_the_empty_row_result():
    crf = CRF(3)
    emissions = np.zeros((2, 0, 3), "float32")
    tags = np.zeros((2, 0), "int32")
    np.testing.assert_array_equal(_np(crf.log_likelihood(emissions, tags)), [0.0, 0.0])
    np.testing.assert_array_equal(_np(crf.log_partition(emissions)), [0.0, 0.0])
    decoded, best = crf.viterbi_decode(emissions, return_scores=True)
    assert _np(decoded).shape == (2, 0) and _np(best).tolist() == [0.0, 0.0]
    assert _np(crf(emissions)).shape == (2, 0)


# --- 4. a rejected call leaves the model usable ----------------------------------


def test_seq2seq_generate_after_a_rejected_call(seq2seq):
    source = np.array([[3, 4, 5], [6, 0, 0]])
    before, _ = seq2seq.generate(source, max_length=5)
    beam_before, _ = seq2seq.generate(source, max_length=5, sampler="beam", num_beams=2)
    for bad in (np.array([3, 4, 5]), np.zeros((2, 3, 1), "int32"), None, []):
        with pytest.raises(ValueError, match="source_ids"):
            seq2seq.generate(bad, max_length=5)
        with pytest.raises(ValueError, match="source_ids"):
            seq2seq.generate(bad, max_length=5, sampler="beam", num_beams=2)
    np.testing.assert_array_equal(seq2seq.generate(source, max_length=5)[0], before)
    beam_after, _ = seq2seq.generate(source, max_length=5, sampler="beam", num_beams=2)
    np.testing.assert_array_equal(beam_after, beam_before)


def test_models_work_after_keras_rejects_a_predict(classifier, language_model):
    """A shape error raised by Keras inside `predict` (while JAX traces) must not
    leave the variables detached ("'NoneType' object is not callable")."""
    ids = np.array([[1, 2, 3]])
    for model in (classifier, language_model):
        before = model.predict(ids, verbose=0)
        # The language model passes a dict to Keras unchecked, and Keras refuses
        # its rank while tracing, after JAX's `predict` detached the variables
        # (checked: without `variables_kept_on_error` the next call fails).
        with pytest.raises(ValueError):
            model.predict({"token_ids": np.ones((2, 3, 4), "int32")}, verbose=0)
        with pytest.raises(ValueError, match=r"shape \(batch, time\)"):
            model.predict(np.ones((3,), "int32"), verbose=0)
        np.testing.assert_allclose(model.predict(ids, verbose=0), before, rtol=1e-6)
    assert language_model.generate([1, 2], max_length=4).shape == (4,)


def test_forecaster_works_after_a_rejected_forecast():
    model = Forecaster(4, 2, units=3, seed=0)
    history = np.arange(1.0, 7.0)
    before = model.forecast(history)
    with pytest.raises(ValueError, match="batch_size"):
        model.forecast(history, batch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.forecast(history, batch_size="2")
    np.testing.assert_allclose(model.forecast(history), before, rtol=1e-6)


# --- 5. clear errors for bad arguments ------------------------------------------


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: Seq2Seq(VOCAB, VOCAB, dropout="0.2"), "dropout"),
        (lambda: Seq2Seq(VOCAB, VOCAB, dropout=1.0), "dropout"),
        (lambda: Seq2Seq(VOCAB, VOCAB, teacher_forcing_ratio="1"), "teacher_forcing_ratio"),
        (lambda: Seq2Seq(VOCAB, VOCAB, teacher_forcing_ratio=1.5), "teacher_forcing_ratio"),
        (lambda: Seq2Seq(VOCAB, VOCAB, bidirectional="yes"), "bidirectional"),
        (lambda: Seq2Seq(VOCAB, VOCAB, seed="1"), "seed"),
        (lambda: Seq2Seq(VOCAB, "12"), "target_vocab_size"),
        (lambda: TextClassifier(VOCAB, dropout="0.1"), "dropout"),
        (lambda: TextClassifier(VOCAB, bidirectional=1), "bidirectional"),
        (lambda: TextClassifier(VOCAB, seed=1.5), "seed"),
        (lambda: LanguageModel(VOCAB, dropout="0.1"), "dropout"),
        (lambda: LanguageModel(VOCAB, stateful="no"), "stateful"),
        (lambda: LanguageModel(VOCAB, tie_weights="no"), "tie_weights"),
        (lambda: LanguageModel(VOCAB, seed="3"), "seed"),
        (lambda: Forecaster(4, units="8"), "units"),
        (lambda: Forecaster(4, num_layers=0), "num_layers"),
        (lambda: Forecaster(4, dropout="0.1"), "dropout"),
        (lambda: Forecaster(4, seed="0"), "seed"),
        (lambda: Forecaster(4, scaler={"mean": "0", "std": 1.0}), "scaler"),
        (lambda: SequenceTagger(["a"], ["O"], ["a"], lowercase="yes"), "lowercase"),
        (lambda: SequenceTagger(["a"], ["O"], ["a"], dropout="0.5"), "dropout"),
        (lambda: SequenceTagger(["a"], ["O"], ["a"], seed="0"), "seed"),
        (lambda: UnknownWordDropout(0.1, unknown_id="x"), "unknown_id"),
        (lambda: TiedEmbedding(4, 3, use_output_bias="no"), "use_output_bias"),
        (lambda: BeamSampler("2"), "num_beams"),
        (lambda: BeamSampler(2, num_results=3), "num_results"),
        (lambda: BeamSampler(2, length_penalty=float("nan")), "length_penalty"),
        (lambda: MaskedSequenceLoss(pad_token_id="0"), "pad_token_id"),
    ],
)
def test_model_constructors_name_a_bad_argument(build, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        build()


def test_forecast_errors_name_the_argument():
    model = Forecaster(4, 2, num_covariates=1, units=3, seed=0)
    history = np.arange(1.0, 7.0)
    covariates = np.ones((6, 1))
    assert model.forecast(history, covariates).shape == (2,)
    for bad in (None, "abc", [[1.0, 2.0], [3.0]]):
        with pytest.raises(ValueError, match="`series` must be an array of numbers"):
            model.forecast(bad, covariates)
    with pytest.raises(ValueError, match="holds no series"):
        model.forecast(np.zeros((0, 6)), covariates)
    with pytest.raises(ValueError, match=r"`covariates` must have shape \(steps, 1\)"):
        model.forecast(history, np.ones((6, 3)))
    with pytest.raises(ValueError, match=r"`covariates` must have shape"):
        model.forecast(history, np.ones((2, 1)))  # fewer steps than the window
    with pytest.raises(ValueError, match="`covariates`"):
        model.forecast(history, None)
    plain = Forecaster(4, 2, units=3, seed=0)
    with pytest.raises(ValueError, match="num_covariates=0"):
        plain.forecast(history, covariates)
    auto = Forecaster(4, 3, num_covariates=1, strategy="autoregressive", units=3, seed=0)
    with pytest.raises(ValueError, match=r"`future_covariates` must have shape"):
        auto.forecast(history, covariates, future_covariates=np.ones((2, 2)))


def _without_keras_hub(monkeypatch):
    # `None` in sys.modules makes every `import keras_hub...` raise ImportError.
    for name in [m for m in sys.modules if m == "keras_hub" or m.startswith("keras_hub.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "keras_hub", None)


def test_missing_keras_hub_names_the_extra_and_leaves_beam_search_working(
    monkeypatch, language_model
):
    model = Seq2Seq(VOCAB, VOCAB, embedding_dim=4, units=4, seed=0)
    source = np.array([[3, 4, 5]])
    with monkeypatch.context() as patch:
        _without_keras_hub(patch)
        with pytest.raises(ModuleNotFoundError, match=r'pip install "kzoo\[hub\]"'):
            model.generate(source, max_length=4)
        with pytest.raises(ModuleNotFoundError, match=r"kzoo\[hub\]"):
            language_model.generate([1, 2], max_length=4, sampler="top_k", k=2)
        # Beam search is kzoo's own: it works without keras-hub, and after the
        # failed greedy call.
        tokens, scores = model.generate(source, max_length=4, sampler="beam", num_beams=2)
        assert tokens.shape == (1, 1, 4) and np.isfinite(scores).all()
    # With keras-hub back, greedy search runs on the same model.
    assert model.generate(source, max_length=4)[0].shape == (1, 1, 4)


# --- 6. empty and None inputs -----------------------------------------------------


def test_empty_and_none_inputs_give_clear_errors(language_model, seq2seq, tagger):
    with pytest.raises(ValueError, match="Empty prompt"):
        language_model.generate([], max_length=4)
    with pytest.raises(ValueError, match="`prompt` must be"):
        language_model.generate(None, max_length=4)
    with pytest.raises(ValueError, match=r"shape \(batch, time\)"):
        seq2seq.generate(np.zeros((2, 0), "int32"), max_length=4)
    with pytest.raises(ValueError, match="Received None"):
        seq2seq.generate(None, max_length=4)
    with pytest.raises(ValueError, match="`batch_size`"):
        seq2seq.generate(np.array([[3]]), max_length=4, batch_size=0)
    with pytest.raises(ValueError, match="`predict` takes sentences"):
        tagger.predict(None)
    assert tagger.predict([]) == []


@pytest.mark.parametrize("fill", [np.nan, np.inf])
@pytest.mark.parametrize(
    "pooling",
    [GlobalMaskedAveragePooling1D, GlobalMaskedMaxPooling1D, lambda: AttentionPooling1D(4)],
)
def test_masked_poolings_ignore_nan_and_inf_at_padded_steps(pooling, fill):
    layer = pooling()
    clean, dirty, mask = _memory_with_garbage(fill)
    expected = _np(layer(clean, mask=mask))
    got = _np(layer(dirty, mask=mask))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_entity_f1_refuses_a_flat_tag_list():
    # A flat list would be read as sequences of characters: "O" is a valid tag.
    with pytest.raises(ValueError, match="list of tag sequences"):
        entity_f1(["O", "O"], ["O", "O"])
    with pytest.raises(ValueError, match="list of tag sequences"):
        entity_f1(None, None)
    assert entity_f1([["B-PER", "O"]], [["B-PER", "O"]])["f1"] == 1.0


def test_fit_checks_ids_and_still_validates():
    model = TextClassifier(VOCAB, embedding_dim=4, units=3, seed=0)
    model.compile("sgd", "binary_crossentropy")
    ids = np.array([[1, 2, 3], [4, 5, 0]])
    labels = np.array([[0.0], [1.0]])
    with pytest.raises(ValueError, match=rf"in \[0, {VOCAB}\).*first is -1"):
        model.fit(np.array([[1, -1, 3], [4, 5, 0]]), labels, verbose=0)
    # Keras's own call of `evaluate` for the validation data (x=None, cached)
    # goes through the checked `evaluate` too.
    history = model.fit(ids, labels, validation_data=(ids, labels), epochs=2, verbose=0)
    assert np.isfinite(history.history["val_loss"]).all()


def test_forecaster_predict_checks_its_windows():
    model = Forecaster(4, 2, num_covariates=1, units=3, seed=0)
    windows = np.zeros((2, 4, 2), "float32")
    assert model.predict(windows, verbose=0).shape == (2, 2)
    with pytest.raises(ValueError, match=r"shape \(batch, 4, 2\).*\(2, 4, 3\)"):
        model.predict(np.zeros((2, 4, 3), "float32"), verbose=0)
    windows[1, 2, 0] = np.nan  # would come out as a NaN forecast
    with pytest.raises(ValueError, match=r"`x` contains 1 NaN.*\(1, 2, 0\)"):
        model.predict(windows, verbose=0)


def test_taggers_refuse_fractional_tags_in_fit():
    crf = CRF(3)
    emissions = np.zeros((2, 3, 3), "float32")
    with pytest.raises(ValueError, match=r"integer tag ids.*1\.5"):
        crf.negative_log_likelihood(emissions, np.array([[0.0, 1.5, 2.0], [1.0, 1.0, 0.0]]))

    tagger = SequenceTagger(
        ["eu"],
        ["O", "B-ORG"],
        ["e"],
        word_dim=2,
        char_encoder=None,
        casing_dim=2,
        lstm_units=2,
        decoder="softmax",
        seed=0,
    )
    tagger.compile("sgd")
    x = tagger.encode(["eu eu"])
    with pytest.raises(ValueError, match=r"y \(tag ids\).*integer token ids"):
        tagger.fit(x, np.array([[0.0, 0.5] + [0.0] * 6]), verbose=0)
