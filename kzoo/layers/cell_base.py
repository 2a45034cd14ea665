"""The pieces every kzoo gated cell shares: arguments, weights, config."""

import keras
from keras import ops

from kzoo.backend.spec import CellSpec
from kzoo.layers.recurrent_dropout import RecurrentDropoutMixin
from kzoo.utils.validation import check_rate, check_units


class RecurrentCell(RecurrentDropoutMixin, keras.layers.Layer):
    """Base class of `SimpleRNNCell`, `LSTMCell` and `GRUCell`.

    Subclasses set `num_gates` and implement `bias_shape()` and `call()`. The
    weights `kernel (input_dim, num_gates * units)`, `recurrent_kernel
    (units, num_gates * units)` and `bias` have the names, shapes and creation
    order of the matching `keras.layers` cells, so `get_weights()` moves 1:1.

    User-written cells do not need this class: `kzoo.layers.RNN` runs any
    layer with `state_size`, `output_size`, `get_initial_state(batch_size)`
    and `call(inputs, states, training=False)`.

    Weight drop (`recurrent_weight_dropout`, the DropConnect of AWD-LSTM):
    in training every call of the recurrent layer draws one Bernoulli mask
    `M` of the shape of `recurrent_kernel`, shared by all sequences of the
    batch and all time steps, and the cell runs with

        U' = U * M / (1 - p)

    in place of `U`. The dropped kernel enters the `CellSpec`, so the fused
    kernels of every backend run it unchanged; gradients reach `U` through
    the product. In inference `U` is used as it is.
    """

    num_gates = 1
    _recurrent_weight_mask = None
    _dropped_recurrent_kernel = None

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        recurrent_weight_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_units(units)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.dropout = check_rate(dropout, "dropout")
        self.recurrent_dropout = check_rate(recurrent_dropout, "recurrent_dropout")
        self.recurrent_weight_dropout = check_rate(
            recurrent_weight_dropout, "recurrent_weight_dropout"
        )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.input_dim = None

    @property
    def state_size(self):
        # An int, as in keras.layers.SimpleRNNCell/GRUCell: a stack of such
        # cells keeps one tensor (not a list of one) per cell.
        return self.units

    @property
    def output_size(self):
        return self.units

    def bias_shape(self):
        return (self.num_gates * self.units,)

    def bias_initializer_for_build(self):
        return self.bias_initializer

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} expects one time step of shape "
                f"(batch, features) with known features. Received: {input_shape}"
            )
        self.input_dim = int(input_shape[-1])
        width = self.num_gates * self.units
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.input_dim, width),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel",
            shape=(self.units, width),
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=self.bias_shape(),
                initializer=self.bias_initializer_for_build(),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.build_extra_weights()

    def build_extra_weights(self):
        """Hook for weights created after `kernel`, `recurrent_kernel`, `bias`."""

    # -- weight drop ---------------------------------------------------------

    def prepare_dropout_masks(self, step_inputs, state, training=False):
        super().prepare_dropout_masks(step_inputs, state, training)
        if training and self.recurrent_weight_dropout > 0:
            # Drawn after the input and state masks, from the same seed
            # generator, so the fused and the reference paths draw alike.
            self._recurrent_weight_mask = self._draw_recurrent_weight_mask()
            # Formed once per call, not at every step of the generic loop.
            self._dropped_recurrent_kernel = self._apply_weight_mask(
                self._compute_recurrent_kernel(), self._recurrent_weight_mask
            )

    def reset_dropout_masks(self):
        super().reset_dropout_masks()
        # Only when set: each assignment goes through Keras's attribute
        # tracking, which eager torch would pay at every call.
        if self._recurrent_weight_mask is not None:
            self._recurrent_weight_mask = None
            self._dropped_recurrent_kernel = None

    def _draw_recurrent_weight_mask(self):
        ones = ops.ones(tuple(self.recurrent_kernel.shape), dtype=self.compute_dtype)
        # Inverted dropout: the kept entries are scaled by 1 / (1 - p).
        return keras.random.dropout(
            ones, rate=self.recurrent_weight_dropout, seed=self.seed_generator
        )

    def _compute_recurrent_kernel(self):
        # Called outside the cell's own `__call__` (no autocast there).
        return ops.cast(self.recurrent_kernel, self.compute_dtype)

    @staticmethod
    def _apply_weight_mask(kernel, mask):
        kernel = ops.convert_to_tensor(kernel)
        return kernel * ops.cast(mask, kernel.dtype)

    def recurrent_kernel_for_call(self, training=False):
        """The recurrent kernel the current call computes with.

        `recurrent_kernel` itself in inference or without weight drop; in
        training with `recurrent_weight_dropout > 0` the kernel times the mask
        drawn for this call by the recurrent layer (a cell called by hand,
        outside `kzoo.layers.RNN`, draws a fresh mask at each call).
        """
        if not training or self.recurrent_weight_dropout == 0:
            return self.recurrent_kernel
        if self._dropped_recurrent_kernel is not None:
            return self._dropped_recurrent_kernel
        mask = self._draw_recurrent_weight_mask()
        return self._apply_weight_mask(self._compute_recurrent_kernel(), mask)

    def _fused_kind(self):
        """The `kzoo.backend.CellSpec` kind whose equations are exactly this
        cell's, or None; each kzoo cell class answers for itself only (a
        subclass may change `call`)."""
        return None

    def fused_spec(self, training=False, use_cudnn="auto"):
        """This cell described for the backend's whole-sequence kernels.

        The layer hands the spec to `kzoo.backend.fused_rnn`; the backend
        sees tensors and names only, never the cell.

        Args:
            training: whether dropout is active. The input dropout mask drawn
                for the current sequence (by the recurrent layer, before its
                loop) travels in the spec; recurrent dropout has no fused
                kernel.
            use_cudnn: the layer's `use_cudnn` ("auto", True or False).

        Returns:
            A `kzoo.backend.CellSpec`, or None when no fused kernel computes
            this cell (the generic loop runs it).
        """
        kind = self._fused_kind()
        if kind is None or not self.built:
            return None
        if training and self.recurrent_dropout > 0:
            return None
        input_mask = None
        if training and self.dropout > 0:
            # The mask drawn for this sequence: Keras's DropoutRNNCell keeps it
            # in `_dropout_mask`, kzoo's RecurrentDropoutMixin in `_input_mask`.
            input_mask = getattr(self, "_dropout_mask", None)
            if input_mask is None:
                input_mask = getattr(self, "_input_mask", None)
            if input_mask is None:
                return None
        weight_mask = None
        if training and self.recurrent_weight_dropout > 0:
            # The weight-drop mask drawn for this call; a caller that drew
            # none (a wrapper asking ahead of the loop) gets the generic loop.
            weight_mask = self._recurrent_weight_mask
            if weight_mask is None:
                return None
        weights = [self.kernel, self.recurrent_kernel] + ([self.bias] if self.use_bias else [])
        # `.value`: autocast inside `__call__`, the mapped value in a
        # StatelessScope; a tensor, not the variable, on every backend.
        tensors = [ops.convert_to_tensor(w.value) for w in weights]
        recurrent_kernel = tensors[1]
        if weight_mask is not None:
            # Dropped before the kernel runs: the backends see a plain spec.
            recurrent_kernel = self._apply_weight_mask(recurrent_kernel, weight_mask)
        return CellSpec(
            kind=kind,
            units=self.units,
            kernel=tensors[0],
            recurrent_kernel=recurrent_kernel,
            bias=tensors[2] if self.use_bias else None,
            activation=activation_name(self.activation),
            input_mask=input_mask,
            use_cudnn=use_cudnn,
        )

    def check_step_inputs(self, inputs):
        features = inputs.shape[-1]
        if self.input_dim is not None and features is not None and features != self.input_dim:
            raise ValueError(
                f"{self.name} was built for {self.input_dim} input features but "
                f"received inputs with {features} features (shape {inputs.shape})."
            )

    def get_initial_state(self, batch_size=None):
        sizes = self.state_size if isinstance(self.state_size, list) else [self.state_size]
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in sizes]

    def get_config(self):
        ser = keras.saving.serialize_keras_object
        config = {
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": ser(self.kernel_initializer),
            "recurrent_initializer": ser(self.recurrent_initializer),
            "bias_initializer": ser(self.bias_initializer),
            "kernel_regularizer": ser(self.kernel_regularizer),
            "recurrent_regularizer": ser(self.recurrent_regularizer),
            "bias_regularizer": ser(self.bias_regularizer),
            "kernel_constraint": ser(self.kernel_constraint),
            "recurrent_constraint": ser(self.recurrent_constraint),
            "bias_constraint": ser(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "recurrent_weight_dropout": self.recurrent_weight_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


def activation_name(fn):
    """`"tanh"`, `"relu"` or `"sigmoid"` for Keras's functions, else None."""
    for name in ("tanh", "relu", "sigmoid"):
        if fn is getattr(keras.activations, name):
            return name
    return None


def layer_norm(x, gamma, beta=None, epsilon=1e-5):
    """Normalizes the last axis of `x`, then scales by `gamma` and shifts by `beta`."""
    mean = ops.mean(x, axis=-1, keepdims=True)
    variance = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
    normed = (x - mean) * ops.rsqrt(variance + epsilon) * gamma
    return normed if beta is None else normed + beta
