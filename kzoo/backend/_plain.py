"""Recognises the cells a fused kernel can run and collects their weights.

A fused kernel reproduces the equations of `kzoo.layers.LSTMCell`, `GRUCell`
and `SimpleRNNCell` exactly, so it only accepts those classes themselves (a
subclass may change `call`), with the default activations, no layer norm and
no recurrent dropout while training. Everything else raises
`NotImplementedError`, which sends the caller to the generic loop.
"""

import dataclasses

import keras
from keras import ops

KINDS = ("lstm", "gru", "gru_v1", "simple")


@dataclasses.dataclass
class PlainCell:
    """What a fused kernel needs from a cell.

    Attributes:
        kind: `"lstm"`, `"gru"` (reset after the recurrent product, bias
            `(2, 3h)`), `"gru_v1"` (reset before it, bias `(3h,)`) or
            `"simple"`.
        units: state size `h`.
        kernel: `(input_dim, gates * h)` tensor, Keras gate order.
        recurrent_kernel: `(h, gates * h)` tensor.
        bias: tensor of the cell's bias shape, or None without bias.
        input_mask: `(batch, input_dim)` dropout mask drawn by the cell for
            this sequence, or None.
        activation: `"tanh"` or (SimpleRNN only) `"relu"`.
    """

    kind: str
    units: int
    kernel: object
    recurrent_kernel: object
    bias: object
    input_mask: object
    activation: str


def _cell_classes():
    # Imported here: kzoo.layers imports kzoo.backend.
    from kzoo.layers.gru_cell import GRUCell
    from kzoo.layers.lstm_cell import LSTMCell
    from kzoo.layers.simple_rnn_cell import SimpleRNNCell

    return LSTMCell, GRUCell, SimpleRNNCell


def _activation_name(fn):
    if fn is keras.activations.tanh:
        return "tanh"
    if fn is keras.activations.relu:
        return "relu"
    if fn is keras.activations.sigmoid:
        return "sigmoid"
    return None


def plain_cell(cell, training=False, dtype=None):
    """A `PlainCell` for `cell`, or `NotImplementedError` if it is not plain.

    Args:
        cell: a built cell.
        training: whether the call is in training mode (dropout active).
        dtype: dtype of the sequences; the weights must have the same one
            (mixed precision autocasting is left to the generic loop).
    """
    lstm_cell, gru_cell, simple_cell = _cell_classes()
    cls = type(cell)
    if cls not in (lstm_cell, gru_cell, simple_cell) or not cell.built:
        raise NotImplementedError("not a plain kzoo cell")
    if getattr(cell, "layer_norm", False):
        raise NotImplementedError("layer norm has no fused kernel")
    if training and cell.recurrent_dropout > 0:
        raise NotImplementedError("recurrent dropout has no fused kernel")
    activation = _activation_name(cell.activation)
    if cls is simple_cell:
        kind = "simple"
        if activation not in ("tanh", "relu"):
            raise NotImplementedError("SimpleRNN activation must be tanh or relu")
    else:
        kind = "lstm" if cls is lstm_cell else ("gru" if cell.reset_after else "gru_v1")
        if activation != "tanh" or _activation_name(cell.recurrent_activation) != "sigmoid":
            raise NotImplementedError("fused gates need tanh and sigmoid")
    weights = [cell.kernel, cell.recurrent_kernel] + ([cell.bias] if cell.use_bias else [])
    compute_dtype = keras.backend.standardize_dtype(cell.compute_dtype)
    if any(keras.backend.standardize_dtype(w.dtype) != compute_dtype for w in weights):
        raise NotImplementedError("mixed precision runs the generic loop")
    if dtype is not None and keras.backend.standardize_dtype(dtype) != compute_dtype:
        raise NotImplementedError("sequences and weights differ in dtype")
    input_mask = None
    if training and cell.dropout > 0:
        input_mask = cell._input_mask
        if input_mask is None:  # masks are drawn by kzoo.layers.RNN before the loop
            raise NotImplementedError("input dropout mask was not prepared")
    tensors = [ops.convert_to_tensor(w) for w in weights]
    return PlainCell(
        kind=kind,
        units=cell.units,
        kernel=tensors[0],
        recurrent_kernel=tensors[1],
        bias=tensors[2] if cell.use_bias else None,
        input_mask=input_mask,
        activation=activation,
    )


def same_config(a, b):
    """Whether two plain cells can share one bidirectional kernel call."""
    return (
        a.kind == b.kind
        and a.units == b.units
        and a.activation == b.activation
        and (a.bias is None) == (b.bias is None)
        and tuple(a.kernel.shape) == tuple(b.kernel.shape)
    )
