"""`torch.nn.RNN/LSTM/GRU` <-> kzoo recurrent layers, with equal outputs.

`from_torch` reads a module or a `state_dict` and needs no torch import for
the latter; `to_torch` builds torch modules and imports torch.
"""

import re
import sys

import keras
import numpy as np

from kzoo.convert._weights import GATES, cell_to_torch, torch_to_cell
from kzoo.layers.bidirectional import Bidirectional
from kzoo.layers.gru_cell import GRUCell
from kzoo.layers.lstm_cell import LSTMCell
from kzoo.layers.recurrent_layers import GRU, LSTM, SimpleRNN
from kzoo.layers.rnn import RNN
from kzoo.layers.simple_rnn_cell import SimpleRNNCell
from kzoo.layers.stacked_rnn import StackedRNN

_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")
_TORCH_MODES = {"LSTM": ("lstm", None), "GRU": ("gru", None), "RNN_TANH": ("rnn", "tanh")}
_TORCH_MODES["RNN_RELU"] = ("rnn", "relu")
_LAYERS = {"lstm": LSTM, "gru": GRU, "rnn": SimpleRNN}
_CELL_KINDS = {LSTMCell: "lstm", GRUCell: "gru", SimpleRNNCell: "rnn"}


def _numpy(value):
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _is_torch_module(obj):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _refuse_projection():
    raise ValueError(
        "LSTMs with projections (torch.nn.LSTM proj_size > 0, state_dict keys "
        "weight_hr_l*) have no kzoo equivalent: kzoo.layers.LSTMCell has no "
        "projection of h. Convert a model trained with proj_size=0."
    )


def parse_state_dict(state_dict, prefix=""):
    """Reads the recurrent parameters of a torch RNN/LSTM/GRU `state_dict`.

    Args:
        state_dict: mapping of names to tensors or arrays.
        prefix: the module's prefix in a model's `state_dict` (e.g.
            `"lstm."`); keys that do not start with it are ignored.

    Returns:
        dict with `kind` ("lstm", "gru", "rnn"), `units`, `input_size`,
        `num_layers`, `bidirectional`, `bias` and `params`
        `{(layer, reverse, name): array}`.

    Raises:
        ValueError: unknown keys, missing or mis-shaped parameters, or an
            LSTM with projections.
    """
    if not hasattr(state_dict, "items"):
        raise ValueError(
            f"Expected a torch module or a state_dict mapping; got {type(state_dict).__name__}."
        )
    params, unknown = {}, []
    for key, value in state_dict.items():
        if not key.startswith(prefix):
            continue
        match = _KEY.match(key[len(prefix) :])
        if match is None:
            unknown.append(key)
            continue
        name, layer, reverse = match.group(1), int(match.group(2)), bool(match.group(3))
        if name == "weight_hr":
            _refuse_projection()
        params[(layer, reverse, name)] = _numpy(value)
    if unknown:
        raise ValueError(
            f"Unknown keys in the state_dict: {sorted(unknown)}. A torch RNN/LSTM/GRU "
            "has only weight_ih_l<k>, weight_hh_l<k>, bias_ih_l<k>, bias_hh_l<k> (and "
            "*_reverse); pass `prefix=` to pick one module out of a model's state_dict."
        )
    if not params:
        raise ValueError(
            f"No recurrent parameters found in the state_dict under prefix {prefix!r}."
        )
    num_layers = max(layer for layer, _, _ in params) + 1
    bidirectional = any(reverse for _, reverse, _ in params)
    bias = any(name.startswith("bias") for _, _, name in params)
    first = params.get((0, False, "weight_hh"))
    if first is None or first.ndim != 2 or first.shape[1] == 0 or first.shape[0] % first.shape[1]:
        raise ValueError("weight_hh_l0 is missing or is not a (gates * hidden, hidden) matrix.")
    units = first.shape[1]
    kind = {4: "lstm", 3: "gru", 1: "rnn"}.get(first.shape[0] // units)
    if kind is None:
        raise ValueError(
            f"weight_hh_l0 has shape {first.shape}: {first.shape[0] // units} gate blocks, "
            "not 4 (LSTM), 3 (GRU) or 1 (RNN)."
        )
    rows = GATES[kind] * units
    directions = [False, True] if bidirectional else [False]
    input_size = None
    for layer in range(num_layers):
        for reverse in directions:
            suffix = f"_l{layer}" + ("_reverse" if reverse else "")
            names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if bias else [])
            for name in names:
                if (layer, reverse, name) not in params:
                    raise ValueError(f"The state_dict lacks {prefix}{name}{suffix}.")
            weight_ih = params[(layer, reverse, "weight_ih")]
            if layer == 0 and input_size is None:
                input_size = weight_ih.shape[-1] if weight_ih.ndim == 2 else -1
            expected = {
                "weight_ih": (rows, input_size if layer == 0 else units * len(directions)),
                "weight_hh": (rows, units),
                "bias_ih": (rows,),
                "bias_hh": (rows,),
            }
            for name in names:
                shape = params[(layer, reverse, name)].shape
                if shape != expected[name]:
                    raise ValueError(
                        f"{prefix}{name}{suffix} has shape {shape}; a {kind.upper()} with "
                        f"hidden size {units} needs {expected[name]}."
                    )
    return {
        "kind": kind,
        "units": units,
        "input_size": input_size,
        "num_layers": num_layers,
        "bidirectional": bidirectional,
        "bias": bias,
        "params": params,
    }


