"""The TensorFlow graphs behind kzoo's exports.

Imported only in a process whose Keras backend is TensorFlow. Three ways to
lower a recurrent layer, chosen per export (`recurrent=`):

- `"fused"`: each eligible `kzoo.layers.LSTM` calls a `tf.function` marked
  with the `api_implements="lstm_*"` attribute and the argument/result
  layout of tf.keras's `standard_lstm`. The LiteRT converter recognises such
  functions and replaces them with one `UNIDIRECTIONAL_SEQUENCE_LSTM` op. It
  needs a static batch size and ignores the initial state and the mask, so
  kzoo adds what the fused op lacks around it (see `fused_lstm`).
- `"loop"`: the layer's own `tf.while_loop`; with a static batch size the
  converter lowers it to a builtin `WHILE`.
- `"unroll"`: one copy of the cell per time step (static sequence length).

Streaming exports call every recurrent layer with its state taken from the
signature's inputs and return the final states as outputs.

All of it through a `kzoo.backend.lowering` context: nothing is patched.
"""

import uuid

import keras
import numpy as np
import tensorflow as tf

import kzoo.backend as kzoo_backend
from kzoo.backend.reference import step_with_mask
from kzoo.export._layout import (
    fusable,
    identifier,
    recurrent_layers,
    streaming_layout,
    structured_inputs,
    unique,
)

# Input value of the extra "reset" feature at the leading reset step. With
# weights equal to the largest kernel entry of each unit, the input and
# forget gate pre-activations are <= -RESET_MAGNITUDE there, so both gates
# are exactly 0 in float32 and the step sets (h, c) to zero.
RESET_MAGNITUDE = 1e4


def _fused_lstm_function():
    """A `tf.function` that the LiteRT converter fuses into one LSTM op.

    Arguments and results follow tf.keras's `standard_lstm`, which is what
    the converter's `ConvertKerasLSTMLayer` expects: `(inputs, init_h,
    init_c, kernel, recurrent_kernel, bias) -> (last_output, outputs,
    new_h, new_c, runtime)`; only the first two results may be used. The
    body is the plain LSTM, which TensorFlow runs when nothing fuses it.
    """
    attributes = {
        "api_implements": f"lstm_{uuid.uuid4().hex}",
        "api_preferred_device": "CPU",
        "time_major": False,
        "go_backwards": False,
    }

    @tf.function(experimental_attributes=attributes, autograph=False)
    def standard_lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        steps_first = tf.transpose(inputs, (1, 0, 2))  # (time, batch, features)

        def step(carry, x_t):
            h, c = carry
            z = tf.matmul(x_t, kernel) + tf.matmul(h, recurrent_kernel) + bias
            z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
            c = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_c)
            return tf.sigmoid(z_o) * tf.tanh(c), c

        hs, cs = tf.scan(step, steps_first, (init_h, init_c))
        outputs = tf.transpose(hs, (1, 0, 2))  # (batch, time, units)
        return outputs[:, -1], outputs, hs[-1], cs[-1], tf.constant(0.0)

    return standard_lstm


def _reset_weights(cell):
    """The kernel with one extra input row that zeroes the state, and the input value.

    The row holds, for the input and forget gate columns, the largest
    absolute kernel entry of that column, so that dynamic-range quantization
    (per tensor or per output channel) keeps the scales of the original
    weights.
    """
    with tf.init_scope():  # read the current weights eagerly, also while tracing
        kernel = np.asarray(cell.kernel.value.numpy(), np.float32)
    units = cell.units
    column_max = np.abs(kernel).max(axis=0)  # (4 * units,)
    column_max[column_max == 0] = 1.0
    row = np.zeros((1, 4 * units), np.float32)
    row[0, : 2 * units] = column_max[: 2 * units]  # gates i and f
    value = -RESET_MAGNITUDE / float(column_max[: 2 * units].min())
    return np.concatenate([kernel, row], axis=0), np.float32(value)


def _statically_zero(states):
    """Whether every state is a constant zero tensor in the graph (the layer's
    own zero initial states with a static batch size)."""
    for state in states:
        value = tf.get_static_value(state)
        if value is None or np.any(value != 0):
            return False
    return True


