"""Runs a recurrent layer in both directions and merges the results."""

import keras
from keras import ops

from kzoo import backend
from kzoo.layers.rnn import RNN
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_choice, check_mask_dtype

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _merge(forward, backward, mode):
    if mode == "concat":
        return ops.concatenate([forward, backward], axis=-1)
    if mode == "sum":
        return forward + backward
    if mode == "mul":
        return forward * backward
    if mode == "ave":
        return (forward + backward) / 2
    return [forward, backward]


def _copy(layer, prefix, go_backwards):
    config = keras.saving.serialize_keras_object(layer)
    name = layer.name.removeprefix(f"{prefix}_")
    config["config"].update(go_backwards=go_backwards, name=f"{prefix}_{name}")
    return keras.saving.deserialize_keras_object(config)


@register_serializable
class Bidirectional(keras.layers.Layer):
    """Bidirectional wrapper for recurrent layers.

    The backward layer reads the sequence from its end. With a right-padded
    mask it skips the padding first, so every sequence of a padded batch gets
    the same outputs and states as when run alone without padding. With
    `return_sequences`, the backward outputs are flipped back so that step
    `t` of both halves refers to input step `t`, and masked steps output
    zeros (as `keras.layers.Bidirectional` does).

    Args:
        layer: a recurrent layer (`kzoo.layers.RNN`, `LSTM`, `GRU`,
            `SimpleRNN`, or a Keras one with the same arguments). As in
            Keras, the wrapper runs a new layer made from its config
            (`forward_layer`), so wrapping one layer twice shares no weights;
            a built `layer` also hands its current weights to that copy.
        merge_mode: `"concat"` (default), `"sum"`, `"mul"`, `"ave"` or `None`
            (return `[forward, backward]`).
        backward_layer: optional layer for the backward direction (used as
            given); by default a new layer from `layer`'s config with
            `go_backwards` flipped.
        weights: optional list of arrays, the forward layer's weights then
            the backward layer's, set when the wrapper is built.
        **kwargs: `keras.layers.Layer` arguments (a `dtype` policy of its
            own applies to the merged outputs and states).

    Call arguments:
        sequences: `(batch, time, features)`.
        initial_state: optional list: forward states, then backward states.
        mask: optional `(batch, time)` boolean mask.
        training: whether dropout is active.

    Returns:
        The merged output; with `return_state=True` on the wrapped layer,
        followed by the forward states and then the backward states.

    Example:

    >>> bi = kzoo.layers.Bidirectional(kzoo.layers.LSTM(8, return_sequences=True))
    >>> bi(np.ones((2, 5, 3))).shape
    (2, 5, 16)
    """

    def __init__(self, layer, merge_mode="concat", backward_layer=None, weights=None, **kwargs):
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                f"`layer` must be a keras.layers.Layer instance. Received: layer={layer!r}"
            )
        for attribute in ("go_backwards", "return_sequences", "return_state"):
            if not hasattr(layer, attribute):
                raise ValueError(
                    f"`layer` must be a recurrent layer with a `{attribute}` attribute. "
                    f"Received: layer={layer!r}"
                )
        if backward_layer is not None and not isinstance(backward_layer, keras.layers.Layer):
            raise ValueError(
                "`backward_layer` must be a keras.layers.Layer instance. "
                f"Received: backward_layer={backward_layer!r}"
            )
        self.merge_mode = check_choice(merge_mode, MERGE_MODES, "merge_mode")
        super().__init__(**kwargs)
        # Both directions are new layers made from `layer`'s config, as in
        # Keras: wrapping one layer twice shares no weights. A built `layer`
        # hands its weights to the forward copy (e.g. converted weights).
        self.forward_layer = _copy(layer, "forward", go_backwards=layer.go_backwards)
        if layer.built:
            self.forward_layer.build(layer._build_shapes_dict.get("sequences_shape"))
            self.forward_layer.set_weights(layer.get_weights())
        if backward_layer is None:
            backward_layer = _copy(layer, "backward", go_backwards=not layer.go_backwards)
        self.backward_layer = backward_layer
        for direction in (self.forward_layer, self.backward_layer):
            if hasattr(layer, "use_cudnn"):
                # Not part of the config (as in Keras), so copied by hand.
                direction.use_cudnn = layer.use_cudnn
        if self.forward_layer.go_backwards == self.backward_layer.go_backwards:
            raise ValueError(
                "`backward_layer` must have the opposite `go_backwards` of `layer`. "
                f"Both have go_backwards={layer.go_backwards}."
            )
        for attribute in ("stateful", "return_sequences", "return_state"):
            forward_value = getattr(self.forward_layer, attribute, False)
            backward_value = getattr(self.backward_layer, attribute, False)
            if forward_value != backward_value:
                raise ValueError(
                    f"`backward_layer.{attribute}` must equal `layer.{attribute}` "
                    f"({forward_value}). Received: {backward_value}"
                )
        self._initial_weights = list(weights) if weights is not None else None
        if self._initial_weights is not None and len(self._initial_weights) % 2:
            raise ValueError(
                "`weights` must hold the forward layer's weights followed by the backward "
                f"layer's (an even count). Received {len(self._initial_weights)} arrays."
            )
        self.stateful = getattr(layer, "stateful", False)
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.supports_masking = True

    def __call__(self, *args, **kwargs):
        check_mask_dtype(kwargs.get("mask"), self.name)
        return super().__call__(*args, **kwargs)

    def build(self, sequences_shape, initial_state_shape=None):
        for layer in (self.forward_layer, self.backward_layer):
            if not layer.built:
                layer.build(sequences_shape)
        if self._initial_weights is not None:
            half = len(self._initial_weights) // 2
            self.forward_layer.set_weights(self._initial_weights[:half])
            self.backward_layer.set_weights(self._initial_weights[half:])
            self._initial_weights = None

    @property
    def states(self):
        """The kept states of a stateful layer: forward's, then backward's."""
        forward, backward = self.forward_layer.states, self.backward_layer.states
        if forward and backward:
            return tuple(list(forward) + list(backward))
        return None

    def reset_state(self):
        """Sets the kept states of both directions back to zeros."""
        if not self.stateful:
            raise AttributeError(f"{self.name}: reset_state() needs a stateful layer.")
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    def reset_states(self):
        """Alias of `reset_state()` (Keras keeps both names)."""
        self.reset_state()

    def _num_states(self):
        shape = self.forward_layer.compute_output_shape((None, None, None))
        return len(shape) - 1 if self.return_state else 0

    def call(self, sequences, initial_state=None, mask=None, training=False):
        forward_state = backward_state = None
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)):
                raise ValueError(
                    "`initial_state` must be a list: the forward states followed by the "
                    f"backward states. Received: initial_state={initial_state!r}"
                )
            if len(initial_state) % 2:
                raise ValueError(
                    "`initial_state` must hold the forward states followed by the "
                    f"backward states (an even count). Received {len(initial_state)} tensors."
                )
            half = len(initial_state) // 2
            forward_state, backward_state = (
                list(initial_state[:half]),
                list(initial_state[half:]),
            )
        fused = self._fused_call(sequences, forward_state, backward_state, mask, training)
        if fused is not None:
            forward, backward = fused  # backward outputs already aligned with the inputs
        else:
            forward = self.forward_layer(
                sequences, initial_state=forward_state, mask=mask, training=training
            )
            backward = self.backward_layer(
                sequences, initial_state=backward_state, mask=mask, training=training
            )
        forward_states = backward_states = []
        if self.return_state:
            forward, *forward_states = forward
            backward, *backward_states = backward
        if self.return_sequences:
            if fused is None:
                backward = ops.flip(backward, axis=1)
            if mask is not None:
                # As keras.layers.Bidirectional: padded steps output zeros.
                valid = ops.expand_dims(ops.cast(mask, "bool"), -1)
                forward = ops.where(valid, forward, ops.zeros_like(forward))
                backward = ops.where(valid, backward, ops.zeros_like(backward))
        # In the wrapper's own dtype (mixed precision: the wrapped layers may
        # compute in another one).
        forward, forward_states, backward, backward_states = keras.tree.map_structure(
            lambda t: ops.cast(t, self.compute_dtype),
            (forward, forward_states, backward, backward_states),
        )
        output = _merge(forward, backward, self.merge_mode)
        if self.return_state:
            outputs = output if self.merge_mode is None else [output]
            return [*outputs, *forward_states, *backward_states]
        return output

    def _fused_call(self, sequences, forward_state, backward_state, mask, training):
        """Both directions in one backend kernel call, or None where there is none.

        Only for two `kzoo.layers.RNN` layers reading in opposite directions;
        the backend declines (NotImplementedError) unless both cells are
        plain and alike and no dropout is active.
        """
        forward_layer, backward_layer = self.forward_layer, self.backward_layer
        if not (isinstance(forward_layer, RNN) and isinstance(backward_layer, RNN)):
            return None
        if forward_layer.go_backwards or not backward_layer.go_backwards:
            return None
        forward_inputs = forward_layer.fused_call_inputs(sequences, forward_state, mask, training)
        backward_inputs = backward_layer.fused_call_inputs(
            sequences, backward_state, mask, training
        )
        if forward_inputs is None or backward_inputs is None:
            return None
        forward_spec, sequences, mask, forward_states = forward_inputs
        backward_spec, _, _, backward_states = backward_inputs
        try:
            forward, backward = backend.fused_bidirectional_rnn(
                forward_spec,
                backward_spec,
                sequences,
                forward_states,
                backward_states,
                mask=mask,
                training=bool(training),
            )
        except NotImplementedError:
            return None
        return (
            forward_layer.fused_call_outputs(*forward),
            backward_layer.fused_call_outputs(*backward),
        )

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        shape = self.forward_layer.compute_output_shape(sequences_shape)
        state_shapes = []
        if self.return_state:
            shape, state_shapes = shape[0], list(shape[1:])
        if self.merge_mode == "concat":
            merged = [(*shape[:-1], shape[-1] * 2)]
        elif self.merge_mode is None:
            merged = [tuple(shape), tuple(shape)]
        else:
            merged = [tuple(shape)]
        if not self.return_state and len(merged) == 1:
            return merged[0]
        return merged + state_shapes + state_shapes

    def compute_mask(self, sequences, mask=None):
        output_mask = mask if self.return_sequences else None
        outputs = 2 if self.merge_mode is None else 1
        if not self.return_state and outputs == 1:
            return output_mask
        states = 2 * (self._num_states()) if self.return_state else 0
        return [output_mask] * outputs + [None] * states

    def get_config(self):
        config = {
            "layer": keras.saving.serialize_keras_object(self.forward_layer),
            "merge_mode": self.merge_mode,
            "backward_layer": keras.saving.serialize_keras_object(self.backward_layer),
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("layer", "backward_layer"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
