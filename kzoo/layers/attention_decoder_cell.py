"""A recurrent cell that attends over a memory at every step (Luong style)."""

import keras
from keras import ops

from kzoo.utils.serialization import register_serializable


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _optional_units(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be None or a positive integer. Received: {name}={value!r}")
    return value


@register_serializable
class AttentionDecoderCell(keras.layers.Layer):
    """Wraps a recurrent cell so that each step attends over a memory.

    One step, with inner cell $f$, attention $\\mathrm{att}$, step input
    $x_t$ and the previous attentional output $\\tilde h_{t-1}$:

    $$h_t, s_t = f([x_t; \\tilde h_{t-1}], s_{t-1})
      \\quad (\\text{or } f(x_t, s_{t-1}) \\text{ without input feeding})$$
    $$c_t, a_t = \\mathrm{att}(h_t, \\text{memory}, \\text{mask})$$
    $$\\tilde h_t = \\tanh([h_t; c_t] W_c)
      \\quad (\\text{or } \\tilde h_t = c_t \\text{ if attention_layer_size is None})$$

    The step output is $\\tilde h_t$, or $[\\tilde h_t; a_t]$ with
    `alignment_history=True`.

    States: the inner cell's states followed by $\\tilde h_{t-1}$, of width
    `attention_layer_size`, or `memory_dim` when it is None. The weight
    $W_c$ is `attention_kernel (cell_output_dim + memory_dim,
    attention_layer_size)` (rows for $h_t$ first, no bias).

    Sizes: `state_size` and `output_size` must be plain ints before the cell
    runs. They need `memory_dim` when `attention_layer_size` is None, and
    `memory_length` with `alignment_history=True`. Give them to the
    constructor, or build the cell with `build(inputs_shape, memory_shape)`
    (calling the cell on a memory does this on the first call).

    Alignment history: with `alignment_history=True` every step output is
    `concat([attentional, alignments])`, so a recurrent layer with
    `return_sequences=True` returns `(batch, steps, width + memory_length)`;
    `split_outputs(outputs)` cuts it back into `(attentional, alignments)`.
    This needs a memory length fixed when the cell is built (pad memories to
    it and mask the padding).

    Args:
        cell: a recurrent cell with `state_size`, `output_size`,
            `get_initial_state(batch_size)` and `call(inputs, states,
            training=False)` (e.g. `kzoo.layers.LSTMCell`,
            `keras.layers.LSTMCell`). Its output is the attention query.
        attention: an attention layer called as `attention(query, memory,
            mask=..., projected_keys=...)` that returns `(context, weights)`
            and has `project_keys(memory)` (`BahdanauAttention`,
            `LuongAttention`).
        attention_layer_size: None or positive int, width of $W_c$.
        input_feeding: bool, whether the previous attentional output is
            concatenated to the step input.
        alignment_history: bool, whether step outputs carry the alignments.
        memory_dim: optional int, the memory's last dimension, for
            `state_size` before the cell is built.
        memory_length: optional int, the memory's time length, needed for
            `output_size` with `alignment_history=True` before the cell is
            built.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(batch, input_dim)`, one step.
        states: list of tensors, as `get_initial_state` returns.
        training: bool, passed to the inner cell.
        memory: `(batch, time, memory_dim)`, required (keyword constant).
        memory_mask: optional `(batch, time)` boolean or 0/1, true on valid
            memory positions; values at the other positions (even NaN) never
            reach the outputs. A fully masked row gives a zero context.
        projected_keys: optional `attention.project_keys(memory)`, so the key
            projection is computed once per sequence; see
            `prepare_constants`.

    Returns:
        `(output, new_states)`: `output` is `(batch, output_size)`.

    Example:

    >>> cell = AttentionDecoderCell(
    ...     keras.layers.LSTMCell(32), LuongAttention(score="general"),
    ...     attention_layer_size=32)
    >>> memory = np.random.rand(4, 9, 16).astype("float32")
    >>> states = cell.get_initial_state(4)
    >>> constants = cell.prepare_constants(memory)  # builds the cell if needed
    >>> for x in np.random.rand(5, 4, 8).astype("float32"):
    ...     y, states = cell(x, states, **constants)  # y: (4, 32)

    Reference:
        Luong, Pham, Manning, "Effective Approaches to Attention-based Neural
        Machine Translation", EMNLP 2015 (input feeding, attentional layer).
        Bahdanau, Cho, Bengio, "Neural Machine Translation by Jointly
        Learning to Align and Translate", ICLR 2015.
    """

    def __init__(
        self,
        cell,
        attention,
        attention_layer_size=None,
        input_feeding=True,
        alignment_history=False,
        memory_dim=None,
        memory_length=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name in ("state_size", "output_size"):
            if name not in dir(cell):
                raise ValueError(
                    f"`cell` must be a recurrent cell with `{name}`. Received: cell={cell!r}"
                )
        if "project_keys" not in dir(attention):
            raise ValueError(
                "`attention` must be an attention layer with `project_keys` "
                f"(BahdanauAttention, LuongAttention). Received: attention="
                f"{attention!r}"
            )
        for name, value in (
            ("input_feeding", input_feeding),
            ("alignment_history", alignment_history),
        ):
            if not isinstance(value, bool):
                raise ValueError(f"`{name}` must be a bool. Received: {name}={value!r}")
        self.cell = cell
        self.attention = attention
        self.attention_layer_size = _optional_units(attention_layer_size, "attention_layer_size")
        self.input_feeding = input_feeding
        self.alignment_history = alignment_history
        self.memory_dim = _optional_units(memory_dim, "memory_dim")
        self.memory_length = _optional_units(memory_length, "memory_length")

    # --- sizes ------------------------------------------------------------

    def _inner_state_size(self):
        return _as_list(self.cell.state_size)

    def _attentional_size(self):
        if self.attention_layer_size is not None:
            return self.attention_layer_size
        if self.memory_dim is None:
            raise ValueError(
                f"{self.name}: the state width is the memory dimension when "
                "attention_layer_size is None, and it is not known yet. Pass "
                "`memory_dim=` to the constructor or build the cell with "
                "`build(inputs_shape, memory_shape)`."
            )
        return self.memory_dim

    @property
    def state_size(self):
        return self._inner_state_size() + [self._attentional_size()]

    @property
    def output_size(self):
        size = self._attentional_size()
        if self.alignment_history:
            if self.memory_length is None:
                raise ValueError(
                    f"{self.name}: alignment_history=True needs the memory "
                    "length. Pass `memory_length=` to the constructor or build "
                    "the cell with `build(inputs_shape, memory_shape)`."
                )
            size += self.memory_length
        return size

    def get_initial_state(self, batch_size=None):
        if hasattr(self.cell, "get_initial_state"):
            inner = _as_list(self.cell.get_initial_state(batch_size=batch_size))
        else:
            inner = [
                ops.zeros((batch_size, size), dtype=self.compute_dtype)
                for size in self._inner_state_size()
            ]
        attentional = ops.zeros((batch_size, self._attentional_size()), dtype=self.compute_dtype)
        return inner + [attentional]

    # --- build ------------------------------------------------------------

    def _resolve(self, name, value, from_memory):
        if from_memory is None:
            return value
        from_memory = int(from_memory)
        if value is not None and value != from_memory:
            raise ValueError(
                f"{self.name} was given {name}={value} but the memory has {name}={from_memory}."
            )
        return from_memory

    def build(self, inputs_shape, memory_shape=None):
        if len(inputs_shape) != 2 or inputs_shape[-1] is None:
            raise ValueError(
                f"{self.name} expects one step of shape (batch, features) with "
                f"known features. Received inputs shape {tuple(inputs_shape)}."
            )
        if memory_shape is not None:
            if len(memory_shape) != 3:
                raise ValueError(
                    f"{self.name} expects a memory of rank 3 (batch, time, "
                    f"memory_dim). Received memory shape {tuple(memory_shape)}."
                )
            self.memory_dim = self._resolve("memory_dim", self.memory_dim, memory_shape[2])
            if self.alignment_history:
                # Only the alignment outputs tie the cell to one memory length.
                self.memory_length = self._resolve(
                    "memory_length", self.memory_length, memory_shape[1]
                )
        if self.memory_dim is None:
            raise ValueError(
                f"{self.name} cannot create its weights without the memory "
                "dimension: pass `memory_dim=` to the constructor or build with "
                "`build(inputs_shape, memory_shape)`."
            )
        if self.alignment_history and self.memory_length is None:
            raise ValueError(
                f"{self.name}: alignment_history=True needs a known memory "
                "length: pass `memory_length=` to the constructor or build with "
                "a memory shape whose time dimension is known."
            )
        batch = inputs_shape[0]
        width = self._attentional_size()
        cell_inputs = int(inputs_shape[-1]) + (width if self.input_feeding else 0)
        if not self.cell.built:
            self.cell.build((batch, cell_inputs))
        query_dim = self.cell.output_size
        if not self.attention.built:
            self.attention.build((batch, query_dim), (batch, self.memory_length, self.memory_dim))
        if self.attention_layer_size is not None:
            self.attention_kernel = self.add_weight(
                name="attention_kernel",
                shape=(query_dim + self.memory_dim, self.attention_layer_size),
                initializer="glorot_uniform",
            )

    # --- step -------------------------------------------------------------

    def prepare_constants(self, memory, memory_mask=None):
        """Returns the keyword constants for every step, with the keys projected once.

        The result is `{"memory": ..., "memory_mask": ..., "projected_keys":
        ...}`, ready for `cell(x, states, **constants)` or for a recurrent
        layer's `constants=`. Builds the attention layer from the memory's
        shape if it has no weights yet. Masked memory rows are replaced by
        zeros once here, so NaN or Inf in them never reaches a step.
        """
        if not self.attention.built:
            self.attention.build((None, self.cell.output_size), tuple(memory.shape))
        if memory_mask is not None:
            valid = ops.expand_dims(ops.cast(memory_mask, "bool"), -1)  # (batch, time, 1)
            memory = ops.where(valid, memory, ops.zeros_like(memory))
        constants = {
            "memory": memory,
            "projected_keys": self.attention.project_keys(memory),
        }
        if memory_mask is not None:
            constants["memory_mask"] = memory_mask
        return constants

    def call(
        self,
        inputs,
        states,
        training=False,
        memory=None,
        memory_mask=None,
        projected_keys=None,
    ):
        if memory is None:
            raise ValueError(
                f"{self.name} needs the attention memory: call it with "
                "`memory=` (a recurrent layer passes it through `constants`)."
            )
        states = _as_list(states)
        num_inner = len(self._inner_state_size())
        if len(states) != num_inner + 1:
            raise ValueError(
                f"{self.name} expects {num_inner + 1} states (the inner cell's "
                f"{num_inner} and the previous attentional output). Received "
                f"{len(states)}."
            )
        length = memory.shape[1]
        if self.alignment_history and length not in (None, self.memory_length):
            raise ValueError(
                f"{self.name} was built for memory_length={self.memory_length} "
                f"(alignment_history=True) but received memory shape "
                f"{tuple(memory.shape)}."
            )
        inner_states, previous = states[:num_inner], states[num_inner]
        if self.input_feeding:
            cell_inputs = ops.concatenate([inputs, previous], axis=-1)
        else:
            cell_inputs = inputs
        query, new_inner = self.cell(cell_inputs, inner_states, training=training)
        new_inner = _as_list(new_inner)
        context, alignments = self.attention(
            query, memory, mask=memory_mask, projected_keys=projected_keys
        )
        if self.attention_layer_size is not None:
            attentional = ops.tanh(
                ops.matmul(ops.concatenate([query, context], axis=-1), self.attention_kernel)
            )
        else:
            attentional = context
        output = attentional
        if self.alignment_history:
            output = ops.concatenate(
                [attentional, ops.cast(alignments, attentional.dtype)], axis=-1
            )
        return output, new_inner + [attentional]

    def split_outputs(self, outputs):
        """Splits outputs of an `alignment_history=True` cell.

        Args:
            outputs: step outputs `(..., width + memory_length)`, e.g. the
                `(batch, steps, ...)` sequence of a recurrent layer.

        Returns:
            `(attentional, alignments)` of last dimensions `width` and
            `memory_length`.
        """
        if not self.alignment_history:
            raise ValueError(
                f"{self.name}: split_outputs needs alignment_history=True; the "
                "outputs are already the attentional outputs."
            )
        width = self._attentional_size()
        return outputs[..., :width], outputs[..., width:]

    def get_config(self):
        config = {
            "cell": keras.saving.serialize_keras_object(self.cell),
            "attention": keras.saving.serialize_keras_object(self.attention),
            "attention_layer_size": self.attention_layer_size,
            "input_feeding": self.input_feeding,
            "alignment_history": self.alignment_history,
            "memory_dim": self.memory_dim,
            "memory_length": self.memory_length,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        config["attention"] = keras.saving.deserialize_keras_object(config["attention"])
        return cls(**config)
