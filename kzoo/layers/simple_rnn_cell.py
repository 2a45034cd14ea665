"""Elman recurrent cell."""

from keras import ops

from kzoo.layers.cell_base import RecurrentCell, activation_name
from kzoo.utils.serialization import register_serializable


@register_serializable
class SimpleRNNCell(RecurrentCell):
    """Fully connected recurrent cell (Elman, 1990).

    h_t = activation(x_t W + h_{t-1} U + b)

    Weights match `keras.layers.SimpleRNNCell`: `kernel (input_dim, units)`,
    `recurrent_kernel (units, units)`, `bias (units,)`; parameter count
    `d*h + h^2 + h`. The weights map to `torch.nn.RNN` as
    `weight_ih = kernel.T`, `weight_hh = recurrent_kernel.T`,
    `bias_ih + bias_hh = bias`.

    Args:
        units: positive int, size of the hidden state.
        activation: activation name or callable. Default `"tanh"`.
        use_bias: whether to add `bias`.
        kernel_initializer, recurrent_initializer, bias_initializer:
            initializer names or objects (defaults `"glorot_uniform"`,
            `"orthogonal"`, `"zeros"`).
        kernel_regularizer, recurrent_regularizer, bias_regularizer,
        kernel_constraint, recurrent_constraint, bias_constraint: optional.
        dropout: fraction of input units dropped, one mask per sequence.
        recurrent_dropout: fraction of state units dropped, one mask per
            sequence.
        recurrent_weight_dropout: fraction of the entries of
            `recurrent_kernel` dropped in training (weight drop, the
            DropConnect of AWD-LSTM): one mask per call of the recurrent
            layer, shared by the batch and all time steps, applied before
            the fused kernel runs (see `kzoo.layers.cell_base.RecurrentCell`).
            Merity et al., 2018, https://arxiv.org/abs/1708.02182
        seed: int seed for the dropout masks.

    Call arguments:
        inputs: `(batch, features)` tensor, one time step.
        states: list with one `(batch, units)` tensor.
        training: whether dropout is active.

    Returns:
        `(h_t, [h_t])`.

    Example:

    >>> cell = SimpleRNNCell(8)
    >>> layer = kzoo.layers.RNN(cell, return_sequences=True)
    >>> layer(np.ones((2, 5, 3))).shape
    (2, 5, 8)
    """

    num_gates = 1

    def _fused_kind(self):
        plain = type(self) is SimpleRNNCell and activation_name(self.activation) in ("tanh", "relu")
        return "simple" if plain else None

    def call(self, inputs, states, training=False):
        self.check_step_inputs(inputs)
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        x = self._dropout_inputs(inputs, training)
        h_in = self._dropout_state(h_prev, training)
        z = ops.matmul(x, self.kernel) + ops.matmul(h_in, self.recurrent_kernel_for_call(training))
        if self.use_bias:
            z = z + self.bias
        h = self.activation(z)
        return h, [h]
