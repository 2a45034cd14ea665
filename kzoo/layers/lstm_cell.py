"""Long short-term memory cell."""

import keras
from keras import ops

from kzoo.layers.cell_base import RecurrentCell, activation_name, layer_norm
from kzoo.utils.serialization import register_serializable


@register_serializable
class LSTMCell(RecurrentCell):
    """LSTM cell with forget-gate bias initialised to one.

    With z = x_t W + h_{t-1} U + b split into gates (i, f, c, o):

        i = sigma(z_i), f = sigma(z_f), o = sigma(z_o), g = tanh(z_c)
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

    With `layer_norm=True` (Ba et al., 2016) the two projections are
    normalized before the bias is added and the cell state is normalized
    before the output activation:

        z = LN(x_t W; gamma_x) + LN(h_{t-1} U; gamma_h) + b
        h_t = o * tanh(LN(c_t; gamma_c, beta_c))

    Weights match `keras.layers.LSTMCell` (gate order i, f, c, o):
    `kernel (d, 4h)`, `recurrent_kernel (h, 4h)`, `bias (4h,)`; parameter
    count `4(d*h + h^2 + h)`. `torch.nn.LSTM` uses gates (i, f, g, o), the
    same order, with `weight_ih = kernel.T` and `bias = bias_ih + bias_hh`.

    Args:
        units: positive int, size of `h` and `c`.
        activation: activation for the candidate and output. Default `"tanh"`.
        recurrent_activation: activation for the gates. Default `"sigmoid"`.
        use_bias: whether to add `bias`.
        unit_forget_bias: if True (default), the forget-gate slice of the bias
            starts at 1 (Jozefowicz et al., 2015), the rest from
            `bias_initializer`.
        implementation: accepted for `keras.layers` compatibility (1 or 2;
            the results are the same).
        layer_norm: whether to layer-normalize as described above.
        kernel_initializer, recurrent_initializer, bias_initializer,
        regularizers, constraints, dropout, recurrent_dropout,
        recurrent_weight_dropout, seed:
            as in `kzoo.layers.SimpleRNNCell`.

    Call arguments:
        inputs: `(batch, features)`, one time step.
        states: `[h, c]`, each `(batch, units)`.
        training: whether dropout is active.

    Returns:
        `(h_t, [h_t, c_t])`.

    Example:

    >>> layer = kzoo.layers.RNN(kzoo.layers.LSTMCell(16))
    >>> layer(np.ones((4, 7, 3))).shape
    (4, 16)

    Reference:
        Hochreiter & Schmidhuber, 1997; Gers et al., 2000.
    """

    num_gates = 4

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        unit_forget_bias=True,
        layer_norm=False,
        implementation=2,
        **kwargs,
    ):
        super().__init__(units, activation=activation, use_bias=use_bias, **kwargs)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias
        self.layer_norm = layer_norm
        # Keras's choice between batched (2) and per-gate (1) matrix
        # products; the same equations either way, so only kept (not
        # serialized, as in Keras) for code that reads it.
        self.implementation = implementation

    @property
    def state_size(self):
        return [self.units, self.units]

    def bias_initializer_for_build(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        units, base = self.units, self.bias_initializer

        def forget_bias_one(shape, dtype=None):
            return ops.concatenate(
                [
                    base((units,), dtype=dtype),
                    ops.ones((units,), dtype=dtype),
                    base((2 * units,), dtype=dtype),
                ]
            )

        return forget_bias_one

    def build_extra_weights(self):
        if not self.layer_norm:
            return
        width = 4 * self.units
        self.input_norm_gamma = self.add_weight(
            name="input_norm_gamma", shape=(width,), initializer="ones"
        )
        self.recurrent_norm_gamma = self.add_weight(
            name="recurrent_norm_gamma", shape=(width,), initializer="ones"
        )
        self.cell_norm_gamma = self.add_weight(
            name="cell_norm_gamma", shape=(self.units,), initializer="ones"
        )
        self.cell_norm_beta = self.add_weight(
            name="cell_norm_beta", shape=(self.units,), initializer="zeros"
        )

    def _fused_kind(self):
        plain = (
            type(self) is LSTMCell
            and not self.layer_norm
            and activation_name(self.activation) == "tanh"
            and activation_name(self.recurrent_activation) == "sigmoid"
        )
        return "lstm" if plain else None

    def call(self, inputs, states, training=False):
        self.check_step_inputs(inputs)
        h_prev, c_prev = states[0], states[1]
        x = self._dropout_inputs(inputs, training)
        h_in = self._dropout_state(h_prev, training)
        x_proj = ops.matmul(x, self.kernel)  # (batch, 4 * units)
        h_proj = ops.matmul(h_in, self.recurrent_kernel_for_call(training))
        if self.layer_norm:
            x_proj = layer_norm(x_proj, self.input_norm_gamma)
            h_proj = layer_norm(h_proj, self.recurrent_norm_gamma)
        z = x_proj + h_proj
        if self.use_bias:
            z = z + self.bias
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        o = self.recurrent_activation(z_o)
        c = f * c_prev + i * self.activation(z_c)
        c_out = layer_norm(c, self.cell_norm_gamma, self.cell_norm_beta) if self.layer_norm else c
        h = o * self.activation(c_out)
        return h, [h, c]

    def get_config(self):
        config = super().get_config()
        config.update(
            recurrent_activation=keras.activations.serialize(self.recurrent_activation),
            unit_forget_bias=self.unit_forget_bias,
            layer_norm=self.layer_norm,
        )
        return config
