"""kzoo.layers.RNN: any cell, states, masks, stacking, dropout, errors."""

import keras
import numpy as np
import pytest
from keras import ops
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

import kzoo
from tests.harness import assert_close, run_layer_test, to_numpy, weights_by_name
from tests.references import rnn_ref


class MinimalCell(keras.layers.Layer):
    """A user-written cell with one state: h_t = tanh(x W) + 0.5 h_{t-1} + k."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")

    def call(self, inputs, states, offset=0.0):
        h = ops.tanh(ops.matmul(inputs, self.kernel)) + 0.5 * states[0] + offset
        return h, [h]


def test_user_written_cell_and_constants():
    x = np.random.default_rng(0).normal(size=(3, 4, 2)).astype("float32")
    cell = MinimalCell(3)
    layer = kzoo.layers.RNN(cell, return_sequences=True)
    out = to_numpy(layer(x))
    out_offset = to_numpy(layer(x, constants={"offset": ops.ones((3, 1))}))
    kernel = to_numpy(cell.kernel).astype(np.float64)

    def step(x_t, states, w):
        h = np.tanh(x_t @ kernel) + 0.5 * states[0] + w["offset"]
        return h, [h]

    for offset, got in ((0.0, out), (1.0, out_offset)):
        expected, _ = rnn_ref.run(step, x, {"offset": offset}, [np.zeros((3, 3))])
        assert_close(got, expected)


def test_keras_cell_runs_inside_kzoo_rnn():
    x = np.random.default_rng(1).normal(size=(2, 5, 3)).astype("float32")
    reference = keras.layers.LSTM(4, return_sequences=True)
    expected = to_numpy(reference(x))
    layer = kzoo.layers.RNN(keras.layers.LSTMCell(4), return_sequences=True)
    layer.build(x.shape)
    layer.set_weights(reference.get_weights())
    assert_close(layer(x), expected)


def test_stacked_cells_equal_two_layers():
    x = np.random.default_rng(2).normal(size=(2, 5, 3)).astype("float32")
    first = kzoo.layers.LSTM(4, return_sequences=True)
    second = kzoo.layers.GRU(3, return_state=True)
    expected = [to_numpy(t) for t in second(first(x))]
    stacked = kzoo.layers.RNN([kzoo.layers.LSTMCell(4), kzoo.layers.GRUCell(3)], return_state=True)
    stacked.build(x.shape)
    stacked.set_weights(first.get_weights() + second.get_weights())
    # As keras.layers.StackedRNNCells: one state entry per cell, an LSTM's
    # as [h, c], a GRU's as the tensor itself.
    output, (h1, c1), h2 = stacked(x)
    assert_close(output, expected[0])
    assert_close(h2, expected[1])
    assert tuple(h1.shape) == (2, 4) and tuple(c1.shape) == (2, 4)


def test_stacked_cells_take_nested_or_flat_initial_state():
    x = np.random.default_rng(2).normal(size=(2, 5, 3)).astype("float32")
    rng = np.random.default_rng(3)
    h1, c1, h2, c2 = (rng.normal(size=(2, 4)).astype("float32") for _ in range(4))
    layer = kzoo.layers.RNN([kzoo.layers.LSTMCell(4), kzoo.layers.LSTMCell(4)], return_state=True)
    nested = layer(x, initial_state=[[h1, c1], [h2, c2]])
    flat = layer(x, initial_state=[h1, c1, h2, c2])
    zeros = layer(x)
    assert len(nested) == 3 and len(nested[1]) == 2 and len(nested[2]) == 2
    for a, b in zip(keras.tree.flatten(nested), keras.tree.flatten(flat)):
        assert_close(a, to_numpy(b))
    assert not np.allclose(to_numpy(nested[0]), to_numpy(zeros[0]))
    with pytest.raises(ValueError, match="4 state"):
        layer(x, initial_state=[[h1, c1], [h2]])


def test_stateful_carries_state_between_calls():
    x = np.random.default_rng(3).normal(size=(2, 6, 3)).astype("float32")
    whole = kzoo.layers.LSTM(4, return_sequences=True)
    expected = to_numpy(whole(x))
    inputs = keras.Input(batch_shape=(2, 3, 3))
    layer = kzoo.layers.LSTM(4, return_sequences=True, stateful=True)
    model = keras.Model(inputs, layer(inputs))
    layer.cell.set_weights(whole.get_weights())
    first = model.predict(x[:, :3], verbose=0)
    second = model.predict(x[:, 3:], verbose=0)
    assert_close(np.concatenate([first, second], axis=1), expected)
    layer.reset_states()
    assert_close(model.predict(x[:, :3], verbose=0), first)


def test_embedding_mask_equals_explicit_mask():
    ids = np.array([[3, 5, 2, 0, 0], [0, 0, 1, 4, 2]])
    embedding = keras.layers.Embedding(6, 3, mask_zero=True)
    lstm = kzoo.layers.LSTM(4, return_sequences=True)
    model_out = to_numpy(lstm(embedding(ids)))
    explicit = to_numpy(lstm(embedding(ids), mask=ids != 0))
    assert_close(model_out, explicit)
    # a padded row equals the same row without padding at its valid steps
    alone = to_numpy(lstm(embedding(ids[:1, :3])))
    assert_close(model_out[:1, :3], alone)


def test_dropout_masks_are_drawn_once_per_sequence():
    """Each step sees the same input and state masks (Gal & Ghahramani)."""
    cell = kzoo.layers.SimpleRNNCell(
        6,
        activation="linear",
        kernel_initializer="identity",
        recurrent_initializer="zeros",
        dropout=0.5,
        seed=1,
    )
    layer = kzoo.layers.RNN(cell, return_sequences=True)
    x = np.ones((8, 5, 6), "float32")
    train = to_numpy(layer(x, training=True))
    assert np.any(train == 0) and np.any(train == 2.0)  # inverted dropout, p = 0.5
    for t in range(1, 5):
        np.testing.assert_array_equal(train[:, t], train[:, 0])
    assert_close(layer(x, training=False), np.ones((8, 5, 6)))


def test_recurrent_dropout_only_in_training():
    layer = kzoo.layers.LSTM(4, recurrent_dropout=0.3, dropout=0.2, seed=0)
    x = np.random.default_rng(4).normal(size=(3, 5, 2)).astype("float32")
    inference = to_numpy(layer(x))
    assert_close(layer(x, training=False), inference)
    assert not np.allclose(to_numpy(layer(x, training=True)), inference)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda layer: layer(np.ones((2, 3), "float32")), "rank 3"),
        (lambda layer: layer(np.ones((2, 3, 4, 5), "float32")), "rank 3"),
        (lambda layer: layer(np.ones((2, 3, 4), "float32"), mask=np.ones((2, 4), bool)), "mask"),
        (lambda layer: layer(np.ones((2, 3, 4), "float32"), mask=np.ones((2, 3, 1), bool)), "mask"),
        (
            lambda layer: layer(np.ones((2, 3, 4), "float32"), initial_state=[np.ones((2, 4))]),
            "initial_state",
        ),
        (
            lambda layer: layer(
                np.ones((2, 3, 4), "float32"), initial_state=[np.ones((2, 7)), np.ones((2, 7))]
            ),
            "`initial_state` 0",
        ),
    ],
)
def test_bad_inputs_raise_clear_errors(call, message):
    layer = kzoo.layers.LSTM(4)
    with pytest.raises(ValueError, match=message):
        call(layer)


def test_feature_size_must_match_built_weights():
    layer = kzoo.layers.GRU(4)
    layer(np.ones((2, 3, 5), "float32"))
    with pytest.raises(ValueError, match="5 input features"):
        layer(np.ones((2, 3, 6), "float32"))


def test_cell_without_contract_is_refused():
    with pytest.raises(ValueError, match="state_size"):
        kzoo.layers.RNN(keras.layers.Dense(3))


@pytest.mark.parametrize(
    "make",
    [
        lambda: kzoo.layers.SimpleRNN(4, return_sequences=True),
        lambda: kzoo.layers.LSTM(4, dropout=0.1, recurrent_dropout=0.1),
        lambda: kzoo.layers.GRU(4, reset_after=False, go_backwards=True),
        lambda: kzoo.layers.LSTM(4, layer_norm=True),
        lambda: kzoo.layers.RNN([kzoo.layers.LSTMCell(4), kzoo.layers.GRUCell(3)]),
        lambda: kzoo.layers.Bidirectional(kzoo.layers.LSTM(3, return_sequences=True)),
        lambda: kzoo.layers.StackedRNN(4, num_layers=2, dropout=0.2, bidirectional=True),
    ],
)
def test_layer_harness(make, tmp_path):
    x = np.random.default_rng(5).normal(size=(8, 5, 3)).astype("float32")
    run_layer_test(make(), x, tmp_path)


def test_stacked_rnn_equals_layers_applied_in_turn():
    x = np.random.default_rng(6).normal(size=(2, 5, 3)).astype("float32")
    stack = kzoo.layers.StackedRNN(4, num_layers=2, cell="gru", dropout=0.5, return_sequences=True)
    out = to_numpy(stack(x))  # inference: no dropout between layers
    first, second = stack.recurrent_layers
    assert_close(out, to_numpy(second(first(x))))
    assert not np.allclose(to_numpy(stack(x, training=True)), out)
    with pytest.raises(ValueError, match="cell"):
        kzoo.layers.StackedRNN(4, cell="transformer")


def test_weights_by_name_matches_keras_names():
    layer = kzoo.layers.LSTM(3)
    layer.build((None, None, 2))
    assert list(weights_by_name(layer)) == ["kernel", "recurrent_kernel", "bias"]


class _RecordingCell(keras.layers.Layer):
    """A user cell without `output_size`: h = x W + h U; records its input dtypes."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units
        self.seen_dtypes = set()

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), name="rk")

    def call(self, inputs, states):
        self.seen_dtypes.add(keras.backend.standardize_dtype(inputs.dtype))
        h = ops.matmul(inputs, self.kernel) + ops.matmul(states[0], self.recurrent_kernel)
        return h, [h]