def fused_lstm(cell, sequences, initial_states, mask=None, go_backwards=False):
    """One LSTM direction as the fusable LiteRT function, with Keras semantics.

    Returns `(last_output, outputs, final_states)` like `kzoo.backend.fused_rnn`,
    or None where the fused op cannot compute the call (a dynamic batch, or
    initial states that are not zeros). The final states are not computed
    (the fused op returns none): `lowered` uses this only for layers that
    neither return nor keep their states (see `_layout.fusable`).

    - State: the fused op keeps its state in interpreter variables between
      `invoke()` calls. A leading reset step (an extra input feature set
      only there, with weights that drive the input and forget gates to 0)
      makes every call start from zero state, so the file is stateless.
    - Masks: the fused op has no mask input. The valid steps of every
      sequence are gathered to the front in order (a stable `TOPK_V2` on
      the mask), run, and gathered back: the output at a masked step is the
      last valid output (zeros before the first), exactly as Keras.
    - `go_backwards`: the (masked) sequence is reversed first; outputs stay
      in processing order, as in Keras.
    """
    batch = sequences.shape[0]
    if batch is None or not _statically_zero(initial_states):
        return None
    lstm = _fused_lstm_function()
    x = tf.convert_to_tensor(sequences)  # (batch, time, features)
    # The feature width can be unknown in the graph (e.g. after a
    # reshape); the cell's kernel fixes it, and the fused op needs it.
    features = int(cell.kernel.shape[0])
    x = tf.reshape(x, (batch, -1, features))  # a RESHAPE op; no shape assertion op
    if mask is not None:
        mask = tf.cast(mask, tf.bool)
    if go_backwards:
        x = tf.reverse(x, [1])
        mask = None if mask is None else tf.reverse(mask, [1])
    if mask is not None:
        steps = tf.shape(x)[1]
        key = tf.cast(mask, tf.int32) * steps + (steps - 1 - tf.range(steps))
        order = tf.math.top_k(key, k=steps).indices  # valid steps first, in order
        x = tf.gather(x, order, batch_dims=1)
    kernel, reset_value = _reset_weights(cell)
    x = tf.concat([x, tf.zeros_like(x[:, :, :1])], axis=-1)  # (batch, time, features + 1)
    reset_step = tf.concat(
        [tf.zeros((batch, 1, features), x.dtype), tf.fill((batch, 1, 1), reset_value)],
        axis=-1,
    )
    x = tf.concat([reset_step, x], axis=1)  # (batch, 1 + time, features + 1)
    bias = (
        tf.convert_to_tensor(cell.bias) if cell.use_bias else tf.zeros((4 * cell.units,), x.dtype)
    )
    zeros = tf.zeros((batch, cell.units), x.dtype)
    _, outputs, _, _, _ = lstm(
        x, zeros, zeros, tf.constant(kernel), tf.convert_to_tensor(cell.recurrent_kernel), bias
    )
    outputs = outputs[:, 1:]  # drop the reset step
    if mask is not None:
        seen = tf.cumsum(tf.cast(mask, tf.int32), axis=1)  # valid steps so far
        gathered = tf.gather(outputs, tf.maximum(seen - 1, 0), batch_dims=1)
        outputs = tf.where(seen[:, :, None] > 0, gathered, tf.zeros_like(gathered))
    last = outputs[:, -1]
    return last, outputs, [last, tf.zeros_like(last)]


def unrolled_rnn(step_fn, inputs, initial_states, initial_output, mask=None, go_backwards=False):
    """`kzoo.backend.rnn` with one copy of the step per time step."""
    steps = inputs.shape[1]
    if steps is None:
        raise ValueError(
            "Unrolling needs a fixed sequence length: pass `max_length` (or "
            "`chunk_length` for streaming) to the export."
        )
    states, output, outputs = initial_states, initial_output, []
    for t in reversed(range(steps)) if go_backwards else range(steps):
        mask_t = None if mask is None else keras.ops.cast(mask[:, t], "bool")
        output, states = step_with_mask(step_fn, inputs[:, t], mask_t, states, output)
        outputs.append(output)
    return output, keras.ops.stack(outputs, axis=1), states


def _decline(*args, **kwargs):
    raise NotImplementedError("exports lower the step loop")


def lowered(model, recurrent, stream_states=None, captured=None):
    """A context in which `model`'s recurrent layers lower as `recurrent` says.

    A `kzoo.backend.lowering` context (no function or layer is patched): the
    whole-sequence training kernels (custom gradients, XLA, dynamic-shape
    TensorArrays) do not lower to LiteRT builtins, so every layer runs its
    step loop, except that with `recurrent="fused"` each fusable LSTM layer
    becomes the LiteRT-fusable function (`fused_lstm`). With `"unroll"`, or
    for a streaming export, the loop is unrolled. The backend recognises a
    layer by the `key` it passes (`id(layer)`).

    Args:
        model: the model whose recurrent layers are lowered.
        recurrent: `"fused"`, `"loop"` or `"unroll"`.
        stream_states: for a streaming export, `{id(layer): [state tensors]}`:
            each layer starts from these instead of its own initial states.
        captured: for a streaming export, a dict that receives
            `{id(layer): final states}`.
    """
    layers = {id(layer): layer for layer in recurrent_layers(model)}
    fusing = {
        key
        for key, layer in layers.items()
        if stream_states is None and recurrent == "fused" and fusable(layer)
    }
    unroll = recurrent == "unroll" or stream_states is not None

    def fused_rnn(
        spec, sequences, initial_states, mask=None, go_backwards=False, training=False, key=None
    ):
        if key in fusing and spec.kind == "lstm" and spec.input_mask is None:
            result = fused_lstm(layers[key].cell, sequences, initial_states, mask, go_backwards)
            if result is not None:
                return result
        raise NotImplementedError("exports lower the step loop")

    def rnn(
        step_fn, inputs, initial_states, initial_output, mask=None, go_backwards=False, key=None
    ):
        if stream_states is not None and key in stream_states:
            initial_states = list(stream_states[key])
        result = unrolled_rnn(step_fn, inputs, initial_states, initial_output, mask, go_backwards)
        if captured is not None and key is not None:
            captured[key] = list(result[2])
        return result

    return kzoo_backend.lowering(
        fused_rnn=fused_rnn,
        fused_bidirectional_rnn=_decline,
        rnn=rnn if unroll else None,
    )


