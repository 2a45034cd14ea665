"""`kzoo.layers.ReverseSequence`: each row's valid steps reversed, padding in place."""

import keras
import numpy as np
import pytest

import kzoo
from kzoo.utils.atomic_write import save_model
from tests.harness import to_numpy


def _reference(x, valid):
    """Loop reference: the valid entries of each row, written back in reverse order."""
    out = np.array(x, copy=True)
    for b in range(x.shape[0]):
        positions = np.flatnonzero(valid[b])
        out[b, positions] = x[b, positions[::-1]]
    return out


def _ids():
    return np.array(
        [
            [4, 5, 6, 0, 0],  # padded at the end
            [0, 0, 7, 8, 9],  # padded at the front
            [3, 0, 2, 0, 1],  # holes
            [2, 3, 4, 5, 6],  # no padding
            [0, 0, 0, 0, 0],  # all padding
        ],
        dtype="int32",
    )


def test_token_ids_reverse_without_moving_padding():
    ids = _ids()
    out = to_numpy(kzoo.layers.ReverseSequence()(ids))
    np.testing.assert_array_equal(out, _reference(ids, ids != 0))
    np.testing.assert_array_equal(out[0], [6, 5, 4, 0, 0])
    np.testing.assert_array_equal(out[1], [0, 0, 9, 8, 7])


def test_custom_padding_id():
    ids = np.array([[4, 5, 6, -1]], dtype="int32")
    out = to_numpy(kzoo.layers.ReverseSequence(padding_id=-1)(ids))
    np.testing.assert_array_equal(out, [[6, 5, 4, -1]])


def test_features_follow_the_mask():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 5, 3)).astype("float32")
    valid = _ids() != 0
    out = to_numpy(kzoo.layers.ReverseSequence()(x, mask=valid))
    np.testing.assert_array_equal(out, _reference(x, valid))


def test_without_mask_every_feature_step_is_valid():
    x = np.arange(12, dtype="float32").reshape(1, 4, 3)
    out = to_numpy(kzoo.layers.ReverseSequence()(x))
    np.testing.assert_array_equal(out, x[:, ::-1])


def test_twice_is_the_identity():
    ids = _ids()
    layer = kzoo.layers.ReverseSequence()
    np.testing.assert_array_equal(to_numpy(layer(layer(ids))), ids)


def test_in_a_model_the_mask_passes_through():
    ids = keras.Input(shape=(None,), dtype="int32")
    embedded = keras.layers.Embedding(10, 2, mask_zero=True)(ids)
    reversed_ = kzoo.layers.ReverseSequence()(embedded)
    pooled = kzoo.layers.GlobalMaskedAveragePooling1D()(reversed_)
    last = kzoo.layers.LSTM(3)(reversed_)
    model = keras.Model(ids, [pooled, last])
    # The mean over valid steps does not depend on their order; padding never counts.
    mean, _ = model.predict(np.array([[4, 5, 6, 0]]), verbose=0)
    expected = to_numpy(model.layers[1](np.array([[4, 5, 6]]))).mean(axis=1)
    np.testing.assert_allclose(mean, expected, rtol=1e-6)
    # The LSTM reads the reversed review: the same as reading [6, 5, 4] unpadded.
    _, padded = model.predict(np.array([[4, 5, 6, 0, 0]]), verbose=0)
    _, unpadded = model.predict(np.array([[6, 5, 4]])[:, ::-1], verbose=0)
    np.testing.assert_allclose(padded, unpadded, rtol=1e-5, atol=1e-6)


def test_rejects_inputs_without_a_time_axis():
    with pytest.raises(ValueError, match="batch, time"):
        kzoo.layers.ReverseSequence()(np.array([1, 2, 3], dtype="int32"))


def test_rejects_a_non_int_padding_id():
    with pytest.raises(ValueError, match="padding_id"):
        kzoo.layers.ReverseSequence(padding_id=0.5)


def test_serialization_round_trip(tmp_path):
    ids = keras.Input(shape=(None,), dtype="int32")
    model = keras.Model(ids, kzoo.layers.ReverseSequence(padding_id=0, name="rev")(ids))
    path = str(tmp_path / "m.keras")
    save_model(model, path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(to_numpy(loaded(_ids())), _reference(_ids(), _ids() != 0))
    assert loaded.get_layer("rev").get_config()["padding_id"] == 0
