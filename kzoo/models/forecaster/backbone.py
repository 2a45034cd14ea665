"""`ForecasterBackbone`: the recurrent network of `Forecaster`, windows to features."""

import keras

from kzoo.layers import StackedRNN
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_choice, check_int, check_rate, check_seed

CELL_TYPES = ("lstm", "gru")


@register_serializable
class ForecasterBackbone(keras.Model):
    """A stack of LSTM/GRU layers reading a window of scaled values and covariates.

    A functional model: `(batch, window, num_features)` windows (the scaled
    value and the covariates of each step) to the `(batch, units)` output of
    the last recurrent layer at the last step. `Forecaster` puts a `Dense`
    head on it.

    Args:
        window: int >= 1, steps per input window.
        num_features: int >= 1, features per step (1 + number of covariates).
        cell_type: `"lstm"` or `"gru"`.
        units: int >= 1, units per recurrent layer.
        num_layers: int >= 1.
        dropout: dropout between recurrent layers, in [0, 1).
        seed: int seed for dropout, or None.
        **kwargs: `keras.Model` arguments (`name`).

    Call arguments:
        inputs: `(batch, window, num_features)` float windows.
        training: whether dropout is active.

    Returns:
        `(batch, units)` features.

    Example:

    >>> backbone = ForecasterBackbone(window=24, num_features=3, units=16)
    >>> backbone(np.zeros((2, 24, 3))).shape
    (2, 16)
    """

    def __init__(
        self,
        window,
        num_features=1,
        cell_type="lstm",
        units=32,
        num_layers=1,
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        window = check_int(window, "window", minimum=1)
        num_features = check_int(num_features, "num_features", minimum=1)
        cell_type = check_choice(cell_type, CELL_TYPES, "cell_type")
        units = check_int(units, "units", minimum=1)
        num_layers = check_int(num_layers, "num_layers", minimum=1)
        dropout = check_rate(dropout, "dropout")
        seed = check_seed(seed)
        inputs = keras.Input((window, num_features), name="window")
        features = StackedRNN(units, num_layers, cell_type, dropout=dropout, seed=seed, name="rnn")(
            inputs
        )  # (batch, units)
        super().__init__(inputs, features, **kwargs)
        self.window = window
        self.num_features = num_features
        self.cell_type = cell_type
        self.units = units
        self.num_layers = num_layers
        self.dropout = dropout
        self.seed = seed

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "window": self.window,
            "num_features": self.num_features,
            "cell_type": self.cell_type,
            "units": self.units,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
