"""Seq2Seq, its loss and the greedy/beam searches, against NumPy references."""

import keras
import numpy as np
import pytest
from keras import ops

from kzoo.models import BeamSearch, MaskedSequenceLoss, Seq2Seq, greedy_search
from kzoo.models.decoding import gnmt_length_penalty, mask_after_end

ATOL = 1e-5
PAD, START, END = 0, 1, 2
SRC_VOCAB, TGT_VOCAB, EMB, UNITS = 11, 9, 5, 6

# Row 0 full, row 1 padded after 3 tokens, row 2 after 1 token.
SOURCE = np.array([[4, 5, 6, 7, 8], [9, 3, 4, 0, 0], [5, 0, 0, 0, 0]], "int32")
DECODER_IN = np.array([[1, 3, 4, 5], [1, 6, 7, 0], [1, 8, 0, 0]], "int32")


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    m = Seq2Seq(SRC_VOCAB, TGT_VOCAB, embedding_dim=EMB, units=UNITS, seed=1, name="s2s")
    m.build()
    # Larger weights make attention and predictions far from uniform.
    for w in m.weights:
        if "bias" not in w.path:
            w.assign(_np(w) * 2.0)
    return m


# --- NumPy references --------------------------------------------------------


def _np(x, dtype=None):
    """Any tensor or variable (torch ones may require grad) as a NumPy array."""
    if not isinstance(x, (np.ndarray, list, tuple, float, int)):
        x = ops.convert_to_numpy(x)
    return np.asarray(x, dtype)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x, mask=None):
    x = np.where(mask, x, -np.inf) if mask is not None else x
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def numpy_decoder(model, memory, mask, states, tokens):
    """Luong decoder with input feeding, general score and LSTM cell, float64."""
    w = {v.path.split("/", 1)[1]: _np(v, "float64") for v in model.weights}
    kernel = w["attention_decoder_cell/decoder_cell/kernel"]
    recurrent = w["attention_decoder_cell/decoder_cell/recurrent_kernel"]
    bias = w["attention_decoder_cell/decoder_cell/bias"]
    key_kernel = w["attention_decoder_cell/attention/key_kernel"]
    attention_kernel = w["attention_decoder_cell/attention_kernel"]
    embedding = w["target_embedding/embeddings"]
    h, c, previous = (_np(s, "float64") for s in states)
    memory = _np(memory, "float64")
    keys = memory @ key_kernel  # (batch, time, units)
    logits, alignments = [], []
    for t in range(tokens.shape[1]):
        x = np.concatenate([embedding[tokens[:, t]], previous], -1)
        z = x @ kernel + h @ recurrent + bias
        i, f, g, o = np.split(z, 4, axis=-1)  # Keras gate order
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        weights = _softmax(np.einsum("bu,btu->bt", h, keys), mask)
        context = np.einsum("bt,btd->bd", weights, memory)
        previous = np.tanh(np.concatenate([h, context], -1) @ attention_kernel)
        logits.append(previous @ w["projection/kernel"] + w["projection/bias"])
        alignments.append(weights)
    return np.stack(logits, 1), np.stack(alignments, 1)


# --- model ------------------------------------------------------------------


def test_decoder_matches_numpy_loop(model):
    memory, mask, states = model.encode(SOURCE)
    np.testing.assert_array_equal(_np(mask), SOURCE != PAD)
    expected, expected_alignments = numpy_decoder(model, memory, _np(mask), states, DECODER_IN)
    logits = _np(model((SOURCE, DECODER_IN)))
    diff = np.abs(logits - expected).max()
    assert diff < ATOL, f"largest difference {diff}"
    alignments = model.attention_weights(SOURCE, DECODER_IN)
    np.testing.assert_allclose(alignments, expected_alignments, atol=ATOL)
    # Padded source positions get no attention at all.
    assert np.all(alignments[~np.broadcast_to((SOURCE != PAD)[:, None], alignments.shape)] == 0)


def test_memory_mask_is_honoured(model):
    """Extra padding columns change neither the logits nor the generated ids."""
    longer = np.concatenate([SOURCE, np.zeros((3, 3), "int32")], axis=1)
    a = _np(model((SOURCE, DECODER_IN)))
    b = _np(model((longer, DECODER_IN)))
    np.testing.assert_allclose(a, b, atol=ATOL)
    np.testing.assert_array_equal(
        model.generate(SOURCE, max_length=6), model.generate(longer, max_length=6)
    )


