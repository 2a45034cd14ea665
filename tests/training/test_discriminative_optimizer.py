"""Per-group learning rates (`kzoo.training.DiscriminativeOptimizer`) on a toy model."""

import keras
import numpy as np
import pytest

from kzoo.training import DiscriminativeOptimizer, SlantedTriangularLearningRate
from tests.harness import assert_close, to_numpy

GROUPS = [["low"], ["high"]]


def _toy_model():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, activation="tanh", name="low")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="high")(hidden))
    rng = np.random.default_rng(0)
    model.set_weights([rng.uniform(-1, 1, w.shape).astype("float32") for w in model.weights])
    return model


def _data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")


def _changes(optimizer, steps=1, learning_rate=None):
    """`{layer name: [weight changes]}` after `steps` training steps."""
    model = _toy_model()
    model.compile(optimizer=optimizer, loss="mse")
    if learning_rate is not None:
        model.optimizer.learning_rate = learning_rate
    before = {layer.name: [to_numpy(w).copy() for w in layer.weights] for layer in model.layers}
    x, y = _data()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return {
        name: [to_numpy(w) - b for w, b in zip(model.get_layer(name).weights, values)]
        for name, values in before.items()
        if values
    }


def test_sgd_updates_are_scaled_per_group():
    plain = _changes(keras.optimizers.SGD(0.1))
    scaled = _changes(DiscriminativeOptimizer(keras.optimizers.SGD(0.1), GROUPS, factor=2.0))
    for a, b in zip(scaled["low"], plain["low"]):
        assert_close(a, b / 2.0)
    for a, b in zip(scaled["high"], plain["high"]):
        assert_close(a, b)
    assert np.max(np.abs(plain["low"][0])) > 1e-3


class _Scaled(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, schedule, factor):
        self.schedule, self.factor = schedule, factor

    def __call__(self, step):
        return self.schedule(step) * self.factor


def _per_group(make, factors):
    """The reference: Keras's MultiOptimizer with one optimizer per group,
    each built with its group's learning rate."""
    low, high = make(factors[0]), make(factors[1])
    return keras.optimizers.MultiOptimizer(lambda v: low if v.path.startswith("low/") else high)


def test_explicit_factors_momentum_and_a_learning_rate_set_later():
    """Over several steps (momentum, per-group state) and with the rate set
    after compile, as callbacks do."""
    wrapped = DiscriminativeOptimizer(
        keras.optimizers.SGD(0.1, momentum=0.9), GROUPS, factors=[0.25, 0.5]
    )
    scaled = _changes(wrapped, steps=3, learning_rate=0.05)
    reference = _changes(
        _per_group(lambda f: keras.optimizers.SGD(0.05 * f, momentum=0.9), [0.25, 0.5]), steps=3
    )
    for name in ("low", "high"):
        for a, b in zip(scaled[name], reference[name]):
            assert_close(a, b)


def test_adam_steps_have_the_group_learning_rates():
    """Adam's first step moves every weight by about its learning rate, so
    the per-group rates show directly (scaling the gradients would not)."""
    changes = _changes(DiscriminativeOptimizer(keras.optimizers.Adam(0.01), GROUPS, factor=2.6))
    for name, rate in (("low", 0.01 / 2.6), ("high", 0.01)):
        for change in changes[name]:
            assert_close(np.abs(change), np.full(change.shape, rate), tol=1e-3)


def test_a_schedule_is_evaluated_at_the_global_step():
    schedule = SlantedTriangularLearningRate(0.1, total_steps=20)
    scaled = _changes(DiscriminativeOptimizer(keras.optimizers.SGD(schedule), GROUPS), steps=3)
    reference = _changes(
        _per_group(lambda f: keras.optimizers.SGD(_Scaled(schedule, f)), [1 / 2.6, 1.0]), steps=3
    )
    for name in ("low", "high"):
        for a, b in zip(scaled[name], reference[name]):
            assert_close(a, b)


def test_config_and_saved_model_round_trip(tmp_path):
    optimizer = DiscriminativeOptimizer(keras.optimizers.Adam(0.01), GROUPS, factor=3.0)
    clone = DiscriminativeOptimizer.from_config(optimizer.get_config())
    assert clone.get_config() == optimizer.get_config()
    assert clone.factors == pytest.approx([1 / 3.0, 1.0])
    model = _toy_model()
    model.compile(optimizer=optimizer, loss="mse")
    model.train_on_batch(*_data())
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, DiscriminativeOptimizer)
    assert loaded.optimizer.layer_groups == GROUPS
    saved = [to_numpy(v) for v in model.optimizer.variables]
    restored = [to_numpy(v) for v in loaded.optimizer.variables]
    assert len(saved) == len(restored)
    for a, b in zip(saved, restored):
        assert_close(b, a)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="more than one layer group"):
        DiscriminativeOptimizer("sgd", [["low"], ["low", "high"]])
    with pytest.raises(ValueError, match="factors"):
        DiscriminativeOptimizer("sgd", GROUPS, factors=[1.0])
    with pytest.raises(ValueError, match="factor"):
        DiscriminativeOptimizer("sgd", GROUPS, factor=0.5)
    with pytest.raises(ValueError, match="plain Keras optimizer"):
        DiscriminativeOptimizer(keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD()), GROUPS)
    model = _toy_model()
    model.compile(optimizer=DiscriminativeOptimizer("sgd", [["high"]]), loss="mse")
    with pytest.raises(ValueError, match="low/kernel"):
        model.train_on_batch(*_data())
