"""The fused kernels of kzoo.backend give the reference loop's numbers.

Every case runs a layer twice, once as usual (fused kernel where the backend
has one) and once inside `kzoo.backend.reference_only()`, and compares the
outputs, final states and the gradients with respect to the weights, the
inputs and the initial states (tolerance 1e-5, float32).
"""

import dataclasses

import keras
import numpy as np
import pytest

import kzoo
from kzoo import backend

BATCH, STEPS, FEATURES, UNITS = 4, 7, 3, 5
TOL = 1e-5

CELLS = {
    "lstm": (kzoo.layers.LSTM, {}),
    "lstm_no_bias": (kzoo.layers.LSTM, {"use_bias": False}),
    "gru": (kzoo.layers.GRU, {"reset_after": True}),
    "gru_reset_before": (kzoo.layers.GRU, {"reset_after": False}),
    "simple_tanh": (kzoo.layers.SimpleRNN, {}),
    "simple_relu": (kzoo.layers.SimpleRNN, {"activation": "relu"}),
}

MASKS = {
    "none": None,
    # Mixed lengths including a full and an empty row.
    "right": np.array([[1] * 7, [1] * 4 + [0] * 3, [1] + [0] * 6, [0] * 7], dtype=bool),
    "left": np.array([[1] * 7, [0] * 3 + [1] * 4, [0] * 6 + [1], [0] * 7], dtype=bool),
    "scattered": np.array(
        [[1, 0, 1, 1, 0, 1, 0], [0, 1, 1, 0, 0, 1, 1], [1] * 7, [0, 0, 1, 0, 0, 0, 0]],
        dtype=bool,
    ),
}


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
    return rng, x


def _loss(coefficients):
    """A loss that weights every output and state differently."""

    def loss_fn(outputs):
        total = 0.0
        for out, coef in zip(outputs, coefficients):
            total = total + keras.ops.sum(out * keras.ops.convert_to_tensor(coef))
        return total

    return loss_fn


def _assert_close(fast, reference, what):
    assert len(fast) == len(reference)
    for i, (a, b) in enumerate(zip(fast, reference)):
        np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL, err_msg=f"{what} {i}")


def _compare(value_and_grads, layer, x, coefficients, **kwargs):
    fast = value_and_grads(layer, x, _loss(coefficients), **kwargs)
    with backend.reference_only():
        reference = value_and_grads(layer, x, _loss(coefficients), **kwargs)
    _assert_close(fast[0], reference[0], "output")
    _assert_close(fast[1], reference[1], "gradient")
    return fast


def _num_states(cell):
    size = cell.state_size
    return len(size) if isinstance(size, (list, tuple)) else 1


def _coefficients(rng, shapes):
    return [rng.standard_normal(s).astype("float32") for s in shapes]


class _BothDirections(keras.layers.Layer):
    """The same recurrent layer reading forward and backward, in one call.

    Both directions then share one compiled function (compiling dominates
    the time of these small cases on XLA backends).
    """

    def __init__(self, layer_class, **kwargs):
        super().__init__()
        self.forward_layer = layer_class(UNITS, return_sequences=True, return_state=True, **kwargs)
        self.backward_layer = layer_class(
            UNITS, return_sequences=True, return_state=True, go_backwards=True, **kwargs
        )

    def build(self, shape):
        self.forward_layer.build(shape)
        self.backward_layer.build(shape)

    def call(self, x, initial_state=None, mask=None, training=False):
        kwargs = dict(initial_state=initial_state, mask=mask, training=training)
        return [*self.forward_layer(x, **kwargs), *self.backward_layer(x, **kwargs)]


def _both_directions_case(value_and_grads, cell_name, mask_name):
    rng, x = _data()
    layer_class, kwargs = CELLS[cell_name]
    layer = _BothDirections(layer_class, **kwargs)
    layer.build(x.shape)
    num_states = _num_states(layer.forward_layer.cell)
    states = [rng.standard_normal((BATCH, UNITS)).astype("float32") for _ in range(num_states)]
    shapes = 2 * ([(BATCH, STEPS, UNITS)] + [(BATCH, UNITS)] * num_states)
    _compare(
        value_and_grads,
        layer,
        x,
        _coefficients(rng, shapes),
        initial_state=states,
        mask=MASKS[mask_name],
        training=True,
    )


