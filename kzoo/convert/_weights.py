"""Weight layouts of torch.nn recurrent modules and of kzoo/Keras cells.

kzoo and Keras cells hold `kernel (d, G*h)`, `recurrent_kernel (h, G*h)` and
`bias`; torch holds `weight_ih (G*h, d)`, `weight_hh (G*h, h)`, `bias_ih`
and `bias_hh`. The gate blocks:

- LSTM: torch (i, f, g, o) = Keras (i, f, c, o), the same order; one Keras
  bias equals `bias_ih + bias_hh`.
- GRU: torch (r, z, n), Keras (z, r, h): the first two blocks swap. Keras
  with `reset_after=True` keeps both biases: `bias[0]` (input) and
  `bias[1]` (recurrent), as torch does.
- RNN: one block; one Keras bias equals `bias_ih + bias_hh`.
"""

import numpy as np

GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def swap_first_blocks(matrix, units):
    """Swaps blocks 0 and 1 (rows of size `units`) along axis 0: (r, z, n) <-> (z, r, n)."""
    return np.concatenate([matrix[units : 2 * units], matrix[:units], matrix[2 * units :]], axis=0)


def torch_to_cell(kind, units, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """torch parameters of one layer and direction -> `[kernel, recurrent_kernel, (bias)]`."""
    weight_ih = np.asarray(weight_ih, np.float64)
    weight_hh = np.asarray(weight_hh, np.float64)
    has_bias = bias_ih is not None
    if kind == "gru":
        weight_ih = swap_first_blocks(weight_ih, units)
        weight_hh = swap_first_blocks(weight_hh, units)
        weights = [weight_ih.T, weight_hh.T]
        if has_bias:
            weights.append(
                np.stack(
                    [
                        swap_first_blocks(np.asarray(bias_ih, np.float64), units),
                        swap_first_blocks(np.asarray(bias_hh, np.float64), units),
                    ]
                )
            )
    else:
        weights = [weight_ih.T, weight_hh.T]
        if has_bias:
            weights.append(np.asarray(bias_ih, np.float64) + np.asarray(bias_hh, np.float64))
    return [np.ascontiguousarray(w, dtype=np.float32) for w in weights]


def cell_to_torch(kind, units, kernel, recurrent_kernel, bias=None):
    """`kernel, recurrent_kernel, bias` -> `(weight_ih, weight_hh, bias_ih, bias_hh)`.

    For LSTM and RNN the single bias goes to `bias_ih` and `bias_hh` is zero.
    Biases are None when the cell has none.
    """
    weight_ih = np.asarray(kernel, np.float32).T
    weight_hh = np.asarray(recurrent_kernel, np.float32).T
    bias_ih = bias_hh = None
    if kind == "gru":
        weight_ih = swap_first_blocks(weight_ih, units)
        weight_hh = swap_first_blocks(weight_hh, units)
        if bias is not None:
            bias = np.asarray(bias, np.float32)
            bias_ih = swap_first_blocks(bias[0], units)
            bias_hh = swap_first_blocks(bias[1], units)
    elif bias is not None:
        bias_ih = np.asarray(bias, np.float32)
        bias_hh = np.zeros_like(bias_ih)
    return tuple(
        None if w is None else np.ascontiguousarray(w, dtype=np.float32)
        for w in (weight_ih, weight_hh, bias_ih, bias_hh)
    )
