"""Which layers of a model hold recurrent state, and what the exports name them.

Backend-independent, so that a JAX or PyTorch process can check a streaming
export before it starts the TensorFlow subprocess.
"""

import re

import keras

from kzoo.layers.bidirectional import Bidirectional
from kzoo.layers.lstm_cell import LSTMCell
from kzoo.layers.rnn import RNN
from kzoo.layers.stacked_cells import state_sizes


def structured_inputs(model, flat):
    """Arranges arrays given in `model.inputs` order as the model's call expects.

    A functional model built on a dict (or nested list) of `keras.Input`s
    lists its inputs flattened (dict keys sorted) in `model.inputs`, but its
    call needs the original structure.
    """
    flat = list(flat)
    try:
        struct = model.input  # a functional model: the structure it was built on
    except (AttributeError, ValueError):  # a model never called on symbolic inputs
        struct = None
    if struct is None or len(keras.tree.flatten(struct)) != len(flat):
        return flat[0] if len(flat) == 1 else flat
    return keras.tree.pack_sequence_as(struct, flat)


def identifier(text):
    """`text` with every character that is not a letter, digit or `_` replaced."""
    return re.sub(r"\W", "_", str(text)).strip("_") or "x"


def unique(names):
    """Appends `_1`, `_2`, ... to repeated names."""
    seen, result = {}, []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        result.append(name if count == 0 else f"{name}_{count}")
    return result


def recurrent_layers(model):
    """Every `kzoo.layers.RNN` inside `model` (including those in wrappers)."""
    return [layer for layer in model._flatten_layers(include_self=False) if isinstance(layer, RNN)]


def _activation_name(fn):
    return keras.activations.serialize(fn) if fn is not None else None


def fusable(layer):
    """Whether a kzoo recurrent layer is a standard LSTM that LiteRT's fused op computes.

    Standard means: `LSTMCell` without layer norm, tanh/sigmoid activations,
    and a layer that returns no states and is not stateful.
    """
    cell = layer.cell
    return (
        isinstance(cell, LSTMCell)
        and not cell.layer_norm
        and _activation_name(cell.activation) == "tanh"
        and _activation_name(cell.recurrent_activation) == "sigmoid"
        and not layer.return_state
        and not layer.stateful
    )


def _state_names(layer, prefix):
    sizes = state_sizes(layer.cell)
    if isinstance(layer.cell, LSTMCell):
        suffixes = ["h", "c"]
    elif len(sizes) == 1:
        suffixes = ["h"]
    else:
        suffixes = [f"state{j}" for j in range(len(sizes))]
    return [f"{prefix}_{s}" for s in suffixes]


def streaming_layout(model):
    """`[(layer, state names, state sizes)]` for a streaming export of `model`.

    Raises:
        ValueError: the model has a bidirectional or non-kzoo recurrent
            layer, or no recurrent layer at all.
    """
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, (Bidirectional, keras.layers.Bidirectional)):
            raise ValueError(
                f"Streaming export needs causal recurrent layers: {layer.name!r} is "
                "Bidirectional, whose backward pass needs the whole sequence."
            )
        if isinstance(layer, keras.layers.RNN) and not isinstance(layer, RNN):
            raise ValueError(
                f"Streaming export handles kzoo recurrent layers; {layer.name!r} is a "
                f"{type(layer).__name__} from keras.layers. Convert it with "
                "kzoo.convert.from_keras first."
            )
    layers = recurrent_layers(model)
    if not layers:
        raise ValueError("Streaming export needs at least one kzoo recurrent layer in the model.")
    prefixes = unique([identifier(layer.name) for layer in layers])
    return [
        (layer, _state_names(layer, prefix), state_sizes(layer.cell))
        for layer, prefix in zip(layers, prefixes)
    ]
