"""kzoo cells against float64 NumPy references, Keras built-ins and torch.nn."""

import keras
import numpy as np
import pytest

import kzoo
from tests.harness import assert_close, to_numpy, weights_by_name
from tests.references import rnn_ref

BATCH, TIME, FEATURES, UNITS = 4, 6, 3, 5

CASES = {
    "simple_rnn": ("SimpleRNNCell", {}),
    "lstm": ("LSTMCell", {}),
    "lstm_layer_norm": ("LSTMCell", {"layer_norm": True}),
    "gru": ("GRUCell", {"reset_after": True}),
    "gru_reset_before": ("GRUCell", {"reset_after": False}),
    "gru_layer_norm": ("GRUCell", {"layer_norm": True}),
    "gru_reset_before_layer_norm": ("GRUCell", {"reset_after": False, "layer_norm": True}),
}


def mixed_mask():
    mask = np.ones((BATCH, TIME), bool)
    mask[0, 4:] = False  # trailing padding
    mask[1, :2] = False  # leading padding
    mask[2, [1, 3]] = False  # holes
    return mask


def random_weights(cell, seed=0):
    rng = np.random.default_rng(seed)
    for w in cell.weights:
        low = 0.5 if "gamma" in w.name else -0.6
        w.assign(
            rng.uniform(low, low + 1.2 if "gamma" in w.name else 0.6, w.shape).astype("float32")
        )
    return weights_by_name(cell)


def build_cell(case, seed=0):
    name, kwargs = CASES[case]
    cell = getattr(kzoo.layers, name)(UNITS, **kwargs)
    cell.build((None, FEATURES))
    return cell, random_weights(cell, seed)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("case", sorted(CASES))
def test_rnn_matches_float64_reference(case, masked, go_backwards):
    cell, weights = build_cell(case)
    x = np.random.default_rng(1).normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    mask = mixed_mask() if masked else None
    layer = kzoo.layers.RNN(
        cell, return_sequences=True, return_state=True, go_backwards=go_backwards
    )
    outputs, *states = layer(x, mask=mask)
    zeros = [np.zeros((BATCH, n)) for n in keras.tree.flatten(cell.state_size)]
    step = rnn_ref.STEPS[CASES[case][0]]
    expected, expected_states = rnn_ref.run(step, x, weights, zeros, mask, go_backwards)
    assert_close(outputs, expected)
    for state, ref in zip(states, expected_states):
        assert_close(state, ref, what="final state")


@pytest.mark.parametrize("case", ["simple_rnn", "lstm", "gru"])
def test_initial_state_is_used(case):
    cell, weights = build_cell(case, seed=3)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    init = [
        rng.normal(size=(BATCH, n)).astype("float32") for n in keras.tree.flatten(cell.state_size)
    ]
    layer = kzoo.layers.RNN(cell, return_sequences=True)
    expected, _ = rnn_ref.run(rnn_ref.STEPS[CASES[case][0]], x, weights, init)
    assert_close(layer(x, initial_state=init), expected)


@pytest.mark.parametrize("units,features", [(5, 3), (2, 7)])
def test_parameter_counts(units, features):
    def count(layer):
        layer.build((None, None, features))
        return layer.count_params()

    d, h = features, units
    assert count(kzoo.layers.SimpleRNN(h)) == d * h + h * h + h
    assert count(kzoo.layers.LSTM(h)) == 4 * (d * h + h * h + h)
    assert count(kzoo.layers.GRU(h, reset_after=False)) == 3 * (d * h + h * h + h)
    assert count(kzoo.layers.GRU(h)) == 3 * (d * h + h * h + h) + 3 * h


