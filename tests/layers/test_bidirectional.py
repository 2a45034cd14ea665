"""kzoo.layers.Bidirectional: padding invariance, Keras parity, states."""

import keras
import numpy as np
import pytest

import kzoo
from tests.harness import assert_close, to_numpy

LAYERS = {"lstm": kzoo.layers.LSTM, "gru": kzoo.layers.GRU, "simple_rnn": kzoo.layers.SimpleRNN}


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_padded_batch_equals_each_sequence_alone(kind):
    rng = np.random.default_rng(0)
    lengths = [5, 2, 4]
    x = rng.normal(size=(3, 5, 3)).astype("float32")
    mask = np.arange(5)[None, :] < np.array(lengths)[:, None]
    x[~mask] = 9.0  # padding values must not leak into any output
    bi = kzoo.layers.Bidirectional(LAYERS[kind](4, return_sequences=True, return_state=True))
    padded, *states = bi(x, mask=mask)
    padded = to_numpy(padded)
    for row, n in enumerate(lengths):
        alone, *alone_states = bi(x[row : row + 1, :n])
        assert_close(padded[row : row + 1, :n], to_numpy(alone))
        for state, alone_state in zip(states, alone_states):
            assert_close(to_numpy(state)[row : row + 1], to_numpy(alone_state))


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
def test_equals_keras_bidirectional(merge_mode):
    x = np.random.default_rng(1).normal(size=(3, 6, 2)).astype("float32")
    mask = np.ones((3, 6), bool)
    mask[0, 4:] = False
    ours = kzoo.layers.Bidirectional(
        kzoo.layers.LSTM(4, return_sequences=True), merge_mode=merge_mode
    )
    theirs = keras.layers.Bidirectional(
        keras.layers.LSTM(4, return_sequences=True), merge_mode=merge_mode
    )
    ours.build(x.shape)
    theirs.build(x.shape)
    rng = np.random.default_rng(2)
    ours.set_weights(
        [rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in ours.get_weights()]
    )
    theirs.set_weights(ours.get_weights())
    assert_close(ours(x, mask=mask), to_numpy(theirs(x, mask=mask)))


def test_return_state_gives_forward_then_backward_states():
    x = np.random.default_rng(3).normal(size=(2, 5, 3)).astype("float32")
    bi = kzoo.layers.Bidirectional(kzoo.layers.LSTM(4, return_state=True))
    out, h_f, c_f, h_b, c_b = bi(x)
    assert tuple(out.shape) == (2, 8)
    assert_close(to_numpy(out)[:, :4], to_numpy(h_f))
    assert_close(to_numpy(out)[:, 4:], to_numpy(h_b))
    _, h_b_alone, _ = bi.backward_layer(x)
    assert_close(h_b, to_numpy(h_b_alone))


def test_merge_mode_none_returns_both_directions():
    bi = kzoo.layers.Bidirectional(kzoo.layers.GRU(4, return_sequences=True), merge_mode=None)
    forward, backward = bi(np.ones((2, 5, 3), "float32"))
    assert tuple(forward.shape) == tuple(backward.shape) == (2, 5, 4)


def test_functional_model_with_mask_and_symbolic_shapes():
    ids = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(20, 4, mask_zero=True)(ids)
    x = kzoo.layers.Bidirectional(kzoo.layers.GRU(3, return_sequences=True))(x)
    x = kzoo.layers.Bidirectional(kzoo.layers.LSTM(3))(x)
    model = keras.Model(ids, keras.layers.Dense(1)(x))
    assert model.output_shape == (None, 1)
    a = model.predict(np.array([[4, 5, 6, 0, 0]]), verbose=0)
    b = model.predict(np.array([[4, 5, 6]]), verbose=0)
    assert_close(a, b)


def test_bad_arguments():
    with pytest.raises(ValueError, match="merge_mode"):
        kzoo.layers.Bidirectional(kzoo.layers.LSTM(3), merge_mode="max")
    with pytest.raises(ValueError, match="recurrent layer"):
        kzoo.layers.Bidirectional(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="go_backwards"):
        kzoo.layers.Bidirectional(kzoo.layers.LSTM(3), backward_layer=kzoo.layers.LSTM(3))


def test_wrapping_one_layer_twice_shares_no_weights():
    x = np.random.default_rng(4).normal(size=(2, 5, 3)).astype("float32")
    inner = kzoo.layers.GRU(4)
    first, second = kzoo.layers.Bidirectional(inner), kzoo.layers.Bidirectional(inner)
    first(x), second(x)
    ids = {id(w) for w in first.weights}
    assert not ids & {id(w) for w in second.weights}
    assert not ids & {id(w) for w in inner.weights}
    before = to_numpy(second(x))
    first.set_weights([np.zeros_like(w) for w in first.get_weights()])
    assert_close(second(x), before)
    assert first.forward_layer.name.startswith("forward_")
    assert first.backward_layer.name.startswith("backward_")


def test_built_layer_hands_its_weights_to_the_forward_copy():
    x = np.random.default_rng(5).normal(size=(2, 5, 3)).astype("float32")
    inner = kzoo.layers.LSTM(4, return_sequences=True)
    expected = to_numpy(inner(x))
    bi = kzoo.layers.Bidirectional(inner, merge_mode=None)
    forward, _ = bi(x)
    assert_close(forward, expected)


def test_weights_argument_and_states():
    x = np.random.default_rng(6).normal(size=(2, 5, 3)).astype("float32")
    source = kzoo.layers.Bidirectional(kzoo.layers.LSTM(3))
    expected = to_numpy(source(x))
    copy = kzoo.layers.Bidirectional(kzoo.layers.LSTM(3), weights=source.get_weights())
    assert_close(copy(x), expected)
    with pytest.raises(ValueError, match="even count"):
        kzoo.layers.Bidirectional(kzoo.layers.LSTM(3), weights=source.get_weights()[:5])
    stateful = kzoo.layers.Bidirectional(kzoo.layers.LSTM(3, stateful=True))
    first = to_numpy(stateful(x))
    assert len(stateful.states) == 4
    assert not np.allclose(to_numpy(stateful(x)), first)  # carried over
    stateful.reset_state()
    assert all(np.all(to_numpy(s) == 0) for s in stateful.states)
    assert_close(stateful(x), first)
    assert kzoo.layers.Bidirectional(kzoo.layers.LSTM(3)).states is None
    with pytest.raises(AttributeError, match="stateful"):
        kzoo.layers.Bidirectional(kzoo.layers.LSTM(3)).reset_states()


def test_own_dtype_policy():
    x = np.random.default_rng(7).normal(size=(2, 5, 3)).astype("float32")
    bi = kzoo.layers.Bidirectional(
        kzoo.layers.SimpleRNN(4, return_state=True), dtype="mixed_float16"
    )
    for tensor in bi(x):
        assert keras.backend.standardize_dtype(tensor.dtype) == "float16"
