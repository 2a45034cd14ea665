"""Several recurrent layers with dropout between them."""

import keras

from kzoo.layers.bidirectional import MERGE_MODES, Bidirectional
from kzoo.layers.recurrent_layers import GRU, LSTM, SimpleRNN
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_choice, check_rate, check_units

CELL_LAYERS = {"rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}


@register_serializable
class StackedRNN(keras.layers.Layer):
    """`num_layers` recurrent layers with dropout between consecutive layers.

    The Keras counterpart of `torch.nn.LSTM(num_layers=n, dropout=p,
    bidirectional=b)`: dropout is applied to the outputs of every layer but
    the last, and only while training.

    Args:
        units: positive int, units per direction of every layer.
        num_layers: positive int.
        cell: `"lstm"` (default), `"gru"` or `"rnn"`.
        bidirectional: wrap each layer in `kzoo.layers.Bidirectional`.
        merge_mode: merge mode of the bidirectional layers.
        dropout: rate of the dropout between layers, in [0, 1).
        return_sequences: whether the last layer returns all steps.
        cell_kwargs: dict of extra cell arguments for every layer (e.g.
            `{"recurrent_dropout": 0.1}`).
        seed: int seed for the inter-layer dropout.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        sequences: `(batch, time, features)`.
        mask: optional `(batch, time)` mask, passed to every layer.
        training: whether dropout is active.

    Example:

    >>> stack = kzoo.layers.StackedRNN(64, num_layers=2, dropout=0.2)
    >>> stack(np.ones((4, 12, 8))).shape
    (4, 64)
    """

    def __init__(
        self,
        units,
        num_layers=2,
        cell="lstm",
        bidirectional=False,
        merge_mode="concat",
        dropout=0.0,
        return_sequences=False,
        cell_kwargs=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_units(units)
        self.num_layers = check_units(num_layers, "num_layers")
        self.cell = check_choice(cell, tuple(CELL_LAYERS), "cell")
        self.bidirectional = bidirectional
        self.merge_mode = check_choice(merge_mode, MERGE_MODES[:-1], "merge_mode")
        self.dropout = check_rate(dropout, "dropout")
        self.return_sequences = return_sequences
        self.cell_kwargs = dict(cell_kwargs or {})
        self.seed = seed
        self.supports_masking = True
        self.recurrent_layers = []
        for i in range(self.num_layers):
            last = i == self.num_layers - 1
            layer = CELL_LAYERS[cell](
                units,
                return_sequences=return_sequences or not last,
                name=f"{cell}_{i}",
                **self.cell_kwargs,
            )
            if bidirectional:
                layer = Bidirectional(layer, merge_mode=merge_mode, name=f"bidirectional_{i}")
            self.recurrent_layers.append(layer)
        self.dropout_layers = [
            keras.layers.Dropout(self.dropout, seed=None if seed is None else seed + i)
            for i in range(self.num_layers - 1)
        ]

    def build(self, sequences_shape):
        shape = tuple(sequences_shape)
        for layer in self.recurrent_layers:
            layer.build(shape)
            shape = (shape[0], shape[1], layer.compute_output_shape(shape)[-1])

    def call(self, sequences, mask=None, training=False):
        x = sequences
        for i, layer in enumerate(self.recurrent_layers):
            if i > 0 and self.dropout > 0:
                x = self.dropout_layers[i - 1](x, training=training)
            x = layer(x, mask=mask, training=training)
        return x

    def compute_output_shape(self, sequences_shape):
        shape = tuple(sequences_shape)
        for layer in self.recurrent_layers:
            out = layer.compute_output_shape(shape)
            shape = (shape[0], shape[1], out[-1])
        return out

    def compute_mask(self, sequences, mask=None):
        return mask if self.return_sequences else None

    def get_config(self):
        config = {
            "units": self.units,
            "num_layers": self.num_layers,
            "cell": self.cell,
            "bidirectional": self.bidirectional,
            "merge_mode": self.merge_mode,
            "dropout": self.dropout,
            "return_sequences": self.return_sequences,
            "cell_kwargs": self.cell_kwargs,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}
