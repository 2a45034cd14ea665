"""The one place in kzoo that knows which Keras backend runs.

Each backend module (`tensorflow.py`, `jax.py`, `torch.py`) may export the
same function names as `reference.py`. A fast function that cannot handle its
inputs raises `NotImplementedError` and the pure `keras.ops` reference runs.

The contract with the layers: the layer decides and describes, the backend
receives plain data. Nothing here imports `kzoo.layers` or reads a layer's
attribute.

Functions:

* `rnn(step_fn, inputs, initial_states, initial_output, mask, go_backwards,
  key=None)`: runs any step function `(x_t, states) -> (output, states)`
  over time.
* `fused_rnn(spec, sequences, initial_states, mask, go_backwards, training,
  key=None)`: a whole-sequence kernel for a plain cell described by a
  `CellSpec` (`kzoo.backend.spec`). The reference raises
  `NotImplementedError`, so a caller that gets it runs `rnn` instead.
* `fused_bidirectional_rnn(forward_spec, backward_spec, sequences,
  forward_states, backward_states, mask, training)`: both directions of a
  `Bidirectional` layer in one backend call, where a backend has one (torch:
  one ATen kernel call; TensorFlow: two compiled loops that run side by side).
* `direct_step_calls()`: whether the generic loop gains from calling a built
  cell's `call` directly instead of `Layer.__call__` (eager torch).

`key` is an opaque value by which the calling layer can be recognised in a
trace (the layer passes `id(self)`); the backends ignore it, lowering
contexts such as the exporter's use it.

Behaviour changes through context managers on one stack, never by
reassigning these functions: `reference_only()` routes every call to
`reference.py` (tests compare the two paths with it) and `lowering(...)`
puts other implementations of some functions on top (exports use it to lower
recurrent layers to ops a converter understands).
"""

import contextlib
import importlib
import types

import keras

from kzoo.backend import reference
from kzoo.backend.spec import CellSpec

BACKEND = keras.backend.backend()

try:
    _native = importlib.import_module(f"kzoo.backend.{BACKEND}")
except ModuleNotFoundError:  # a backend without kzoo fast paths (e.g. numpy)
    _native = None

# Each entry provides some of the functions; a call runs the topmost entry
# that has the function (None: skip), falling back to `reference` when that
# raises NotImplementedError.
_stack = [_native]


@contextlib.contextmanager
def _pushed(entry):
    _stack.append(entry)
    try:
        yield
    finally:
        for i in range(len(_stack) - 1, 0, -1):  # the latest push of this entry
            if _stack[i] is entry:
                del _stack[i]
                break


def reference_only():
    """Within this context every kzoo.backend function runs its reference."""
    return _pushed(reference)


def lowering(**functions):
    """Within this context the given functions replace the backend's.

    Args:
        **functions: any of `rnn`, `fused_rnn`, `fused_bidirectional_rnn`
            with the signatures above. One that raises `NotImplementedError`
            hands the call to the reference (for `fused_*`: the layer then
            runs `rnn`, which resolves through the stack again).

    Example: `with kzoo.backend.lowering(fused_rnn=decline): model(x)` runs
    every recurrent layer through its step loop.
    """
    unknown = sorted(set(functions) - set(_FUNCTIONS))
    if unknown:
        raise TypeError(f"lowering() got unknown function names {unknown}; known: {_FUNCTIONS}.")
    return _pushed(types.SimpleNamespace(**functions))


def _resolve(name):
    for entry in reversed(_stack):
        function = getattr(entry, name, None)
        if function is not None:
            return function
    return getattr(reference, name)


def _dispatch(name):
    slow = getattr(reference, name)

    def run(*args, **kwargs):
        function = _resolve(name)
        if function is not slow:
            try:
                return function(*args, **kwargs)
            except NotImplementedError:
                pass
        return slow(*args, **kwargs)

    run.__name__ = name
    run.__doc__ = slow.__doc__
    return run


_FUNCTIONS = ("rnn", "fused_rnn", "fused_bidirectional_rnn", "direct_step_calls")

rnn = _dispatch("rnn")
fused_rnn = _dispatch("fused_rnn")
fused_bidirectional_rnn = _dispatch("fused_bidirectional_rnn")
direct_step_calls = _dispatch("direct_step_calls")

__all__ = [
    "BACKEND",
    "CellSpec",
    "direct_step_calls",
    "fused_bidirectional_rnn",
    "fused_rnn",
    "lowering",
    "reference_only",
    "rnn",
]