def recurrent_cells(layer):
    """`[(layer index, reverse, RNN layer)]` of a kzoo LSTM/GRU/SimpleRNN,
    Bidirectional or StackedRNN, in torch's parameter order."""
    subs = layer.recurrent_layers if isinstance(layer, StackedRNN) else [layer]
    found = []
    for index, sub in enumerate(subs):
        if isinstance(sub, Bidirectional):
            found += [(index, False, sub.forward_layer), (index, True, sub.backward_layer)]
        elif isinstance(sub, RNN):
            found.append((index, False, sub))
        else:
            raise ValueError(f"Expected a kzoo recurrent layer; got {type(sub).__name__}.")
    return found


def _new_layer(spec, activation, dropout, return_sequences, name):
    kind = spec["kind"]
    cell_kwargs = {"use_bias": spec["bias"]}
    if kind == "rnn":
        cell_kwargs["activation"] = activation
    if kind == "gru":
        cell_kwargs["reset_after"] = True
    if spec["num_layers"] == 1:
        bidirectional = spec["bidirectional"]
        layer = _LAYERS[kind](
            spec["units"],
            return_sequences=return_sequences,
            name=None if bidirectional else name,
            **cell_kwargs,
        )
        if bidirectional:
            layer = Bidirectional(layer, name=name)
    else:
        layer = StackedRNN(
            spec["units"],
            num_layers=spec["num_layers"],
            cell=kind,
            bidirectional=spec["bidirectional"],
            dropout=dropout,
            return_sequences=return_sequences,
            cell_kwargs=cell_kwargs,
            name=name,
        )
    layer.build((None, None, spec["input_size"]))
    return layer


def _assign(cell, weights):
    for variable, value in zip([cell.kernel, cell.recurrent_kernel, cell.bias], weights):
        variable.assign(value)


