"""keras.layers LSTM/GRU/SimpleRNN/Bidirectional <-> kzoo layers with equal outputs."""

import keras
import numpy as np
import pytest

import kzoo
import kzoo.convert
from tests.harness import assert_close
from tests.references import rnn_ref

BATCH, TIME, FEATURES, UNITS = 4, 6, 3, 5

CASES = {
    "lstm": (keras.layers.LSTM, {}, "LSTMCell"),
    "gru": (keras.layers.GRU, {}, "GRUCell"),
    "gru_reset_before": (keras.layers.GRU, {"reset_after": False}, "GRUCell"),
    "simple_rnn_relu": (keras.layers.SimpleRNN, {"activation": "relu"}, "SimpleRNNCell"),
}


def relu_rnn_step(x_t, states, w):
    h = np.maximum(x_t @ w["kernel"] + states[0] @ w["recurrent_kernel"] + w["bias"], 0.0)
    return h, [h]


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    mask = np.ones((BATCH, TIME), bool)
    mask[0, 4:] = False
    mask[1, :2] = False
    return x, mask


def randomize(layer, seed=0):
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        w.assign(rng.uniform(-0.6, 0.6, w.shape).astype("float32"))


def cell_weights(layer):
    return {w.name: keras.ops.convert_to_numpy(w) for w in layer.cell.weights}


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("case", sorted(CASES))
def test_from_keras_and_back(case, go_backwards):
    keras_class, kwargs, cell_name = CASES[case]
    original = keras_class(UNITS, return_sequences=True, go_backwards=go_backwards, **kwargs)
    original.build((None, None, FEATURES))
    randomize(original)
    x, mask = data()
    converted = kzoo.convert.from_keras(original)
    assert type(converted).__name__ == keras_class.__name__
    assert converted.go_backwards == go_backwards and converted.return_sequences
    zeros = [np.zeros((BATCH, UNITS))] * (2 if cell_name == "LSTMCell" else 1)
    step = relu_rnn_step if case == "simple_rnn_relu" else rnn_ref.STEPS[cell_name]
    expected, _ = rnn_ref.run(step, x, cell_weights(original), zeros, mask, go_backwards)
    assert_close(converted(x, mask=mask), expected)
    assert_close(original(x, mask=mask), expected)
    back = kzoo.convert.to_keras(converted)
    assert type(back) is keras_class
    for a, b in zip(original.weights, back.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    assert_close(back(x, mask=mask), expected)


@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
def test_bidirectional_both_ways(merge_mode):
    original = keras.layers.Bidirectional(keras.layers.GRU(UNITS), merge_mode=merge_mode)
    original.build((None, None, FEATURES))
    randomize(original, seed=1)
    x, mask = data(1)
    converted = kzoo.convert.from_keras(original)
    assert isinstance(converted, kzoo.layers.Bidirectional)
    assert converted.merge_mode == merge_mode
    assert_close(converted(x, mask=mask), keras.ops.convert_to_numpy(original(x, mask=mask)))
    back = kzoo.convert.to_keras(converted)
    assert isinstance(back, keras.layers.Bidirectional)
    assert_close(back(x, mask=mask), keras.ops.convert_to_numpy(original(x, mask=mask)))


def test_unbuilt_layers_convert_their_configuration():
    converted = kzoo.convert.from_keras(keras.layers.LSTM(7, unit_forget_bias=False, dropout=0.25))
    assert not converted.built
    assert converted.units == 7 and converted.cell.dropout == 0.25
    assert not converted.cell.unit_forget_bias


@pytest.mark.parametrize(
    "convert,layer,message",
    [
        ("from_keras", keras.layers.Dense(3), "from_keras converts"),
        ("from_keras", keras.layers.RNN(keras.layers.LSTMCell(3)), "from_keras converts"),
        ("from_keras", keras.layers.LSTM(3, zero_output_for_mask=True), "zero_output_for_mask"),
        ("to_keras", kzoo.layers.LSTM(3, layer_norm=True), "layer_norm"),
        ("to_keras", kzoo.layers.StackedRNN(3, num_layers=2), "StackedRNN"),
    ],
)
def test_refusals(convert, layer, message):
    with pytest.raises(ValueError, match=message):
        getattr(kzoo.convert, convert)(layer)