def test_mixed_precision_loops_in_the_cells_dtype():
    x = np.random.default_rng(6).normal(size=(2, 4, 3)).astype("float32")
    # The layer computes in float16, the user cell in float32: the loop runs
    # in float32 and the outputs come back in float16.
    cell = _RecordingCell(5)
    layer = kzoo.layers.RNN(cell, return_state=True, dtype="mixed_float16")
    output, state = layer(x)
    assert cell.seen_dtypes == {"float32"}
    assert keras.backend.standardize_dtype(output.dtype) == "float16"
    assert keras.backend.standardize_dtype(state.dtype) == "float16"
    reference = kzoo.layers.RNN(_RecordingCell(5))
    reference.build(x.shape)
    reference.set_weights(layer.get_weights())
    # float16 outputs: compared at half precision (not with assert_close,
    # whose largest-difference report is about float32 paths).
    np.testing.assert_allclose(
        to_numpy(ops.cast(output, "float32")), to_numpy(reference(x)), rtol=2e-3, atol=2e-3
    )
    # A kzoo layer with a mixed policy: float32 weights, float16 loop and outputs.
    lstm = kzoo.layers.LSTM(5, dtype="mixed_float16", return_sequences=True)
    out = lstm(x)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    assert {keras.backend.standardize_dtype(w.dtype) for w in lstm.weights} == {"float32"}
    plain = kzoo.layers.LSTM(5, return_sequences=True)
    plain.build(x.shape)
    plain.set_weights(lstm.get_weights())
    np.testing.assert_allclose(
        to_numpy(ops.cast(out, "float32")), to_numpy(plain(x)), rtol=1e-2, atol=1e-2
    )