def from_torch(
    module_or_state_dict,
    *,
    prefix="",
    nonlinearity="tanh",
    dropout=0.0,
    return_sequences=True,
    mask_zero=False,
    name=None,
):
    """Builds the kzoo (or Keras) layer that computes what a torch module computes.

    Recurrent modules map as follows (kzoo layers take `(batch, time,
    features)`; a torch module with `batch_first=False` takes `(time,
    batch, features)`, so transpose its inputs):

    | torch | kzoo |
    | --- | --- |
    | `nn.LSTM/GRU/RNN`, 1 layer | `kzoo.layers.LSTM/GRU/SimpleRNN` |
    | the same, `bidirectional=True` | `kzoo.layers.Bidirectional(...)` (concat) |
    | `num_layers=N` | `kzoo.layers.StackedRNN(num_layers=N, dropout=...)` |
    | `nn.Linear` | `keras.layers.Dense` |
    | `nn.Embedding` | `keras.layers.Embedding` |

    With `return_sequences=True` (default) the output equals torch's
    `output`. LSTM biases are summed into one; GRU gates (r, z, n) become
    (z, r, h) with `reset_after=True` and both bias rows kept.

    Args:
        module_or_state_dict: a torch module, or the `state_dict` of an
            RNN/LSTM/GRU (the kind is read from the shapes).
        prefix: with a model's `state_dict`, the prefix of the recurrent
            module's keys, e.g. `"lstm."`.
        nonlinearity: `"tanh"` or `"relu"` for a `state_dict` of `nn.RNN`
            (modules carry their own).
        dropout: inter-layer dropout for a multi-layer `state_dict`
            (modules carry their own).
        return_sequences: return every step (torch's `output`) or the last.
        mask_zero: for `nn.Embedding`: mask id 0 in Keras.
        name: optional layer name.

    Returns:
        A built Keras layer holding the converted weights.

    Raises:
        ValueError: unknown keys, shapes that do not fit, `proj_size > 0`,
            or an unsupported module.

    Example:

    >>> lstm = torch.nn.LSTM(8, 16, num_layers=2, batch_first=True)
    >>> layer = kzoo.convert.from_torch(lstm)      # a kzoo.layers.StackedRNN
    """
    source = module_or_state_dict
    if _is_torch_module(source):
        mode = getattr(source, "mode", None)
        if mode in _TORCH_MODES:
            if getattr(source, "proj_size", 0):
                _refuse_projection()
            kind, activation = _TORCH_MODES[mode]
            spec = parse_state_dict(source.state_dict())
            expected = (source.hidden_size, source.input_size, source.num_layers)
            if (spec["units"], spec["input_size"], spec["num_layers"]) != expected:
                raise ValueError(f"{type(source).__name__}'s parameters do not match its sizes.")
            return _convert(
                spec, activation or "tanh", float(source.dropout), return_sequences, name
            )
        if hasattr(source, "in_features") and hasattr(source, "out_features"):
            return _dense(source, name)
        if hasattr(source, "num_embeddings") and hasattr(source, "embedding_dim"):
            embedding = keras.layers.Embedding(
                source.num_embeddings, source.embedding_dim, mask_zero=mask_zero, name=name
            )
            embedding.build((None, None))
            embedding.embeddings.assign(_numpy(source.weight).astype(np.float32))
            return embedding
        raise ValueError(
            f"from_torch converts nn.RNN/LSTM/GRU, nn.Linear and nn.Embedding; got "
            f"{type(source).__name__}."
        )
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"`nonlinearity` must be 'tanh' or 'relu'. Received: {nonlinearity!r}")
    spec = parse_state_dict(source, prefix)
    return _convert(spec, nonlinearity, dropout, return_sequences, name)


def _convert(spec, activation, dropout, return_sequences, name):
    layer = _new_layer(spec, activation, dropout, return_sequences, name)
    params = spec["params"]
    for index, reverse, rnn in recurrent_cells(layer):

        def get(key, index=index, reverse=reverse):
            return params.get((index, reverse, key))

        weights = torch_to_cell(
            spec["kind"],
            spec["units"],
            get("weight_ih"),
            get("weight_hh"),
            get("bias_ih"),
            get("bias_hh"),
        )
        _assign(rnn.cell, weights)
    return layer


def _dense(linear, name):
    weight = _numpy(linear.weight).astype(np.float32)
    bias = getattr(linear, "bias", None)
    dense = keras.layers.Dense(linear.out_features, use_bias=bias is not None, name=name)
    dense.build((None, linear.in_features))
    dense.kernel.assign(weight.T)
    if bias is not None:
        dense.bias.assign(_numpy(bias).astype(np.float32))
    return dense


def _activation(fn):
    return keras.activations.serialize(fn)