def test_lstm_forget_bias_starts_at_one():
    cell = kzoo.layers.LSTMCell(4)
    cell.build((None, 2))
    bias = to_numpy(cell.bias)
    np.testing.assert_array_equal(bias, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    cell = kzoo.layers.LSTMCell(4, unit_forget_bias=False)
    cell.build((None, 2))
    np.testing.assert_array_equal(to_numpy(cell.bias), np.zeros(16))


def test_default_initializers():
    cell = kzoo.layers.GRUCell(6)
    cell.build((None, 6))
    rec = to_numpy(cell.recurrent_kernel)
    np.testing.assert_allclose(rec @ rec.T, np.eye(6), atol=1e-5)  # orthonormal rows
    assert cell.get_config()["kernel_initializer"]["class_name"] == "GlorotUniform"


KERAS_LAYERS = {
    "simple_rnn": (kzoo.layers.SimpleRNN, keras.layers.SimpleRNN, {}),
    "lstm": (kzoo.layers.LSTM, keras.layers.LSTM, {}),
    "gru": (kzoo.layers.GRU, keras.layers.GRU, {}),
    "gru_reset_before": (kzoo.layers.GRU, keras.layers.GRU, {"reset_after": False}),
}


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("case", sorted(KERAS_LAYERS))
def test_weights_move_one_to_one_to_keras(case, go_backwards):
    ours, theirs, kwargs = KERAS_LAYERS[case]
    x = np.random.default_rng(4).normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    mask = mixed_mask()
    a = ours(UNITS, return_sequences=True, go_backwards=go_backwards, **kwargs)
    b = theirs(UNITS, return_sequences=True, go_backwards=go_backwards, **kwargs)
    a.build(x.shape)
    b.build(x.shape)
    random_weights(a.cell, seed=5)
    assert [w.shape for w in a.get_weights()] == [w.shape for w in b.get_weights()]
    b.set_weights(a.get_weights())
    assert_close(a(x, mask=mask), to_numpy(b(x, mask=mask)))


def _torch_weights(case, weights):
    """kzoo/Keras weights -> torch.nn.{RNN,LSTM,GRU} parameters (float64)."""
    kernel, rec, bias = (
        weights[k].astype(np.float64) for k in ("kernel", "recurrent_kernel", "bias")
    )
    if case.startswith("gru"):
        # Keras orders GRU gates (z, r, h); torch orders them (r, z, n).
        def reorder(m):
            z, r, h = np.split(m, 3, axis=-1)
            return np.concatenate([r, z, h], axis=-1)

        return reorder(kernel).T, reorder(rec).T, reorder(bias[0]), reorder(bias[1])
    return kernel.T, rec.T, bias, np.zeros_like(bias)


@pytest.mark.parametrize("case", ["simple_rnn", "lstm", "gru"])
def test_matches_torch_nn_with_converted_weights(case):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    cell, weights = build_cell(case, seed=6)
    x = np.random.default_rng(7).normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    module_class = {"simple_rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[case]
    module = module_class(FEATURES, UNITS, batch_first=True).double()
    w_ih, w_hh, b_ih, b_hh = _torch_weights(case, weights)
    with torch.no_grad():
        for name, value in zip(
            ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), (w_ih, w_hh, b_ih, b_hh)
        ):
            getattr(module, name).copy_(torch.from_numpy(np.ascontiguousarray(value)))
        expected, _ = module(torch.from_numpy(x.astype(np.float64)))
    ours = kzoo.layers.RNN(cell, return_sequences=True)(x)
    assert_close(ours, expected.numpy())


def test_textbook_gru_update_is_the_same_cell_with_z_negated():
    """The docstring's claim: (1-z)h + z g with z negated equals Keras's form."""
    cell, weights = build_cell("gru", seed=8)
    x = np.random.default_rng(9).normal(size=(BATCH, TIME, FEATURES))
    flipped = {k: v.astype(np.float64).copy() for k, v in weights.items()}
    for key in ("kernel", "recurrent_kernel"):
        flipped[key][:, :UNITS] *= -1
    flipped["bias"][:, :UNITS] *= -1

    def textbook_step(x_t, states, w):
        (h,) = states
        x_z, x_r, x_h = np.split(x_t @ w["kernel"] + w["bias"][0], 3, axis=-1)
        h_z, h_r, h_h = np.split(h @ w["recurrent_kernel"] + w["bias"][1], 3, axis=-1)
        z, r = rnn_ref.sigmoid(x_z + h_z), rnn_ref.sigmoid(x_r + h_r)
        h = (1 - z) * h + z * np.tanh(x_h + r * h_h)
        return h, [h]

    zeros = [np.zeros((BATCH, UNITS))]
    expected, _ = rnn_ref.run(textbook_step, x, flipped, zeros)
    assert_close(kzoo.layers.RNN(cell, return_sequences=True)(x.astype("float32")), expected)


@pytest.mark.parametrize(
    "factory,message",
    [
        (lambda: kzoo.layers.LSTMCell(0), "units"),
        (lambda: kzoo.layers.GRUCell(-3), "units"),
        (lambda: kzoo.layers.SimpleRNNCell(2.5), "units"),
        (lambda: kzoo.layers.LSTMCell(4, dropout=1.0), "dropout"),
        (lambda: kzoo.layers.GRUCell(4, recurrent_dropout=-0.1), "recurrent_dropout"),
        (lambda: kzoo.layers.LSTM(4, dropout=1.5), "dropout"),
    ],
)
def test_bad_arguments_name_the_argument(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


@pytest.mark.parametrize("case", sorted(CASES))
def test_cell_config_round_trip(case):
    cell, _ = build_cell(case)
    clone = type(cell).from_config(cell.get_config())
    assert clone.get_config() == cell.get_config()


@pytest.mark.parametrize("name", ["SimpleRNNCell", "LSTMCell", "GRUCell"])
def test_state_and_output_sizes_as_keras(name):
    # An int for one state, a list for LSTM's two: stacks of these cells then
    # nest their states as keras.layers.StackedRNNCells does.
    ours, theirs = getattr(kzoo.layers, name)(3), getattr(keras.layers, name)(3)
    assert ours.state_size == theirs.state_size
    assert ours.output_size == theirs.output_size