class _KerasDropoutCell(keras.layers.Layer, DropoutRNNCell):
    """A cell on Keras's DropoutRNNCell protocol (masks from get_dropout_mask)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units
        self.dropout = 0.5
        self.recurrent_dropout = 0.5
        self.seed_generator = keras.random.SeedGenerator(7)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")

    def call(self, inputs, states, training=False):
        if training:
            inputs = inputs * self.get_dropout_mask(inputs)
        h = ops.matmul(inputs, self.kernel) + states[0]
        if training:
            h = h * self.get_recurrent_dropout_mask(states[0])
        return h, [h]


@pytest.mark.parametrize(
    "make_cell",
    [
        lambda: _KerasDropoutCell(8),
        lambda: [_KerasDropoutCell(5), _KerasDropoutCell(8)],  # kzoo's stack
        lambda: keras.layers.StackedRNNCells([_KerasDropoutCell(5), _KerasDropoutCell(8)]),
    ],
    ids=["cell", "list", "keras_stack"],
)
def test_dropout_rnn_cell_gets_fresh_masks_per_call(make_cell):
    x = np.ones((4, 3, 6), "float32")
    layer = kzoo.layers.RNN(make_cell(), return_sequences=True)
    first = to_numpy(layer(x, training=True))
    second = to_numpy(layer(x, training=True))
    assert not np.allclose(first, second), "the first call's masks were reused"
    assert np.allclose(to_numpy(layer(x)), to_numpy(layer(x)))
    # Compiled training steps (jax.jit, tf.function) must not leak the mask.
    model = keras.Sequential([keras.Input((3, 6)), layer, keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(1e-4), "mse")
    history = model.fit(0.1 * x, np.zeros((4, 3, 1)), epochs=2, batch_size=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_unroll_and_zero_output_for_mask():
    x = np.random.default_rng(8).normal(size=(2, 4, 3)).astype("float32")
    mask = np.array([[True, True, True, False], [True, True, False, False]])
    layer = kzoo.layers.GRU(3, return_sequences=True)
    layer.build(x.shape)
    zeroed = kzoo.layers.GRU(3, return_sequences=True, zero_output_for_mask=True, unroll=True)
    zeroed.build(x.shape)
    zeroed.set_weights(layer.get_weights())
    repeated, zeros = to_numpy(layer(x, mask=mask)), to_numpy(zeroed(x, mask=mask))
    assert_close(zeros[mask], repeated[mask])
    assert np.all(zeros[~mask] == 0) and not np.all(repeated[~mask] == 0)
    config = zeroed.get_config()
    assert config["unroll"] is True and config["zero_output_for_mask"] is True
    revived = kzoo.layers.GRU.from_config(config)
    revived.build(x.shape)
    revived.set_weights(layer.get_weights())
    assert_close(revived(x, mask=mask), zeros)
    inputs = keras.Input((None, 3))
    with pytest.raises(ValueError, match="unroll"):
        kzoo.layers.LSTM(3, unroll=True)(inputs)


def test_keras_arguments_use_cudnn_implementation_reset_state():
    x = np.random.default_rng(9).normal(size=(2, 4, 3)).astype("float32")
    for use_cudnn in ("auto", False):
        assert kzoo.layers.LSTM(3, use_cudnn=use_cudnn)(x).shape == (2, 3)
    with pytest.raises(ValueError, match="use_cudnn"):
        kzoo.layers.GRU(3, use_cudnn="yes")
    assert not hasattr(kzoo.layers.SimpleRNN(3), "use_cudnn")
    # No cuDNN kernel has recurrent dropout: True is refused, as in Keras.
    with pytest.raises(ValueError, match="use_cudnn=True"):
        kzoo.layers.LSTM(3, use_cudnn=True, recurrent_dropout=0.2)(x, training=True)
    config = kzoo.layers.GRU(3).get_config()
    config["implementation"] = 1
    assert kzoo.layers.GRU.from_config(config).cell.implementation == 1
    layer = kzoo.layers.SimpleRNN(3, stateful=True)
    layer(x)
    assert np.any(to_numpy(layer.states[0]) != 0)
    layer.reset_state()
    assert np.all(to_numpy(layer.states[0]) == 0)