def input_specs(model, batch_size=None, time_steps=None):
    """`tf.TensorSpec`s of the model's inputs with batch/time dimensions set."""
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError(
            "Export needs a model with known inputs (a functional or Sequential model, "
            "or a subclassed model built by calling it on `keras.Input`s). "
            f"{type(model).__name__} has none."
        )
    names = unique([identifier(x.name) for x in inputs])
    specs = []
    for name, x in zip(names, inputs):
        shape = list(x.shape)
        shape[0] = batch_size
        if time_steps is not None and len(shape) >= 2:
            if shape[1] not in (None, time_steps):
                raise ValueError(
                    f"Input {name!r} has a fixed time dimension {shape[1]}, but the export "
                    f"asked for {time_steps} steps."
                )
            shape[1] = time_steps
        specs.append(tf.TensorSpec(shape, tf.as_dtype(x.dtype), name=name))
    return specs


def _call_model(model, args):
    outputs = model(structured_inputs(model, args), training=False)
    return {f"output_{i}": y for i, y in enumerate(keras.tree.flatten(outputs))}


def serving_function(model, specs, recurrent):
    """The `tf.function` that runs `model` on whole sequences."""

    def serve(*args):
        with lowered(model, recurrent):
            return _call_model(model, args)

    return tf.function(serve, input_signature=specs, autograph=False)


def streaming_function(model, specs):
    """The `tf.function` that runs one chunk with explicit recurrent states.

    Signature: the model inputs (time dimension = chunk length) and one
    `(batch, n)` input per recurrent state -> the model outputs and the new
    states, named `new_<state name>`.
    """
    layout = streaming_layout(model)
    batch = specs[0].shape[0]
    state_specs = [
        tf.TensorSpec((batch, size), tf.float32, name=name)
        for layer, names, sizes in layout
        for name, size in zip(names, sizes)
    ]
    n_inputs = len(specs)

    def step(*args):
        states = list(args[n_inputs:])
        stream_states, k = {}, 0
        for layer, names, _ in layout:
            stream_states[id(layer)] = states[k : k + len(names)]
            k += len(names)
        captured = {}
        with lowered(model, "unroll", stream_states=stream_states, captured=captured):
            outputs = _call_model(model, args[:n_inputs])
        for layer, names, _ in layout:
            if id(layer) not in captured:
                raise ValueError(f"Recurrent layer {layer.name!r} was not called by the model.")
            for name, state in zip(names, captured[id(layer)]):
                outputs[f"new_{name}"] = state
        return outputs

    function = tf.function(step, input_signature=[*specs, *state_specs], autograph=False)
    return function, [spec.name for spec in state_specs], [spec.shape[-1] for spec in state_specs]


def save_module(model, functions, path):
    """Writes a SavedModel with one signature per `(name, tf.function)`."""
    module = tf.Module()
    module.model_variables = [v.value for v in model.variables]
    signatures = {}
    for name, function in functions.items():
        setattr(module, identifier(name), function)
        signatures[name] = function.get_concrete_function()
    tf.saved_model.save(module, str(path), signatures=signatures)


def convert_litert(saved_model_dir, signature_keys, quantize=None):
    """Converts a SavedModel to LiteRT bytes with builtin ops only."""
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=list(signature_keys)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        return converter.convert()
    except Exception as error:  # the converter raises ConverterError and others
        message = str(error).strip().splitlines()
        detail = next(
            (line for line in message if "error:" in line), message[-1] if message else ""
        )
        raise RuntimeError(
            "LiteRT conversion with builtin ops only failed (kzoo never falls back to Flex/"
            "SELECT_TF_OPS, which the stock interpreter cannot run). A recurrent loop over a "
            "dynamic batch needs TensorFlow ops: give `batch_size`, or use "
            f"`recurrent='unroll'` with `max_length`. Converter error: {detail}"
        ) from error


def convert_onnx(function, specs, path, opset=17):
    """Converts a `tf.function` to ONNX with tf2onnx."""
    try:
        import tf2onnx
    except ImportError as error:
        raise ImportError("ONNX export needs `tf2onnx` (pip install tf2onnx onnx).") from error
    model_proto, _ = tf2onnx.convert.from_function(
        function, input_signature=specs, opset=opset, output_path=str(path)
    )
    return model_proto
