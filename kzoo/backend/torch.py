"""PyTorch-backend recurrent loops.

Keras's generic torch loop slices the input with `x[t]`; the backward pass of
each slice materialises a full-size gradient, so training cost grows with
T^2. Unbinding the time axis once and stacking the outputs keeps the
backward pass linear in T.
"""

import torch

from kzoo.backend.reference import step_with_mask


def rnn(step_fn, inputs, initial_states, initial_output, mask=None, go_backwards=False):
    steps = torch.unbind(inputs, dim=1)
    masks = [None] * len(steps) if mask is None else torch.unbind(mask.bool(), dim=1)
    order = range(len(steps) - 1, -1, -1) if go_backwards else range(len(steps))
    states, output, outputs = initial_states, initial_output, []
    for t in order:
        output, states = step_with_mask(step_fn, steps[t], masks[t], states, output)
        outputs.append(output)
    return output, torch.stack(outputs, dim=1), states
