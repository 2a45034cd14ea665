"""kzoo.callbacks.TrainingBudget stops fit on steps or wall time."""

import time

import keras
import numpy as np
import pytest

from kzoo.callbacks import TrainingBudget


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


def _data(rows=40):
    rng = np.random.default_rng(0)
    return rng.normal(size=(rows, 3)).astype("float32"), rng.normal(size=(rows, 1))


def test_step_budget_counts_across_fit_calls():
    model, (x, y) = _model(), _data()
    budget = TrainingBudget(max_steps=7)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[budget])  # 10 batches
    assert budget.steps == 7 and budget.stopped and budget.reason == "7 steps done"
    history = model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[budget])
    # Already spent: the next fit stops after its first batch.
    assert budget.steps == 8 and len(history.history["loss"]) == 1


def test_time_budget_stops_training():
    model, (x, y) = _model(), _data()

    class Slow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.05)

    budget = TrainingBudget(seconds=0.2)
    history = model.fit(x, y, batch_size=4, epochs=50, verbose=0, callbacks=[Slow(), budget])
    assert budget.stopped and budget.reason == "time budget reached"
    assert len(history.history["loss"]) < 50
    assert budget.expired()


def test_unlimited_budget_never_stops():
    model, (x, y) = _model(), _data()
    budget = TrainingBudget()
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[budget])
    assert not budget.stopped and budget.steps == 20 and len(history.history["loss"]) == 2


@pytest.mark.parametrize("kwargs", [{"seconds": 0}, {"seconds": -1}, {"max_steps": 0}])
def test_bad_budget_is_rejected(kwargs):
    with pytest.raises(ValueError, match="must be"):
        TrainingBudget(**kwargs)
