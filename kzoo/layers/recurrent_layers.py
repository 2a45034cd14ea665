"""`SimpleRNN`, `LSTM` and `GRU`: `RNN` with its cell built from arguments."""

import inspect

from kzoo.layers.cell_base import RecurrentCell
from kzoo.layers.gru_cell import GRUCell
from kzoo.layers.lstm_cell import LSTMCell
from kzoo.layers.rnn import RNN, check_use_cudnn
from kzoo.layers.simple_rnn_cell import SimpleRNNCell
from kzoo.utils.serialization import register_serializable

_LAYER_KEYS = ("name", "trainable", "dtype")


def _cell_arg_names(cell_class):
    names = set()
    for klass in (cell_class, RecurrentCell):
        names.update(inspect.signature(klass.__init__).parameters)
    return names - {"self", "kwargs", "units"}


class _CellLayer(RNN):
    cell_class = None

    def __init__(
        self,
        units,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        **kwargs,
    ):
        cell_names = _cell_arg_names(self.cell_class)
        cell_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in cell_names}
        cell = self.cell_class(units, dtype=kwargs.get("dtype"), name="cell", **cell_kwargs)
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            **kwargs,
        )

    @property
    def units(self):
        return self.cell.units

    def get_config(self):
        config = super().get_config()
        del config["cell"]
        cell_config = self.cell.get_config()
        for key in _LAYER_KEYS:
            cell_config.pop(key, None)
        return {**config, **cell_config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _CudnnLayer(_CellLayer):
    """A layer whose cell has a cuDNN kernel: takes Keras's `use_cudnn`."""

    def __init__(self, units, use_cudnn="auto", **kwargs):
        super().__init__(units, **kwargs)
        # As in Keras, not part of the config: a choice for this machine.
        self.use_cudnn = check_use_cudnn(use_cudnn)


@register_serializable
class SimpleRNN(_CellLayer):
    """`kzoo.layers.RNN(kzoo.layers.SimpleRNNCell(units, ...))` in one layer.

    Same weights and `get_weights()` order as `keras.layers.SimpleRNN`.

    Args:
        units: positive int.
        return_sequences, return_state, go_backwards, stateful: as in
            `kzoo.layers.RNN`.
        **kwargs: `kzoo.layers.SimpleRNNCell` arguments (`dropout`,
            `recurrent_weight_dropout`, ...) and layer arguments.

    Example:

    >>> kzoo.layers.SimpleRNN(16)(np.ones((2, 9, 4))).shape
    (2, 16)
    """

    cell_class = SimpleRNNCell


@register_serializable
class LSTM(_CudnnLayer):
    """`kzoo.layers.RNN(kzoo.layers.LSTMCell(units, ...))` in one layer.

    Same weights and `get_weights()` order as `keras.layers.LSTM`; the forget
    gate bias starts at 1 (`unit_forget_bias=True`).

    Args:
        units: positive int.
        return_sequences, return_state, go_backwards, stateful: as in
            `kzoo.layers.RNN`.
        use_cudnn: `"auto"` (default) runs cuDNN's kernel on a GPU when the
            configuration allows it, True insists on it (`ValueError` where
            it cannot run), False never uses it; as in `keras.layers.LSTM`.
        **kwargs: `kzoo.layers.LSTMCell` arguments (`dropout`,
            `recurrent_dropout`, `recurrent_weight_dropout`, `layer_norm`, ...)
            and layer arguments.

    Example:

    >>> y, h, c = kzoo.layers.LSTM(16, return_state=True)(np.ones((2, 9, 4)))
    """

    cell_class = LSTMCell


@register_serializable
class GRU(_CudnnLayer):
    """`kzoo.layers.RNN(kzoo.layers.GRUCell(units, ...))` in one layer.

    Same weights and `get_weights()` order as `keras.layers.GRU`.

    Args:
        units: positive int.
        return_sequences, return_state, go_backwards, stateful: as in
            `kzoo.layers.RNN`.
        use_cudnn: `"auto"`, True or False, as for `kzoo.layers.LSTM`.
        **kwargs: `kzoo.layers.GRUCell` arguments (`reset_after`, `dropout`,
            `recurrent_weight_dropout`, ...) and layer arguments.

    Example:

    >>> kzoo.layers.GRU(16, return_sequences=True)(np.ones((2, 9, 4))).shape
    (2, 9, 16)
    """

    cell_class = GRUCell
