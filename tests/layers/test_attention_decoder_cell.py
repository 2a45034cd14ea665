import keras
import numpy as np
import pytest
from keras import ops

from kzoo.layers.attention import BahdanauAttention, LuongAttention
from kzoo.layers.attention_decoder_cell import AttentionDecoderCell
from tests.references.attention_ref import (
    attention_decoder_ref,
    bahdanau_ref,
    luong_ref,
)

ATOL = 1e-5
B, STEPS, D, T, HK, UNITS = 3, 4, 5, 6, 4, 8

# Row 0: all valid; row 1: leading padding; row 2: fully masked.
MASK = np.array(
    [
        [1, 1, 1, 1, 1, 1],
        [0, 0, 1, 1, 1, 1],
        [0, 0, 0, 0, 0, 0],
    ],
    dtype=bool,
)


def _rand(*shape, scale=1.0):
    return np.asarray(np.random.randn(*shape) * scale, dtype="float32")


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _run(cell, inputs, memory, mask=None, precompute=False):
    """Drives the cell with a Python loop, as a recurrent layer would."""
    states = cell.get_initial_state(inputs.shape[0])
    if precompute:
        constants = cell.prepare_constants(memory, mask)
    else:
        constants = {"memory": memory, "memory_mask": mask}
    outputs = []
    for step in range(inputs.shape[1]):
        output, states = cell(inputs[:, step], states, **constants)
        outputs.append(_np(output))
    return np.stack(outputs, 1), [_np(s) for s in states]


def _attend_fn(attention):
    w = {v.name: _np(v) for v in attention.weights}
    if isinstance(attention, BahdanauAttention):
        return lambda q, m, k: bahdanau_ref(
            q,
            m,
            k,
            w["query_kernel"],
            w["key_kernel"],
            w["score_vector"],
            g=w.get("score_scale"),
            b=w.get("score_bias"),
        )
    kernel = w.get("key_kernel", w.get("concat_kernel"))
    return lambda q, m, k: luong_ref(
        q,
        m,
        k,
        attention.score,
        kernel=kernel,
        v=w.get("score_vector"),
        g=w.get("score_scale"),
    )


def _check_against_reference(attention, attention_layer_size, input_feeding):
    inputs, memory = _rand(B, STEPS, D), _rand(B, T, HK)
    cell = AttentionDecoderCell(
        keras.layers.LSTMCell(UNITS),
        attention,
        attention_layer_size=attention_layer_size,
        input_feeding=input_feeding,
        memory_dim=HK,
    )
    cell.build((B, D), (B, T, HK))
    # Random values everywhere (also for biases and scales that start at 0/1).
    cell.set_weights([_rand(*w.shape, scale=0.5) for w in cell.get_weights()])
    outputs, states = _run(cell, inputs, memory, MASK)
    lstm = [_np(w) for w in cell.cell.weights]
    attention_kernel = None if attention_layer_size is None else _np(cell.attention_kernel)
    ref_outputs, _, (h, c, attentional) = attention_decoder_ref(
        inputs,
        memory,
        MASK,
        lstm,
        _attend_fn(attention),
        attention_kernel=attention_kernel,
        input_feeding=input_feeding,
    )
    np.testing.assert_allclose(outputs, ref_outputs, atol=ATOL)
    for got, want in zip(states, [h, c, attentional]):
        np.testing.assert_allclose(got, want, atol=ATOL)
    assert not np.isnan(outputs).any()
    if attention_layer_size is None:
        # Fully masked memory: zero context, so zero attentional output.
        np.testing.assert_array_equal(outputs[2], 0.0)


@pytest.mark.parametrize("input_feeding", [True, False])
@pytest.mark.parametrize("attention_layer_size", [None, 7])
def test_matches_numpy_loop_luong(input_feeding, attention_layer_size):
    _check_against_reference(
        LuongAttention(score="general", scale=True), attention_layer_size, input_feeding
    )


@pytest.mark.parametrize("input_feeding", [True, False])
def test_matches_numpy_loop_bahdanau(input_feeding):
    _check_against_reference(
        BahdanauAttention(6, normalize=True),
        attention_layer_size=7,
        input_feeding=input_feeding,
    )
    _check_against_reference(
        BahdanauAttention(6), attention_layer_size=None, input_feeding=input_feeding
    )