def test_greedy_generate_matches_hand_loop_and_beam_width_one(model):
    tokens = model.generate(SOURCE, max_length=6)
    assert tokens.shape == (3, 6)
    # A hand-written greedy loop over decode_step.
    memory, mask, states = model.encode(SOURCE)
    constants = model.decoder_constants(memory, mask)
    previous = np.full((3,), START, "int32")
    expected = [previous]
    for _ in range(5):
        logits, states = model.decode_step(previous, states, constants)
        previous = np.argmax(_np(logits), -1).astype("int32")
        expected.append(previous)
    expected = _np(mask_after_end(np.stack(expected, 1), END, 1, PAD))
    np.testing.assert_array_equal(tokens, expected)
    beam, scores = model.generate(SOURCE, max_length=6, beam_width=1, method="beam")
    assert beam.shape == (3, 1, 6) and scores.shape == (3, 1)
    np.testing.assert_array_equal(beam[:, 0], tokens)


def test_scheduled_sampling_ratio_zero_feeds_predictions():
    keras.utils.set_random_seed(5)
    m = Seq2Seq(SRC_VOCAB, TGT_VOCAB, EMB, UNITS, teacher_forcing_ratio=0.0, seed=2)
    m.build()
    logits = _np(m((SOURCE, DECODER_IN), training=True))
    memory, mask, states = m.encode(SOURCE)
    constants = m.decoder_constants(memory, mask)
    previous = DECODER_IN[:, 0]
    expected = []
    for _ in range(DECODER_IN.shape[1]):
        step, states = m.decode_step(previous, states, constants)
        expected.append(_np(step))
        previous = np.argmax(expected[-1], -1).astype("int32")
    np.testing.assert_allclose(logits, np.stack(expected, 1), atol=ATOL)
    # Evaluation always uses teacher forcing.
    teacher = _np(m((SOURCE, DECODER_IN), training=False))
    assert np.abs(teacher - logits).max() > 1e-3


def test_fit_lowers_masked_loss_and_save_load_round_trip(model, tmp_path):
    m = Seq2Seq(SRC_VOCAB, TGT_VOCAB, EMB, UNITS, attention="bahdanau", cell_type="gru")
    target = np.concatenate([DECODER_IN[:, 1:], np.full((3, 1), END, "int32")], 1)
    m.compile(keras.optimizers.Adam(0.05), loss=MaskedSequenceLoss(PAD))
    history = m.fit((SOURCE, DECODER_IN), target, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    path = str(tmp_path / "s2s.keras")
    m.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config() == m.get_config()
    np.testing.assert_allclose(
        _np(loaded((SOURCE, DECODER_IN))),
        _np(m((SOURCE, DECODER_IN))),
        atol=ATOL,
    )
    np.testing.assert_array_equal(
        loaded.generate(SOURCE, max_length=5), m.generate(SOURCE, max_length=5)
    )


def test_masked_sequence_loss_matches_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 5)).astype("float32")
    y = np.array([[3, 4, 2, 0], [1, 2, 0, 0]])
    loss = float(MaskedSequenceLoss(pad_token_id=0)(y, logits))
    log_p = logits - np.log(np.exp(logits.astype("float64")).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_p, y[..., None], -1)[..., 0]
    expected = -(picked * (y != 0)).sum() / (y != 0).sum()
    assert abs(loss - expected) < ATOL


# --- searches on a fake next() ---------------------------------------------


def _table_next(table):
    """next() whose logits depend only on the previous token."""
    table = ops.convert_to_tensor(np.log(_np(table, "float64")), "float32")

    def next(prompt, cache, index):
        previous = ops.take(prompt, index - 1, axis=1)
        return ops.take(table, previous, axis=0), None, cache

    return next


# Tokens: 0 pad, 1 start, 2 end, 3 "a", 4 "b". Greedy takes "a" (0.6), then
# "b" (0.4) and the end (0.9): P = 0.216; "b" then the end has P = 0.36.
MYOPIC = [
    [0.2, 0.2, 0.2, 0.2, 0.2],  # after pad
    [0.0, 0.0, 0.0, 0.6, 0.4],  # after start
    [0.2, 0.2, 0.2, 0.2, 0.2],  # after end (never used)
    [0.0, 0.0, 0.3, 0.3, 0.4],  # after "a"
    [0.0, 0.0, 0.9, 0.05, 0.05],  # after "b"
]


def _prompt(batch, length):
    prompt = np.zeros((batch, length), "int32")
    prompt[:, 0] = START
    return prompt


def _log_prob(sequence):
    total, previous = 0.0, START
    for token in sequence[1:]:
        if token == PAD:
            break
        total += np.log(MYOPIC[previous][token])
        previous = token
    return total


