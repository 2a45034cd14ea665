"""Learning-rate schedules for fine-tuning."""

import math

import keras
from keras import ops

from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_number, check_units


@register_serializable
class SlantedTriangularLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Slanted triangular learning rate (STLR) of ULMFiT.

    A short linear warm-up to `max_learning_rate` over the first
    `cut_fraction` of the steps, then a long linear decay, from and to
    `max_learning_rate / ratio`. With `T = total_steps` and
    `cut = floor(T * cut_fraction)`:

        p = t / cut                                         if t < cut
        p = 1 - (t - cut) / (cut * (1 / cut_fraction - 1))  otherwise
        lr(t) = max_learning_rate * (1 + p * (ratio - 1)) / ratio

    `p` is clipped to `[0, 1]`, so steps past the end keep the floor
    `max_learning_rate / ratio`.

    Args:
        max_learning_rate: positive float, the peak (ULMFiT: 0.01).
        total_steps: positive int, training steps the schedule spans (epochs
            times steps per epoch).
        cut_fraction: float in (0, 1), the share of rising steps (0.1).
        ratio: float >= 1, how much smaller the lowest rate is than the
            peak (32).
        name: optional name.

    Example:

    >>> schedule = SlantedTriangularLearningRate(0.01, total_steps=1000)
    >>> optimizer = keras.optimizers.Adam(schedule, beta_1=0.7, beta_2=0.99)

    Reference:
        Howard & Ruder, "Universal Language Model Fine-tuning for Text
        Classification", ACL 2018, https://arxiv.org/abs/1801.06146
    """

    def __init__(self, max_learning_rate, total_steps, cut_fraction=0.1, ratio=32.0, name=None):
        super().__init__()
        self.max_learning_rate = check_number(max_learning_rate, "max_learning_rate", 0.0, math.inf)
        if self.max_learning_rate == 0:
            raise ValueError("`max_learning_rate` must be positive. Received: max_learning_rate=0")
        self.total_steps = check_units(total_steps, "total_steps")
        self.cut_fraction = check_number(cut_fraction, "cut_fraction", 0.0, 1.0)
        if self.cut_fraction == 0:
            raise ValueError("`cut_fraction` must be in (0, 1). Received: cut_fraction=0")
        self.ratio = check_number(ratio, "ratio", 1.0, math.inf)
        self.cut = math.floor(self.total_steps * self.cut_fraction)
        if self.cut < 1:
            raise ValueError(
                "`total_steps * cut_fraction` must be at least 1 (one rising step). "
                f"Received: total_steps={total_steps}, cut_fraction={cut_fraction}"
            )
        self.name = name

    def __call__(self, step):
        t = ops.cast(step, "float32")
        cut = float(self.cut)
        rising = t / cut
        falling = 1.0 - (t - cut) / (cut * (1.0 / self.cut_fraction - 1.0))
        p = ops.clip(ops.where(t < cut, rising, falling), 0.0, 1.0)
        return self.max_learning_rate * (1.0 + p * (self.ratio - 1.0)) / self.ratio

    def get_config(self):
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "cut_fraction": self.cut_fraction,
            "ratio": self.ratio,
            "name": self.name,
        }
