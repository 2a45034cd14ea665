"""AR/TAR penalties (`kzoo.layers.ActivationRegularization`)."""

import keras
import numpy as np
import pytest

import kzoo
from tests.harness import assert_close, to_numpy

BATCH, TIME, UNITS = 3, 5, 4


def _reference(h, mask, alpha, beta):
    """Float64 AR and TAR: means over valid steps / valid pairs and units."""
    h = np.asarray(h, np.float64)
    ar_terms, tar_terms = [], []
    for b in range(h.shape[0]):
        for t in range(h.shape[1]):
            if mask[b, t]:
                ar_terms.extend(h[b, t] ** 2)
            if t > 0 and mask[b, t] and mask[b, t - 1]:
                tar_terms.extend((h[b, t] - h[b, t - 1]) ** 2)
    return alpha * np.mean(ar_terms), beta * np.mean(tar_terms)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(BATCH, TIME, UNITS)).astype("float32")
    mask = np.ones((BATCH, TIME), bool)
    mask[0, 3:] = False  # trailing padding
    mask[1, 0] = False  # leading padding
    mask[2, 2] = False  # a hole: pairs (1, 2) and (2, 3) do not count
    return h, mask


@pytest.mark.parametrize("masked", [False, True])
def test_penalties_equal_their_formulas(masked):
    h, mask = _data()
    if not masked:
        mask = np.ones_like(mask)
    layer = kzoo.layers.ActivationRegularization(alpha=2.0, beta=0.5)
    out = layer(h, mask=mask if masked else None, training=True)
    assert_close(out, h)
    ar, tar = _reference(h, mask, 2.0, 0.5)
    assert len(layer.losses) == 2
    assert_close(layer.losses[0], ar)
    assert_close(layer.losses[1], tar)


def test_masked_steps_do_not_count():
    h, mask = _data(1)
    changed = h.copy()
    changed[~mask] = 100.0
    layer = kzoo.layers.ActivationRegularization(alpha=1.0, beta=1.0)
    layer(h, mask=mask, training=True)
    first = [to_numpy(v) for v in layer.losses]
    layer(changed, mask=mask, training=True)
    second = [to_numpy(v) for v in layer.losses]
    for a, b in zip(first, second):
        assert_close(a, b)


def test_no_penalty_in_inference_or_with_zero_weights():
    h, mask = _data(2)
    layer = kzoo.layers.ActivationRegularization()
    layer(h, mask=mask, training=False)
    assert layer.losses == []
    only_tar = kzoo.layers.ActivationRegularization(alpha=0.0, beta=1.0)
    only_tar(h, mask=mask, training=True)
    assert len(only_tar.losses) == 1
    assert_close(only_tar.losses[0], _reference(h, mask, 0.0, 1.0)[1])


def test_trains_in_a_masked_model_and_round_trips_its_config():
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(20, 8, mask_zero=True)(ids)
    x = kzoo.layers.LSTM(UNITS, return_sequences=True)(x)
    regularizer = kzoo.layers.ActivationRegularization(alpha=2.0, beta=1.0)
    x = regularizer(x)
    y = keras.layers.Dense(1)(kzoo.layers.GlobalMaskedAveragePooling1D()(x))
    model = keras.Model(ids, y)
    model.compile("sgd", "mse")
    data = np.array([[3, 4, 5, 0], [6, 7, 0, 0]], "int32")
    targets = np.ones((2, 1), "float32")
    mse_only = float(model.evaluate(data, targets, verbose=0))
    loss = model.train_on_batch(data, targets)
    # The training loss includes the penalties (evaluate, in inference, does not).
    loss = float(loss[0] if isinstance(loss, (list, tuple)) else loss)
    assert np.isfinite(loss) and loss > mse_only
    clone = kzoo.layers.ActivationRegularization.from_config(regularizer.get_config())
    assert (clone.alpha, clone.beta) == (2.0, 1.0)


@pytest.mark.parametrize("kwargs", [{"alpha": -1.0}, {"beta": "1"}, {"alpha": float("nan")}])
def test_invalid_weights_are_refused(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        kzoo.layers.ActivationRegularization(**kwargs)
