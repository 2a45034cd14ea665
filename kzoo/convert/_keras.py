"""`keras.layers.LSTM/GRU/SimpleRNN/Bidirectional` <-> kzoo layers.

The cells share weight names, shapes and gate order, so a conversion is a
mapping of constructor arguments plus `set_weights`.
"""

import keras

from kzoo.layers.bidirectional import Bidirectional
from kzoo.layers.gru_cell import GRUCell
from kzoo.layers.lstm_cell import LSTMCell
from kzoo.layers.recurrent_layers import GRU, LSTM, SimpleRNN
from kzoo.layers.rnn import RNN
from kzoo.layers.simple_rnn_cell import SimpleRNNCell

# Constructor arguments that both libraries accept with the same meaning.
SHARED_ARGS = (
    "units",
    "activation",
    "recurrent_activation",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "unit_forget_bias",
    "reset_after",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
    "dropout",
    "recurrent_dropout",
    "seed",
)
LAYER_ARGS = ("return_sequences", "return_state", "go_backwards", "stateful", "name", "trainable")

_TO_KZOO = ((keras.layers.LSTM, LSTM), (keras.layers.GRU, GRU), (keras.layers.SimpleRNN, SimpleRNN))
_CELL_TO_KERAS = {LSTMCell: keras.layers.LSTM, GRUCell: keras.layers.GRU}
_CELL_TO_KERAS[SimpleRNNCell] = keras.layers.SimpleRNN


def is_keras_recurrent(layer):
    """Whether `layer` is a `keras.layers` RNN or Bidirectional layer."""
    return isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))


def _input_shape(rnn, input_dim):
    batch = rnn.states[0].shape[0] if getattr(rnn, "stateful", False) and rnn.states else None
    return (batch, None, input_dim)


def _shared(config):
    return {key: config[key] for key in SHARED_ARGS + LAYER_ARGS if key in config}


def from_keras(layer):
    """The kzoo layer equal to a `keras.layers` LSTM, GRU, SimpleRNN or Bidirectional.

    Arguments and (if built) weights are copied; `unroll`/`use_cudnn` are
    dropped (they do not change results).

    Args:
        layer: `keras.layers.LSTM`, `GRU`, `SimpleRNN` or a
            `keras.layers.Bidirectional` of one of them.

    Returns:
        `kzoo.layers.LSTM`, `GRU`, `SimpleRNN` or `Bidirectional`.

    Raises:
        ValueError: another layer type, or `zero_output_for_mask=True` on a
            unidirectional layer (kzoo repeats the last output at masked steps).

    Example:

    >>> layer = kzoo.convert.from_keras(keras.layers.LSTM(8))
    """
    if isinstance(layer, keras.layers.Bidirectional):
        forward = from_keras(layer.forward_layer)
        backward = from_keras(layer.backward_layer)
        converted = Bidirectional(
            forward, merge_mode=layer.merge_mode, backward_layer=backward, name=layer.name
        )
        if forward.built:
            converted.build(_input_shape(forward, forward.cell.input_dim))
        return converted
    target = next((kzoo for k, kzoo in _TO_KZOO if type(layer) is k), None)
    if target is None:
        raise ValueError(
            "from_keras converts keras.layers.LSTM, GRU, SimpleRNN and Bidirectional; "
            f"got {type(layer).__name__}."
        )
    if getattr(layer, "zero_output_for_mask", False) and not _inside_bidirectional(layer):
        raise ValueError(
            f"{layer.name!r} has zero_output_for_mask=True; kzoo layers repeat the last "
            "output at masked steps, as Keras does by default."
        )
    converted = target(**_shared(layer.get_config()))
    if layer.built:
        converted.build(_input_shape(layer, layer.cell.kernel.shape[0]))
        converted.set_weights(layer.get_weights())
    return converted


def _inside_bidirectional(layer):
    # keras.layers.Bidirectional sets zero_output_for_mask on the layers it
    # wraps; kzoo.layers.Bidirectional zeroes masked outputs itself.
    return layer.name.startswith(("forward_", "backward_"))


def to_keras(layer):
    """The `keras.layers` layer equal to a kzoo recurrent layer.

    Args:
        layer: a kzoo `LSTM`, `GRU`, `SimpleRNN`, an `RNN` of one of their
            cells, or a `Bidirectional` of those.

    Returns:
        `keras.layers.LSTM`, `GRU`, `SimpleRNN` or `Bidirectional`, with the
        weights copied when `layer` is built.

    Raises:
        ValueError: `layer_norm=True` (no Keras equivalent), stacked cells,
            or a layer kzoo cannot map.
    """
    if isinstance(layer, Bidirectional):
        forward = to_keras(layer.forward_layer)
        backward = to_keras(layer.backward_layer)
        converted = keras.layers.Bidirectional(
            forward, merge_mode=layer.merge_mode, backward_layer=backward, name=layer.name
        )
        if layer.forward_layer.built:
            converted.build(_input_shape(layer.forward_layer, layer.forward_layer.cell.input_dim))
            converted.forward_layer.set_weights(layer.forward_layer.get_weights())
            converted.backward_layer.set_weights(layer.backward_layer.get_weights())
        return converted
    if not isinstance(layer, RNN):
        raise ValueError(
            "to_keras converts kzoo LSTM, GRU, SimpleRNN and Bidirectional layers; "
            f"got {type(layer).__name__} (convert a StackedRNN's `recurrent_layers` one by one)."
        )
    cell = layer.cell
    target = _CELL_TO_KERAS.get(type(cell))
    if target is None:
        raise ValueError(f"keras.layers has no layer for cell {type(cell).__name__}.")
    if getattr(cell, "layer_norm", False):
        raise ValueError(
            f"{layer.name!r} uses layer_norm, which keras.layers.{target.__name__} has not."
        )
    config = _shared(cell.get_config())
    config.update({key: getattr(layer, key) for key in LAYER_ARGS if key != "trainable"})
    converted = target(**config)
    if cell.built:
        converted.build(_input_shape(layer, cell.input_dim))
        converted.set_weights(layer.get_weights())
    return converted