@pytest.mark.parametrize("mask_name", ["none", "right"])
@pytest.mark.parametrize("cell_name", ["lstm", "gru", "gru_reset_before", "simple_tanh"])
def test_fused_equals_reference(value_and_grads, cell_name, mask_name):
    """Outputs, states and gradients; forward and go_backwards; initial states."""
    _both_directions_case(value_and_grads, cell_name, mask_name)


@pytest.mark.parametrize("cell_name", ["lstm", "gru"])
def test_small_tensorflow_layers_train_with_tensorflow_gradients(
    value_and_grads, monkeypatch, cell_name
):
    """Below CUSTOM_GRADIENT_MIN_UNITS TensorFlow differentiates the fused loop."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the size threshold exists on the TensorFlow backend only")
    from kzoo.backend import tensorflow as tf_backend

    monkeypatch.setattr(tf_backend, "CUSTOM_GRADIENT_MIN_UNITS", 10**9)
    monkeypatch.setattr(tf_backend, "_fused_core", lambda *a: pytest.fail("custom gradient used"))
    _both_directions_case(value_and_grads, cell_name, "right")


@pytest.mark.parametrize("mask_name", ["left", "scattered"])
def test_fused_lstm_equals_reference_with_other_masks(value_and_grads, mask_name):
    _both_directions_case(value_and_grads, "lstm", mask_name)


@pytest.mark.large
@pytest.mark.parametrize(
    "cell_name,mask_name",
    [
        (cell, mask)
        for cell in ("lstm_no_bias", "simple_relu", "gru", "gru_reset_before", "simple_tanh")
        for mask in ("none", "right", "left", "scattered")
        if not (cell in ("gru", "gru_reset_before", "simple_tanh") and mask in ("none", "right"))
    ],
)
def test_fused_equals_reference_more_cases(value_and_grads, cell_name, mask_name):
    _both_directions_case(value_and_grads, cell_name, mask_name)


@pytest.mark.parametrize("cell_name", ["lstm", pytest.param("gru", marks=pytest.mark.large)])
def test_fused_equals_reference_in_inference_mode(value_and_grads, cell_name):
    rng, x = _data(1)
    layer_class, kwargs = CELLS[cell_name]
    layer = layer_class(UNITS, return_sequences=True, **kwargs)
    layer.build(x.shape)
    _compare(
        value_and_grads,
        layer,
        x,
        _coefficients(rng, [(BATCH, STEPS, UNITS)]),
        mask=MASKS["right"],
        training=False,
    )


@pytest.mark.parametrize("mask_name", [None, "right"])
@pytest.mark.parametrize("cell_name", ["lstm", "gru"])
def test_plain_cells_take_the_fused_kernel(fused_calls, cell_name, mask_name):
    """On every backend a plain LSTM/GRU runs fused, also right-padded."""
    _, x = _data()
    layer_class, kwargs = CELLS[cell_name]
    layer_class(UNITS, **kwargs)(x, mask=None if mask_name is None else MASKS[mask_name])
    assert fused_calls["fused_rnn"] == 1


@pytest.mark.parametrize("mask_name", [None, "right"])
def test_bidirectional_lstm_takes_one_fused_call(fused_calls, mask_name):
    """Where a backend has a two-direction kernel (TensorFlow: two XLA loops
    run side by side; torch: one ATen call), Bidirectional uses it."""
    if getattr(backend._native, "fused_bidirectional_rnn", None) is None:
        pytest.skip(f"the {keras.backend.backend()} backend has no two-direction kernel")
    _, x = _data()
    layer = kzoo.layers.Bidirectional(kzoo.layers.LSTM(UNITS, return_sequences=True))
    layer(x, mask=None if mask_name is None else MASKS[mask_name])
    assert fused_calls == {"fused_rnn": 0, "fused_bidirectional_rnn": 1}


class _SubclassedCell(kzoo.layers.LSTMCell):
    pass


UNSUPPORTED = {
    "layer_norm": lambda: kzoo.layers.LSTM(UNITS, layer_norm=True),
    "recurrent_dropout": lambda: kzoo.layers.GRU(UNITS, recurrent_dropout=0.3, seed=1),
    "subclassed_cell": lambda: kzoo.layers.RNN(_SubclassedCell(UNITS)),
    "stacked_cells": lambda: kzoo.layers.RNN(
        [kzoo.layers.LSTMCell(UNITS), kzoo.layers.LSTMCell(UNITS)]
    ),
    "sigmoid_candidate": lambda: kzoo.layers.LSTM(UNITS, activation="sigmoid"),
}


@pytest.mark.parametrize("name", list(UNSUPPORTED))
def test_cells_without_a_kernel_describe_no_spec(name):
    """The layer decides: a cell no kernel computes hands the backend no spec."""
    _, x = _data(2)
    layer = UNSUPPORTED[name]()
    layer.build(x.shape)
    describe = getattr(layer.cell, "fused_spec", None)
    assert describe is None or describe(training=True) is None


def _lstm_spec(**changes):
    _, x = _data(2)
    layer = kzoo.layers.LSTM(UNITS)
    layer.build(x.shape)
    spec = layer.cell.fused_spec()
    return dataclasses.replace(spec, **changes), keras.ops.convert_to_tensor(x)


def test_native_kernel_declines_specs_it_cannot_run():
    native = getattr(backend._native, "fused_rnn", None)
    if native is None:
        pytest.skip(f"the {keras.backend.backend()} backend has no native fused_rnn")
    spec, x = _lstm_spec()
    states = [keras.ops.zeros((BATCH, UNITS))] * 2
    with pytest.raises(NotImplementedError):  # recurrent dropout
        native(dataclasses.replace(spec, state_mask=states[0]), x, states, training=True)
    half = dataclasses.replace(
        spec,
        kernel=keras.ops.cast(spec.kernel, "float16"),
        recurrent_kernel=keras.ops.cast(spec.recurrent_kernel, "float16"),
        bias=keras.ops.cast(spec.bias, "float16"),
    )
    half_states = [keras.ops.cast(s, "float16") for s in states]
    with pytest.raises(NotImplementedError):  # half precision runs the loop off cuDNN
        native(half, keras.ops.cast(x, "float16"), half_states)


@pytest.mark.parametrize(
    "name",
    [
        "subclassed_cell",
        pytest.param("recurrent_dropout", marks=pytest.mark.large),
        pytest.param("sigmoid_candidate", marks=pytest.mark.large),
    ],
)
def test_declined_cells_run_the_loop_and_match_reference(value_and_grads, fused_calls, name):
    _, x = _data(2)
    layer = UNSUPPORTED[name]()
    layer.build(x.shape)
    seeds = _seed_states(layer)

    def run():
        _set_seed_states(layer, seeds)
        return value_and_grads(layer, x, _loss([np.ones((BATCH, UNITS), "float32")]), training=True)

    fast = run()
    assert fused_calls["fused_rnn"] == 0
    with backend.reference_only():
        reference = run()
    _assert_close(fast[0], reference[0], "output")
    _assert_close(fast[1], reference[1], "gradient")


def _seed_generators(layer):
    return [sub.seed_generator for sub in layer._flatten_layers() if hasattr(sub, "seed_generator")]


def _seed_states(layer):
    return [np.array(keras.ops.convert_to_numpy(g.state.value)) for g in _seed_generators(layer)]


def _set_seed_states(layer, values):
    for generator, value in zip(_seed_generators(layer), values):
        generator.state.assign(value)


@pytest.mark.parametrize("cell_name", ["lstm", pytest.param("gru", marks=pytest.mark.large)])
def test_input_dropout_mask_is_shared_with_the_reference(value_and_grads, cell_name):
    """Both paths draw the same per-sequence dropout mask from the same seed."""
    rng, x = _data(3)
    layer_class, kwargs = CELLS[cell_name]
    layer = layer_class(UNITS, return_sequences=True, dropout=0.4, seed=7, **kwargs)
    layer.build(x.shape)
    seed_state = _seed_states(layer)
    assert seed_state, "the cell should own a seed generator"
    coefficients = _coefficients(rng, [(BATCH, STEPS, UNITS)])

    _set_seed_states(layer, seed_state)
    fast = value_and_grads(layer, x, _loss(coefficients), mask=MASKS["right"], training=True)
    _set_seed_states(layer, seed_state)
    with backend.reference_only():
        reference = value_and_grads(
            layer, x, _loss(coefficients), mask=MASKS["right"], training=True
        )
    _assert_close(fast[0], reference[0], "output")
    _assert_close(fast[1], reference[1], "gradient")
    # Dropout was really active: a dropped input feature has no gradient at
    # any step of its row.
    dx = fast[1][len(layer.trainable_weights)]
    assert np.any(np.all(dx == 0.0, axis=1))


BIDIRECTIONAL_CASES = [("lstm", "none", True), ("lstm", "right", True)]
MORE_BIDIRECTIONAL_CASES = [
    ("gru", "none", True),
    ("gru", "right", True),
    ("gru", "left", True),
    ("lstm", "left", True),
    ("lstm", "right", False),
    ("simple_tanh", "right", True),
]


def _ids(cases):
    return [f"{c}-{m}-{'sequences' if r else 'last'}" for c, m, r in cases]


@pytest.mark.parametrize(
    "cell_name,mask_name,return_sequences",
    BIDIRECTIONAL_CASES
    + [pytest.param(*c, marks=pytest.mark.large) for c in MORE_BIDIRECTIONAL_CASES],
    ids=_ids(BIDIRECTIONAL_CASES + MORE_BIDIRECTIONAL_CASES),
)
def test_bidirectional_equals_reference(value_and_grads, cell_name, mask_name, return_sequences):
    rng, x = _data(4)
    layer_class, kwargs = CELLS[cell_name]
    layer = kzoo.layers.Bidirectional(
        layer_class(UNITS, return_sequences=return_sequences, return_state=True, **kwargs)
    )
    layer.build(x.shape)
    num_states = _num_states(layer.forward_layer.cell)
    out_shape = (BATCH, STEPS, 2 * UNITS) if return_sequences else (BATCH, 2 * UNITS)
    shapes = [out_shape] + [(BATCH, UNITS)] * (2 * num_states)
    states = [rng.standard_normal((BATCH, UNITS)).astype("float32") for _ in range(2 * num_states)]
    _compare(
        value_and_grads,
        layer,
        x,
        _coefficients(rng, shapes),
        initial_state=states,
        mask=MASKS[mask_name],
        training=True,
    )


def test_stateful_layer_carries_fused_states():
    _, x = _data(5)
    layer = kzoo.layers.LSTM(UNITS, stateful=True, return_sequences=True)
    inputs = keras.Input(batch_shape=(BATCH, STEPS, FEATURES))
    model = keras.Model(inputs, layer(inputs))
    first = model.predict_on_batch(x)
    second = model.predict_on_batch(x)
    layer.reset_states()
    with backend.reference_only():
        ref_first = model(x)
        ref_second = model(x)
    np.testing.assert_allclose(first, keras.ops.convert_to_numpy(ref_first), atol=TOL)
    np.testing.assert_allclose(second, keras.ops.convert_to_numpy(ref_second), atol=TOL)
    assert np.max(np.abs(first - second)) > 1e-3  # the state really carried over


def _numpy_lstm(x, mask, kernel, recurrent_kernel, bias, go_backwards):
    """Float64 LSTM with Keras masking: masked steps keep state, repeat output."""
    batch, steps, _ = x.shape
    units = recurrent_kernel.shape[0]
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    out = np.zeros((batch, units))
    outputs = []
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    for t in order:
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        i, f, g, o = np.split(z, 4, axis=-1)
        sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
        c_new = sig(f) * c + sig(i) * np.tanh(g)
        h_new = sig(o) * np.tanh(c_new)
        keep = mask[:, t][:, None]
        h, c = np.where(keep, h_new, h), np.where(keep, c_new, c)
        out = np.where(keep, h_new, out)
        outputs.append(out)
    return np.stack(outputs, axis=1), h, c


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backward"])
def test_fused_lstm_matches_numpy_float64(go_backwards):
    _, x = _data(6)
    mask = MASKS["right"]
    layer = kzoo.layers.LSTM(
        UNITS, return_sequences=True, return_state=True, go_backwards=go_backwards
    )
    outputs, h, c = (keras.ops.convert_to_numpy(t) for t in layer(x, mask=mask))
    weights = [w.astype("float64") for w in layer.get_weights()]
    ref_outputs, ref_h, ref_c = _numpy_lstm(x.astype("float64"), mask, *weights, go_backwards)
    np.testing.assert_allclose(outputs, ref_outputs, atol=TOL)
    np.testing.assert_allclose(h, ref_h, atol=TOL)
    np.testing.assert_allclose(c, ref_c, atol=TOL)


def test_fit_with_fused_kernel_updates_weights_like_the_reference():
    """Under model.fit the fused kernel's gradients reach the Keras variables."""
    rng, x = _data(7)
    x = x * MASKS["right"][..., None]
    y = rng.standard_normal((BATCH, 1)).astype("float32")

    def build():
        inputs = keras.Input((STEPS, FEATURES))
        hidden = kzoo.layers.LSTM(UNITS)(keras.layers.Masking(0.0)(inputs))
        model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
        return model

    fast_model = build()
    initial = fast_model.get_weights()
    fast_model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0)
    with backend.reference_only():
        ref_model = build()
        ref_model.set_weights(initial)
        ref_model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0)
    moved = False
    for fast, ref, start in zip(fast_model.get_weights(), ref_model.get_weights(), initial):
        np.testing.assert_allclose(fast, ref, atol=TOL)
        moved = moved or np.max(np.abs(fast - start)) > 1e-3
    assert moved


