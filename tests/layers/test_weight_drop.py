"""Weight drop (`recurrent_weight_dropout`, DropConnect on the recurrent kernel)."""

import keras
import numpy as np
import pytest

import kzoo
from kzoo import backend
from tests.harness import assert_close, run_layer_test, to_numpy, weights_by_name
from tests.references import rnn_ref

BATCH, TIME, FEATURES, UNITS = 4, 6, 3, 5
RATE = 0.5
LAYERS = {
    "lstm": (kzoo.layers.LSTM, "LSTMCell", {}),
    "gru": (kzoo.layers.GRU, "GRUCell", {}),
    "gru_reset_before": (kzoo.layers.GRU, "GRUCell", {"reset_after": False}),
    "simple_rnn": (kzoo.layers.SimpleRNN, "SimpleRNNCell", {}),
}


def _inputs(seed=0):
    return np.random.default_rng(seed).normal(size=(BATCH, TIME, FEATURES)).astype("float32")


def _layer(case, seed=7, **kwargs):
    layer_class, _, case_kwargs = LAYERS[case]
    layer = layer_class(
        UNITS,
        return_sequences=True,
        recurrent_weight_dropout=RATE,
        seed=seed,
        **case_kwargs,
        **kwargs,
    )
    layer.build((BATCH, TIME, FEATURES))
    return layer


def _seed_state(cell):
    return np.array(to_numpy(cell.seed_generator.state.value))


def _mask_drawn_from(cell, seed_state, x):
    """The weight mask a training call draws from `seed_state`."""
    cell.seed_generator.state.assign(seed_state)
    states = cell.get_initial_state(BATCH)
    cell.prepare_dropout_masks(keras.ops.convert_to_tensor(x[:, 0]), states[0], training=True)
    mask = np.asarray(to_numpy(cell._recurrent_weight_mask), np.float64)
    cell.reset_dropout_masks()
    return mask


def test_dropped_kernel_equals_float64_reference():
    layer = _layer("lstm")
    cell = layer.cell
    x = _inputs()
    cell.prepare_dropout_masks(keras.ops.convert_to_tensor(x[:, 0]), None, training=True)
    try:
        mask = np.asarray(to_numpy(cell._recurrent_weight_mask), np.float64)
        dropped = cell.recurrent_kernel_for_call(training=True)
        spec = cell.fused_spec(training=True)
    finally:
        cell.reset_dropout_masks()
    kernel = np.asarray(to_numpy(cell.recurrent_kernel), np.float64)
    # One Bernoulli mask of the kernel's shape, kept entries scaled by 1/(1-p).
    assert mask.shape == kernel.shape == (UNITS, 4 * UNITS)
    assert set(np.unique(mask)) <= {0.0, 1.0 / (1.0 - RATE)}
    assert 0.2 < np.mean(mask == 0) < 0.8
    assert_close(dropped, kernel * mask)
    # The fused kernels receive the dropped kernel through the spec.
    assert_close(spec.recurrent_kernel, kernel * mask)
    assert_close(spec.kernel, to_numpy(cell.kernel))
    # Without training, or after the call, the kernel is the plain one.
    assert_close(cell.recurrent_kernel_for_call(training=False), kernel)
    assert_close(cell.fused_spec(training=False).recurrent_kernel, kernel)
    assert cell._recurrent_weight_mask is None


@pytest.mark.parametrize("case", sorted(LAYERS))
def test_training_call_equals_float64_reference_with_the_drawn_mask(case):
    layer = _layer(case)
    cell = layer.cell
    x = _inputs(1)
    seed_state = _seed_state(cell)
    outputs = layer(x, training=True)
    mask = _mask_drawn_from(cell, seed_state, x)
    weights = weights_by_name(cell)
    weights["recurrent_kernel"] = weights["recurrent_kernel"] * mask
    zeros = [np.zeros((BATCH, n)) for n in keras.tree.flatten(cell.state_size)]
    expected, _ = rnn_ref.run(rnn_ref.STEPS[LAYERS[case][1]], x, weights, zeros)
    assert_close(outputs, expected)


def test_inference_uses_the_whole_kernel():
    layer = _layer("lstm")
    plain = kzoo.layers.LSTM(UNITS, return_sequences=True)
    plain.build((BATCH, TIME, FEATURES))
    plain.set_weights(layer.get_weights())
    x = _inputs(2)
    assert_close(layer(x, training=False), to_numpy(plain(x)))
    assert_close(layer(x), to_numpy(layer(x)))


