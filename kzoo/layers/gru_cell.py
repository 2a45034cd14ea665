"""Gated recurrent unit cell."""

import keras
from keras import ops

from kzoo.layers.cell_base import RecurrentCell, activation_name, layer_norm
from kzoo.utils.serialization import register_serializable


@register_serializable
class GRUCell(RecurrentCell):
    """GRU cell in the Keras/PyTorch convention.

    With gates (z, r, h) and `reset_after=True` (the cuDNN/PyTorch variant,
    bias shape `(2, 3h)`: row 0 input bias, row 1 recurrent bias):

        z = sigma(x W_z + b_z + h_{t-1} U_z + b'_z)
        r = sigma(x W_r + b_r + h_{t-1} U_r + b'_r)
        g = tanh(x W_h + b_h + r * (h_{t-1} U_h + b'_h))
        h_t = z * h_{t-1} + (1 - z) * g

    With `reset_after=False` (original Cho et al. form, bias `(3h,)`) the
    reset gate acts before the product: `g = tanh(x W_h + (r * h_{t-1}) U_h + b_h)`.

    Course notes often write `h_t = (1 - z) * h_{t-1} + z * g`. That is the
    same cell with `z` replaced by `1 - z`: since `1 - sigma(a) = sigma(-a)`,
    negating the z columns of `kernel`, `recurrent_kernel` and `bias` turns
    one form into the other exactly.

    With `layer_norm=True` the projections `x W` and `h_{t-1} U` are
    layer-normalized (scales `input_norm_gamma`, `recurrent_norm_gamma`)
    before the biases are added.

    Weights match `keras.layers.GRUCell`: `kernel (d, 3h)`,
    `recurrent_kernel (h, 3h)`, `bias`; parameter count `3(d*h + h^2 + h)`
    plus `3h` with `reset_after`. `torch.nn.GRU` orders its gates (r, z, n):
    swap the first two blocks and transpose to convert.

    Args:
        units: positive int, size of the hidden state.
        activation: activation of the candidate. Default `"tanh"`.
        recurrent_activation: activation of the gates. Default `"sigmoid"`.
        use_bias: whether to add biases.
        reset_after: apply the reset gate after the recurrent product
            (default True, as Keras and PyTorch).
        implementation: accepted for `keras.layers` compatibility (1 or 2;
            the results are the same).
        layer_norm: whether to layer-normalize the projections.
        kernel_initializer, recurrent_initializer, bias_initializer,
        regularizers, constraints, dropout, recurrent_dropout,
        recurrent_weight_dropout, seed:
            as in `kzoo.layers.SimpleRNNCell`.

    Call arguments:
        inputs: `(batch, features)`, one time step.
        states: `[h]` with `h` of shape `(batch, units)`.
        training: whether dropout is active.

    Returns:
        `(h_t, [h_t])`.

    Example:

    >>> layer = kzoo.layers.RNN(kzoo.layers.GRUCell(16), return_sequences=True)
    >>> layer(np.ones((4, 7, 3))).shape
    (4, 7, 16)

    Reference:
        Cho et al., 2014, https://arxiv.org/abs/1406.1078
    """

    num_gates = 3

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        reset_after=True,
        layer_norm=False,
        implementation=2,
        **kwargs,
    ):
        super().__init__(units, activation=activation, use_bias=use_bias, **kwargs)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.reset_after = reset_after
        self.layer_norm = layer_norm
        # Keras's choice between batched (2) and per-gate (1) matrix
        # products; the same equations either way, so only kept (not
        # serialized, as in Keras) for code that reads it.
        self.implementation = implementation

    def bias_shape(self):
        if self.reset_after:
            return (2, 3 * self.units)
        return (3 * self.units,)

    def build_extra_weights(self):
        if not self.layer_norm:
            return
        width = 3 * self.units
        self.input_norm_gamma = self.add_weight(
            name="input_norm_gamma", shape=(width,), initializer="ones"
        )
        self.recurrent_norm_gamma = self.add_weight(
            name="recurrent_norm_gamma", shape=(width,), initializer="ones"
        )

    def _norm(self, proj, gamma):
        if not self.layer_norm:
            return proj
        return layer_norm(proj, gamma)

    def _fused_kind(self):
        plain = (
            type(self) is GRUCell
            and not self.layer_norm
            and activation_name(self.activation) == "tanh"
            and activation_name(self.recurrent_activation) == "sigmoid"
        )
        if not plain:
            return None
        return "gru" if self.reset_after else "gru_v1"

    def call(self, inputs, states, training=False):
        self.check_step_inputs(inputs)
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        x = self._dropout_inputs(inputs, training)
        h_in = self._dropout_state(h_prev, training)
        units = self.units
        recurrent_kernel = self.recurrent_kernel_for_call(training)
        x_proj = self._norm(ops.matmul(x, self.kernel), getattr(self, "input_norm_gamma", None))
        if self.use_bias:
            input_bias = self.bias[0] if self.reset_after else self.bias
            x_proj = x_proj + input_bias
        x_z, x_r, x_h = ops.split(x_proj, 3, axis=-1)
        recurrent_gamma = getattr(self, "recurrent_norm_gamma", None)
        if self.reset_after:
            h_proj = self._norm(ops.matmul(h_in, recurrent_kernel), recurrent_gamma)
            if self.use_bias:
                h_proj = h_proj + self.bias[1]
            h_z, h_r, h_h = ops.split(h_proj, 3, axis=-1)
            z = self.recurrent_activation(x_z + h_z)
            r = self.recurrent_activation(x_r + h_r)
            g = self.activation(x_h + r * h_h)
        else:
            zr_proj = ops.matmul(h_in, recurrent_kernel[:, : 2 * units])
            if self.layer_norm:
                # Normalize the (z, r) part and the candidate part of h U
                # with their slices of one gamma, the candidate after reset.
                zr_proj = self._norm(zr_proj, recurrent_gamma[: 2 * units])
            h_z, h_r = ops.split(zr_proj, 2, axis=-1)
            z = self.recurrent_activation(x_z + h_z)
            r = self.recurrent_activation(x_r + h_r)
            cand = ops.matmul(r * h_in, recurrent_kernel[:, 2 * units :])
            if self.layer_norm:
                cand = self._norm(cand, recurrent_gamma[2 * units :])
            g = self.activation(x_h + cand)
        h = z * h_prev + (1.0 - z) * g
        return h, [h]

    def get_config(self):
        config = super().get_config()
        config.update(
            recurrent_activation=keras.activations.serialize(self.recurrent_activation),
            reset_after=self.reset_after,
            layer_norm=self.layer_norm,
        )
        return config