def test_saved_and_loaded_layer_gives_the_same_outputs(tmp_path):
    _, x = _data(8)
    inputs = keras.Input((STEPS, FEATURES))
    outputs = kzoo.layers.Bidirectional(kzoo.layers.GRU(UNITS, return_sequences=True))(inputs)
    model = keras.Model(inputs, outputs)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(model.predict_on_batch(x), loaded.predict_on_batch(x), atol=TOL)


class _MaskedCall(keras.layers.Layer):
    """Calls a recurrent layer with a mask given as a second model input."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def call(self, x, mask):
        out = self.layer(x, mask=keras.ops.cast(mask, "bool"))
        return out if isinstance(out, (list, tuple)) else [out]


# Right-padded masks of mixed lengths, with and without an empty row: the
# torch backend packs these batches when no gradient is recorded.
PREDICT_MASKS = {
    "right": MASKS["right"],
    "right_no_empty_row": np.array([[1] * 7, [1] * 4 + [0] * 3, [1] + [0] * 6, [1] * 6 + [0]]),
}
PREDICT_LAYERS = {
    "lstm": lambda: kzoo.layers.LSTM(UNITS, return_sequences=True, return_state=True),
    "lstm_backward": lambda: kzoo.layers.LSTM(
        UNITS, return_sequences=True, return_state=True, go_backwards=True
    ),
    "gru_backward": lambda: kzoo.layers.GRU(
        UNITS, return_sequences=True, return_state=True, go_backwards=True
    ),
    "simple_tanh": lambda: kzoo.layers.SimpleRNN(UNITS, return_sequences=True, return_state=True),
    "bidirectional_lstm": lambda: kzoo.layers.Bidirectional(
        kzoo.layers.LSTM(UNITS, return_sequences=True, return_state=True)
    ),
    "bidirectional_gru_last": lambda: kzoo.layers.Bidirectional(
        kzoo.layers.GRU(UNITS, return_state=True)
    ),
}


@pytest.mark.parametrize("mask_name", list(PREDICT_MASKS))
@pytest.mark.parametrize("layer_name", list(PREDICT_LAYERS))
def test_predict_on_padded_batches_equals_reference(layer_name, mask_name):
    """Inference (`predict`, no gradient recorded) matches the reference loop."""
    _, x = _data(9)
    mask = PREDICT_MASKS[mask_name].astype("float32")
    inputs = keras.Input((STEPS, FEATURES)), keras.Input((STEPS,))
    model = keras.Model(inputs, _MaskedCall(PREDICT_LAYERS[layer_name]())(*inputs))
    fast = model.predict_on_batch([x, mask])
    with backend.reference_only():
        model.make_predict_function(force=True)
        reference = model.predict_on_batch([x, mask])
    _assert_close(_to_list(fast), _to_list(reference), "output")


def _to_list(outputs):
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [np.asarray(o, dtype="float64") for o in outputs]


@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
@pytest.mark.parametrize("mask_name", ["right", "right_no_empty_row"])
def test_bidirectional_lstm_from_zero_states_equals_reference(
    value_and_grads, mask_name, return_sequences
):
    """Padded batches without `initial_state` (zero states), with gradients."""
    rng, x = _data(10)
    layer = kzoo.layers.Bidirectional(
        kzoo.layers.LSTM(UNITS, return_sequences=return_sequences, return_state=True)
    )
    layer.build(x.shape)
    out_shape = (BATCH, STEPS, 2 * UNITS) if return_sequences else (BATCH, 2 * UNITS)
    shapes = [out_shape] + [(BATCH, UNITS)] * 4
    _compare(
        value_and_grads,
        layer,
        x,
        _coefficients(rng, shapes),
        mask=PREDICT_MASKS[mask_name].astype(bool),
        training=True,
    )
