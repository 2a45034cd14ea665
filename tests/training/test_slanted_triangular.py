"""The slanted triangular learning rate equals ULMFiT's formula."""

import math

import keras
import numpy as np
import pytest

from kzoo.training import SlantedTriangularLearningRate
from tests.harness import assert_close, to_numpy


def _formula(t, total, cut_fraction, ratio, peak):
    cut = math.floor(total * cut_fraction)
    p = t / cut if t < cut else 1 - (t - cut) / (cut * (1 / cut_fraction - 1))
    p = min(max(p, 0.0), 1.0)
    return peak * (1 + p * (ratio - 1)) / ratio


@pytest.mark.parametrize("total,cut_fraction,ratio", [(100, 0.1, 32.0), (37, 0.25, 8.0)])
def test_values_equal_the_formula(total, cut_fraction, ratio):
    schedule = SlantedTriangularLearningRate(0.01, total, cut_fraction=cut_fraction, ratio=ratio)
    steps = np.arange(total + 5)
    values = [float(to_numpy(schedule(int(t)))) for t in steps]
    expected = [_formula(t, total, cut_fraction, ratio, 0.01) for t in steps]
    assert_close(np.array(values), np.array(expected))
    cut = math.floor(total * cut_fraction)
    assert values[cut] == pytest.approx(0.01)
    assert values[0] == pytest.approx(0.01 / ratio)
    assert values[-1] == pytest.approx(0.01 / ratio)


def test_drives_an_optimizer_and_round_trips():
    schedule = SlantedTriangularLearningRate(0.02, 50, name="stlr")
    config = keras.optimizers.schedules.serialize(schedule)
    clone = keras.optimizers.schedules.deserialize(config)
    assert isinstance(clone, SlantedTriangularLearningRate)
    assert clone.get_config() == schedule.get_config()
    optimizer = keras.optimizers.SGD(schedule)
    variable = keras.Variable(np.zeros(2, "float32"))
    optimizer.build([variable])
    for _ in range(3):
        optimizer.apply([keras.ops.ones(2)], [variable])
    expected = sum(_formula(t, 50, 0.1, 32.0, 0.02) for t in range(3))
    assert_close(variable, -np.full(2, expected))


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"max_learning_rate": 0.0, "total_steps": 10}, "max_learning_rate"),
        ({"max_learning_rate": 0.1, "total_steps": 0}, "total_steps"),
        ({"max_learning_rate": 0.1, "total_steps": 10, "cut_fraction": 1.0}, "cut_fraction"),
        ({"max_learning_rate": 0.1, "total_steps": 5, "cut_fraction": 0.1}, "cut_fraction"),
        ({"max_learning_rate": 0.1, "total_steps": 10, "ratio": 0.5}, "ratio"),
    ],
)
def test_invalid_arguments_are_refused(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SlantedTriangularLearningRate(**kwargs)