def test_sizes_weights_and_initial_state():
    cell = AttentionDecoderCell(
        keras.layers.LSTMCell(UNITS),
        LuongAttention(score="general"),
        attention_layer_size=7,
    )
    # Known before build when attention_layer_size is given.
    assert cell.state_size == [UNITS, UNITS, 7]
    assert cell.output_size == 7
    states = cell.get_initial_state(B)
    assert [tuple(s.shape) for s in states] == [(B, UNITS), (B, UNITS), (B, 7)]
    assert all(np.all(_np(s) == 0) for s in states)
    _run(cell, _rand(B, 2, D), _rand(B, T, HK), MASK)
    shapes = {w.path.split("/")[-1]: tuple(w.shape) for w in cell.weights}
    assert shapes == {
        "kernel": (D + 7, 4 * UNITS),  # input feeding widens the LSTM input
        "recurrent_kernel": (UNITS, 4 * UNITS),
        "bias": (4 * UNITS,),
        "key_kernel": (HK, UNITS),
        "attention_kernel": (UNITS + HK, 7),
    }
    assert isinstance(cell.state_size[0], int)


def test_state_width_from_memory_when_no_attention_layer():
    cell = AttentionDecoderCell(
        keras.layers.GRUCell(UNITS), BahdanauAttention(5), input_feeding=False
    )
    with pytest.raises(ValueError, match="memory_dim"):
        cell.state_size  # noqa: B018
    cell.build((B, D), (B, T, HK))
    assert cell.state_size == [UNITS, HK]
    assert cell.output_size == HK
    outputs, states = _run(cell, _rand(B, 3, D), _rand(B, T, HK), MASK)
    assert outputs.shape == (B, 3, HK)
    assert [s.shape for s in states] == [(B, UNITS), (B, HK)]
    with_dim = AttentionDecoderCell(
        keras.layers.GRUCell(UNITS), BahdanauAttention(5), memory_dim=HK
    )
    assert with_dim.state_size == [UNITS, HK]


def test_precomputed_keys_give_the_same_outputs():
    cell = AttentionDecoderCell(
        keras.layers.LSTMCell(UNITS),
        LuongAttention(units=5, score="concat"),
        attention_layer_size=7,
    )
    inputs, memory = _rand(B, STEPS, D), _rand(B, T, HK)
    with_keys, _ = _run(cell, inputs, memory, MASK, precompute=True)
    without, _ = _run(cell, inputs, memory, MASK)
    np.testing.assert_allclose(with_keys, without, atol=ATOL)


def test_alignment_history_outputs_and_split():
    attention = LuongAttention(score="general")
    cell = AttentionDecoderCell(
        keras.layers.LSTMCell(UNITS),
        attention,
        attention_layer_size=7,
        alignment_history=True,
    )
    inputs, memory = _rand(B, STEPS, D), _rand(B, T, HK)
    cell.build((B, D), (B, T, HK))
    assert cell.output_size == 7 + T
    outputs, _ = _run(cell, inputs, memory, MASK)
    attentional, alignments = (_np(x) for x in cell.split_outputs(outputs))
    assert attentional.shape == (B, STEPS, 7) and alignments.shape == (B, STEPS, T)
    ref_outputs, ref_alignments, _ = attention_decoder_ref(
        inputs,
        memory,
        MASK,
        [_np(w) for w in cell.cell.weights],
        _attend_fn(attention),
        attention_kernel=_np(cell.attention_kernel),
    )
    np.testing.assert_allclose(attentional, ref_outputs, atol=ATOL)
    np.testing.assert_allclose(alignments, ref_alignments, atol=ATOL)
    for b in range(B):
        assert np.all(alignments[b][:, ~MASK[b]] == 0.0)
    np.testing.assert_array_equal(alignments[2], 0.0)
    np.testing.assert_allclose(alignments[:2].sum(-1), 1.0, atol=ATOL)
    with pytest.raises(ValueError, match="memory_length=6"):
        cell(inputs[:, 0], cell.get_initial_state(B), memory=_rand(B, T + 1, HK))
    unbuilt = AttentionDecoderCell(
        keras.layers.LSTMCell(UNITS),
        LuongAttention(),
        alignment_history=True,
        memory_dim=UNITS,
    )
    with pytest.raises(ValueError, match="memory_length"):
        unbuilt.output_size  # noqa: B018