def test_each_training_call_draws_a_new_mask():
    layer = _layer("gru")
    cell = layer.cell
    x = _inputs(3)
    first_state = _seed_state(cell)
    first = to_numpy(layer(x, training=True))
    second_state = _seed_state(cell)
    second = to_numpy(layer(x, training=True))
    assert np.max(np.abs(first - second)) > 1e-3
    first_mask = _mask_drawn_from(cell, first_state, x)
    second_mask = _mask_drawn_from(cell, second_state, x)
    assert np.any(first_mask != second_mask)
    # One mask per call, shared by the batch: equal sequences give equal rows.
    same = np.repeat(x[:1], BATCH, axis=0)
    rows = to_numpy(layer(same, training=True))
    assert_close(rows, np.repeat(rows[:1], BATCH, axis=0))


def _one_sgd_step(case, x, y):
    inputs = keras.Input((TIME, FEATURES))
    recurrent = _layer(case, seed=11)
    outputs = keras.layers.Dense(1, name="head")(recurrent(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    model.get_layer("head").set_weights([np.ones((UNITS, 1), "float32"), np.zeros(1, "float32")])
    for w in recurrent.cell.weights:
        w.assign(np.random.default_rng(5).uniform(-0.6, 0.6, w.shape).astype("float32"))
    before = [to_numpy(w) for w in recurrent.cell.weights]
    seed_state = _seed_state(recurrent.cell)
    model.train_on_batch(x, y)
    after = [to_numpy(w) for w in recurrent.cell.weights]
    mask = _mask_drawn_from(recurrent.cell, seed_state, x)
    return before, after, mask


@pytest.mark.parametrize("case", ["lstm", "gru"])
def test_fused_and_reference_paths_agree_and_gradients_flow(case):
    """One SGD step (lr 1) from equal weights and seeds: the same update on
    the fused kernels and the reference loop; dropped entries get no
    gradient, kept ones do."""
    x = _inputs(4)
    y = np.random.default_rng(6).normal(size=(BATCH, TIME, 1)).astype("float32")
    before, fused, mask = _one_sgd_step(case, x, y)
    with backend.reference_only():
        _, reference, reference_mask = _one_sgd_step(case, x, y)
    np.testing.assert_array_equal(mask, reference_mask)
    for a, b in zip(fused, reference):
        assert_close(a, b)
    names = [w.name for w in _layer(case).cell.weights]
    change = fused[names.index("recurrent_kernel")] - before[names.index("recurrent_kernel")]
    assert np.all(np.isfinite(change))
    assert np.all(change[mask == 0] == 0.0)
    assert np.mean(np.abs(change[mask > 0]) > 0) > 0.9


def test_stacked_cells_and_bidirectional_drop_weights_in_training():
    x = _inputs(7)
    layer = kzoo.layers.Bidirectional(
        kzoo.layers.LSTM(UNITS, return_sequences=True, recurrent_weight_dropout=RATE, seed=3)
    )
    assert np.max(np.abs(to_numpy(layer(x, training=True)) - to_numpy(layer(x)))) > 1e-4
    cells = [kzoo.layers.GRUCell(UNITS, recurrent_weight_dropout=RATE, seed=4) for _ in range(2)]
    stacked = kzoo.layers.RNN(cells, return_sequences=True)
    assert np.max(np.abs(to_numpy(stacked(x, training=True)) - to_numpy(stacked(x)))) > 1e-4


def test_config_and_saving(tmp_path):
    layer = kzoo.layers.LSTM(UNITS, return_sequences=True, recurrent_weight_dropout=0.3, seed=1)
    assert layer.get_config()["recurrent_weight_dropout"] == 0.3
    assert kzoo.layers.LSTM.from_config(layer.get_config()).cell.recurrent_weight_dropout == 0.3
    cell = kzoo.layers.SimpleRNNCell(UNITS, recurrent_weight_dropout=0.2)
    assert kzoo.layers.SimpleRNNCell.from_config(cell.get_config()).recurrent_weight_dropout == 0.2
    run_layer_test(layer, _inputs(8), tmp_path)


@pytest.mark.parametrize("rate", [1.0, -0.1, "0.5"])
def test_invalid_rate_is_refused(rate):
    with pytest.raises(ValueError, match="recurrent_weight_dropout"):
        kzoo.layers.GRU(UNITS, recurrent_weight_dropout=rate)
