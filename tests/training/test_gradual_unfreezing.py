"""Gradual unfreezing (`kzoo.training.GradualUnfreezing`) and layer groups."""

import keras
import numpy as np
import pytest

import kzoo
from kzoo.training import DiscriminativeOptimizer, GradualUnfreezing, layer_groups
from tests.harness import to_numpy

GROUPS = [["bottom"], ["middle"], ["top"]]


def _model():
    inputs = keras.Input((3,))
    x = keras.layers.Dense(4, activation="tanh", name="bottom")(inputs)
    x = keras.layers.Dense(4, activation="tanh", name="middle")(x)
    return keras.Model(inputs, keras.layers.Dense(1, name="top")(x))


class _Recorder(keras.callbacks.Callback):
    """Per epoch: which groups were trainable, and which weights moved."""

    def __init__(self):
        super().__init__()
        self.trainable, self.moved = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.trainable.append([self.model.get_layer(g[0]).trainable for g in GROUPS])
        self.before = [to_numpy(self.model.get_layer(g[0]).kernel).copy() for g in GROUPS]

    def on_epoch_end(self, epoch, logs=None):
        after = [to_numpy(self.model.get_layer(g[0]).kernel) for g in GROUPS]
        self.moved.append([bool(np.any(a != b)) for a, b in zip(after, self.before)])


def _fit(epochs, initial_epoch=0, epochs_per_group=1, model=None):
    model = model or _model()
    model.compile(optimizer=DiscriminativeOptimizer(keras.optimizers.SGD(0.1), GROUPS), loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    recorder = _Recorder()
    unfreezing = GradualUnfreezing(GROUPS, epochs_per_group=epochs_per_group)
    model.fit(
        x,
        y,
        epochs=epochs,
        initial_epoch=initial_epoch,
        batch_size=8,
        verbose=0,
        callbacks=[unfreezing, recorder],
    )
    return recorder, unfreezing


def test_groups_unfreeze_one_per_epoch_from_the_top():
    recorder, unfreezing = _fit(4)
    expected = [[False, False, True], [False, True, True], [True, True, True], [True, True, True]]
    assert recorder.trainable == expected
    assert recorder.moved == expected
    assert unfreezing.unfrozen == 3


def test_resumed_run_and_epochs_per_group():
    recorder, _ = _fit(3, initial_epoch=1)
    assert recorder.trainable == [[False, True, True], [True, True, True]]
    recorder, _ = _fit(3, epochs_per_group=2)
    assert recorder.trainable == [[False, False, True]] * 2 + [[False, True, True]]


def test_unknown_layer_names_are_refused():
    model = _model()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="no layers named"):
        model.fit(
            np.ones((2, 3)), np.ones((2, 1)), verbose=0, callbacks=[GradualUnfreezing([["nope"]])]
        )


def test_layer_groups_of_a_recurrent_model():
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(30, 8, name="embedding")(ids)
    x = keras.layers.Dropout(0.1, name="dropout")(x)
    x = kzoo.layers.LSTM(8, return_sequences=True, name="lstm_0")(x)
    x = kzoo.layers.Bidirectional(kzoo.layers.GRU(4, return_sequences=True), name="bi_1")(x)
    x = kzoo.layers.GlobalMaskedMaxPooling1D(name="pool")(x)
    x = keras.layers.Dense(4, name="hidden")(x)
    inner = keras.Model(ids, x, name="backbone")
    outer_ids = keras.Input((None,), dtype="int32")
    model = keras.Model(outer_ids, keras.layers.Dense(1, name="output")(inner(outer_ids)))
    assert layer_groups(model) == [["embedding"], ["lstm_0"], ["bi_1"], ["hidden", "output"]]
    with pytest.raises(ValueError, match="no kzoo recurrent layer"):
        layer_groups(_model())