def describe(layer):
    """The torch constructor arguments of a kzoo recurrent layer, or a clear refusal."""
    if isinstance(layer, keras.layers.Layer) and not isinstance(
        layer, (RNN, Bidirectional, StackedRNN)
    ):
        raise ValueError(
            f"to_torch converts kzoo LSTM/GRU/SimpleRNN, Bidirectional and StackedRNN layers "
            f"(and keras.layers ones); got {type(layer).__name__}."
        )
    if isinstance(layer, StackedRNN) and layer.bidirectional and layer.merge_mode != "concat":
        raise ValueError("torch concatenates the two directions: merge_mode must be 'concat'.")
    if isinstance(layer, Bidirectional) and layer.merge_mode != "concat":
        raise ValueError(
            f"torch concatenates the two directions: merge_mode must be 'concat', "
            f"not {layer.merge_mode!r}."
        )
    cells = recurrent_cells(layer)
    kinds, units, biases = set(), set(), set()
    activation = "tanh"
    for _index, reverse, rnn in cells:
        cell = rnn.cell
        kind = _CELL_KINDS.get(type(cell))
        if kind is None:
            raise ValueError(f"torch has no cell like {type(cell).__name__} (layer {rnn.name!r}).")
        if not cell.built:
            raise ValueError(f"Layer {rnn.name!r} is not built: call it on data first.")
        if rnn.go_backwards != reverse:
            raise ValueError(
                f"Layer {rnn.name!r} has go_backwards={rnn.go_backwards}: torch reads a "
                "unidirectional sequence forwards only."
            )
        if getattr(cell, "layer_norm", False):
            raise ValueError(f"Layer {rnn.name!r} uses layer_norm, which torch.nn has not.")
        if kind == "gru" and not cell.reset_after:
            raise ValueError(
                f"Layer {rnn.name!r} has reset_after=False; torch.nn.GRU applies the reset "
                "gate after the recurrent product (reset_after=True)."
            )
        if kind == "rnn":
            activation = _activation(cell.activation)
            if activation not in ("tanh", "relu"):
                raise ValueError(f"torch.nn.RNN has no {activation!r} nonlinearity.")
        elif (_activation(cell.activation), _activation(cell.recurrent_activation)) != (
            "tanh",
            "sigmoid",
        ):
            raise ValueError(
                f"Layer {rnn.name!r} uses activations other than tanh/sigmoid, "
                "which torch.nn.LSTM/GRU cannot."
            )
        kinds.add(kind)
        units.add(cell.units)
        biases.add(cell.use_bias)
    if len(kinds) != 1 or len(units) != 1 or len(biases) != 1:
        raise ValueError("torch needs the same cell type, units and use_bias in every layer.")
    first = cells[0][2].cell
    return {
        "kind": kinds.pop(),
        "input_size": first.input_dim,
        "hidden_size": units.pop(),
        "num_layers": cells[-1][0] + 1,
        "bias": biases.pop(),
        "bidirectional": any(reverse for _, reverse, _ in cells),
        "dropout": float(layer.dropout) if isinstance(layer, StackedRNN) else 0.0,
        "nonlinearity": activation,
        "cells": cells,
    }


def to_torch(layer, batch_first=True):
    """Builds the torch module that computes what a kzoo recurrent layer computes.

    The inverse of `from_torch` for kzoo `LSTM`/`GRU`/`SimpleRNN`,
    `Bidirectional` (concat) and `StackedRNN`; Keras built-in layers are
    converted with `from_keras` first. LSTM and RNN biases go to `bias_ih`,
    with `bias_hh = 0`. The module is returned in eval mode. Cell dropout
    only acts in training and is not carried over.

    Args:
        layer: a built kzoo (or keras.layers) recurrent layer.
        batch_first: the `batch_first` of the torch module.

    Returns:
        `torch.nn.LSTM`, `GRU` or `RNN`.

    Raises:
        ValueError: layer norm, `reset_after=False`, other activations,
            `go_backwards` on a unidirectional layer, a merge mode other than
            concat, or an unbuilt layer.
    """
    import torch

    from kzoo.convert._keras import from_keras, is_keras_recurrent

    if is_keras_recurrent(layer):
        layer = from_keras(layer)
    spec = describe(layer)
    module_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[spec["kind"]]
    kwargs = {
        "input_size": spec["input_size"],
        "hidden_size": spec["hidden_size"],
        "num_layers": spec["num_layers"],
        "bias": spec["bias"],
        "batch_first": batch_first,
        "dropout": spec["dropout"],
        "bidirectional": spec["bidirectional"],
    }
    if spec["kind"] == "rnn":
        kwargs["nonlinearity"] = spec["nonlinearity"]
    module = module_class(**kwargs)
    with torch.no_grad():
        for index, reverse, rnn in spec["cells"]:
            cell = rnn.cell
            values = cell_to_torch(
                spec["kind"],
                spec["hidden_size"],
                keras.ops.convert_to_numpy(cell.kernel),
                keras.ops.convert_to_numpy(cell.recurrent_kernel),
                keras.ops.convert_to_numpy(cell.bias) if cell.use_bias else None,
            )
            suffix = f"_l{index}" + ("_reverse" if reverse else "")
            for name, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), values):
                if value is not None:
                    getattr(module, name + suffix).copy_(torch.from_numpy(value))
    return module.eval()