def test_config_round_trip():
    cell = AttentionDecoderCell(
        keras.layers.LSTMCell(UNITS),
        BahdanauAttention(5, normalize=True),
        attention_layer_size=7,
        input_feeding=False,
        alignment_history=True,
        name="decoder_cell",
    )
    inputs, memory = _rand(B, STEPS, D), _rand(B, T, HK)
    outputs, _ = _run(cell, inputs, memory, MASK)
    config = cell.get_config()
    clone = AttentionDecoderCell.from_config(config)
    assert clone.get_config() == config
    assert clone.state_size == cell.state_size
    assert clone.output_size == cell.output_size
    assert isinstance(clone.attention, BahdanauAttention) and clone.attention.normalize
    clone.build((B, D), (B, T, HK))
    clone.set_weights(cell.get_weights())
    again, _ = _run(clone, inputs, memory, MASK)
    np.testing.assert_allclose(again, outputs, atol=ATOL)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cell))
    assert type(restored) is AttentionDecoderCell
    assert restored.get_config() == config


def test_errors():
    cell = AttentionDecoderCell(
        keras.layers.LSTMCell(UNITS),
        LuongAttention(score="general"),
        attention_layer_size=7,
    )
    x, memory = _rand(B, D), _rand(B, T, HK)
    with pytest.raises(ValueError, match="without the memory dimension"):
        cell(x, cell.get_initial_state(B))
    cell.build((B, D), (B, T, HK))
    with pytest.raises(ValueError, match="needs the attention memory"):
        cell(x, cell.get_initial_state(B))
    with pytest.raises(ValueError, match="expects 3 states"):
        cell(x, cell.get_initial_state(B)[:2], memory=memory)
    with pytest.raises(ValueError, match="mask"):
        cell(x, cell.get_initial_state(B), memory=memory, memory_mask=MASK[:, :4])
    cases = [
        (lambda: AttentionDecoderCell("lstm", LuongAttention()), "cell"),
        (
            lambda: AttentionDecoderCell(keras.layers.LSTMCell(2), keras.layers.Dense(2)),
            "attention",
        ),
        (
            lambda: AttentionDecoderCell(
                keras.layers.LSTMCell(2), LuongAttention(), attention_layer_size=0
            ),
            "attention_layer_size=0",
        ),
        (
            lambda: AttentionDecoderCell(
                keras.layers.LSTMCell(2), LuongAttention(), input_feeding=1
            ),
            "input_feeding=1",
        ),
    ]
    for make, match in cases:
        with pytest.raises(ValueError, match=match):
            make()
    fixed = AttentionDecoderCell(
        keras.layers.LSTMCell(UNITS), LuongAttention(score="general"), memory_dim=3
    )
    with pytest.raises(ValueError, match="memory_dim=3"):
        fixed.build((B, D), (B, T, HK))


class TinyAttentionDecoder(keras.Model):
    """A tiny decoder that attends over a given memory, unrolled in Python."""

    def __init__(self, steps, **kwargs):
        super().__init__(**kwargs)
        self.steps = steps
        self.cell = AttentionDecoderCell(
            keras.layers.LSTMCell(UNITS),
            BahdanauAttention(6, normalize=True),
            attention_layer_size=7,
        )
        self.head = keras.layers.Dense(2)

    def call(self, data):
        inputs, memory, mask = data
        states = self.cell.get_initial_state(ops.shape(inputs)[0])
        constants = {"memory": memory, "memory_mask": mask}
        outputs = []
        for step in range(self.steps):
            output, states = self.cell(inputs[:, step], states, **constants)
            outputs.append(self.head(output))
        return ops.stack(outputs, axis=1)


def test_fit_reduces_the_loss_and_updates_every_weight():
    steps = 3
    inputs, memory = _rand(8, steps, D), _rand(8, T, HK)
    mask = np.concatenate([MASK, MASK, MASK[:2]], 0)
    targets = _rand(8, steps, 2, scale=0.5)
    model = TinyAttentionDecoder(steps)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    data = (inputs, memory, mask)
    # A symbolic call builds every weight without running the model.
    specs = tuple(keras.KerasTensor(x.shape, dtype=x.dtype.name) for x in data)
    assert tuple(model(specs).shape) == (8, steps, 2)
    before = [_np(w).copy() for w in model.trainable_weights]
    assert len(before) == 3 + 5 + 1 + 2  # LSTM, attention, W_c, head
    # One batch per epoch: each epoch's loss is measured before that epoch's
    # update, so the first entry is the loss of the initial weights.
    history = model.fit(data, targets, epochs=5, batch_size=8, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0]
    names = [w.path for w in model.trainable_weights]
    for name, old, new in zip(names, before, model.trainable_weights):
        assert not np.allclose(old, _np(new)), f"{name} was not updated"
        assert np.isfinite(_np(new)).all(), name