def test_beam_search_beats_myopic_greedy():
    next = _table_next(_np(MYOPIC) + 1e-12)
    greedy = _np(greedy_search(next, _prompt(2, 5), index=1, end_token_id=END))
    np.testing.assert_array_equal(greedy[0], [1, 3, 4, 2, 0])  # a, b, end
    tokens, scores = BeamSearch(beam_width=2, end_token_id=END, num_results=2)(
        next, _prompt(2, 5), index=1
    )
    tokens, scores = _np(tokens), _np(scores)
    np.testing.assert_array_equal(tokens[0, 0], [1, 4, 2, 0, 0])  # b, end
    assert _log_prob(tokens[0, 0]) > _log_prob(greedy[0])
    for row in range(2):
        for n in range(2):
            assert abs(scores[row, n] - _log_prob(tokens[row, n])) < ATOL
    assert scores[0, 0] >= scores[0, 1]


def test_beam_width_one_equals_keras_hub_greedy():
    rng = np.random.default_rng(1)
    table = rng.dirichlet(np.ones(7), size=7)
    next = _table_next(table)
    greedy = _np(greedy_search(next, _prompt(3, 8), index=1, end_token_id=END))
    tokens, _ = BeamSearch(beam_width=1, end_token_id=END)(next, _prompt(3, 8), index=1)
    np.testing.assert_array_equal(_np(tokens)[:, 0], greedy)


def test_length_penalty_and_static_cache():
    """With alpha the scores are log P / ((5 + |Y|) / 6)^alpha, and static cache
    entries reach next() once per beam, unreordered."""
    alpha = 1.0
    seen = {}
    base = _table_next(_np(MYOPIC) + 1e-12)

    def next(prompt, cache, index):
        seen["memory"] = cache["memory"]
        logits, _, _ = base(prompt, cache, index)
        return logits, None, {**cache, "count": cache["count"] + 1}

    memory = np.arange(6, dtype="float32").reshape(2, 3)
    search = BeamSearch(beam_width=3, length_penalty=alpha, end_token_id=END, num_results=3)
    tokens, scores = search(
        next,
        _prompt(2, 5),
        {"memory": memory, "count": np.zeros((2,), "float32")},
        index=1,
        static_keys=("memory",),
    )
    np.testing.assert_array_equal(_np(seen["memory"]), np.repeat(memory, 3, 0))
    for sequence, score in zip(_np(tokens)[0], _np(scores)[0]):
        generated = [t for t in sequence[1:] if t != PAD]
        length = generated.index(END) + 1 if END in generated else len(generated)
        penalty = ((5.0 + length) / 6.0) ** alpha
        assert abs(score - _log_prob(sequence) / penalty) < ATOL
    np.testing.assert_allclose(
        _np(gnmt_length_penalty(np.array([1, 4]), 0.6)),
        ((5 + np.array([1, 4])) / 6) ** 0.6,
        rtol=1e-6,
    )


# --- bad input --------------------------------------------------------------


@pytest.mark.parametrize("beam_width", [0, -2, 1.5])
def test_bad_beam_width(model, beam_width):
    with pytest.raises(ValueError, match="beam_width"):
        BeamSearch(beam_width=beam_width)
    with pytest.raises(ValueError, match="beam_width"):
        model.generate(SOURCE, beam_width=beam_width)


def test_bad_inputs(model):
    memory, mask, _ = model.encode(SOURCE)
    with pytest.raises(ValueError, match="memory_mask"):
        model.decoder_constants(memory, np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="num_results"):
        BeamSearch(beam_width=2, num_results=3)
    with pytest.raises(ValueError, match="length_penalty"):
        BeamSearch(beam_width=2, length_penalty=-1.0)
    with pytest.raises(ValueError, match="source_ids"):
        model.encode(SOURCE[0])
    with pytest.raises(ValueError, match="units"):
        Seq2Seq(5, 5, units=7, bidirectional=True)
    with pytest.raises(ValueError, match="static_keys"):
        BeamSearch(2)(_table_next(_np(MYOPIC) + 1e-12), _prompt(1, 3), {}, static_keys=("memory",))


def test_mask_after_end():
    tokens = np.array([[1, 2, 5, 2, 6], [1, 4, 5, 6, 2]])
    np.testing.assert_array_equal(
        _np(mask_after_end(tokens, 2, start=1)),
        [[1, 2, 0, 0, 0], [1, 4, 5, 6, 2]],
    )
