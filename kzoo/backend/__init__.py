"""The one place in kzoo that knows which Keras backend runs.

Each backend module (`tensorflow.py`, `jax.py`, `torch.py`) may export the
same function names as `reference.py`. A fast function that cannot handle its
inputs raises `NotImplementedError` and the pure `keras.ops` reference runs.

Functions:

* `rnn(step_fn, inputs, initial_states, initial_output, mask, go_backwards)`:
  runs any cell's step function over time.
* `cell_call_function(cell, dtype)`: what the generic loop calls once per
  step (the cell layer itself, or on torch its `call` method, skipping
  `Layer.__call__`'s bookkeeping that eager execution pays at every step).
* `fused_rnn(cell, sequences, initial_states, mask, go_backwards, training)`:
  a whole-sequence kernel for a plain `kzoo.layers` LSTM/GRU/SimpleRNN cell.
  The reference raises `NotImplementedError`, so a caller that gets it runs
  `rnn` instead.
* `fused_bidirectional_rnn(forward_cell, backward_cell, sequences,
  forward_states, backward_states, mask, training)`: both directions of a
  `Bidirectional` layer in one backend call, where a backend has one (torch:
  one ATen kernel call; TensorFlow: two compiled loops that run side by side).

`reference_only()` is a context manager that routes every call to
`reference.py` (no fused kernels): tests compare the two paths with it.
"""

import contextlib
import importlib

import keras

from kzoo.backend import reference

BACKEND = keras.backend.backend()

try:
    _native = importlib.import_module(f"kzoo.backend.{BACKEND}")
except ModuleNotFoundError:  # a backend without kzoo fast paths (e.g. numpy)
    _native = None

_use_native = [True]


@contextlib.contextmanager
def reference_only():
    """Within this context every kzoo.backend function runs its reference."""
    _use_native.append(False)
    try:
        yield
    finally:
        _use_native.pop()


def _dispatch(name):
    slow = getattr(reference, name)
    if getattr(_native, name, None) is None:
        return slow

    def run(*args, **kwargs):
        if _use_native[-1]:
            try:
                # Looked up per call so that tests can wrap the native function.
                return getattr(_native, name)(*args, **kwargs)
            except NotImplementedError:
                pass
        return slow(*args, **kwargs)

    run.__name__ = name
    run.__doc__ = slow.__doc__
    return run


cell_call_function = _dispatch("cell_call_function")
rnn = _dispatch("rnn")
fused_rnn = _dispatch("fused_rnn")
fused_bidirectional_rnn = _dispatch("fused_bidirectional_rnn")
