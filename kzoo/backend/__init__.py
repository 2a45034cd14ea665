"""The one place in kzoo that knows which Keras backend runs.

Each backend module (`tensorflow.py`, `jax.py`, `torch.py`) may export the
same function names as `reference.py`. A fast function that cannot handle its
inputs raises `NotImplementedError` and the pure `keras.ops` reference runs.
"""

import importlib

import keras

from kzoo.backend import reference

BACKEND = keras.backend.backend()

try:
    _native = importlib.import_module(f"kzoo.backend.{BACKEND}")
except ModuleNotFoundError:  # a backend without kzoo fast paths (e.g. numpy)
    _native = None


def _dispatch(name):
    fast = getattr(_native, name, None)
    slow = getattr(reference, name)
    if fast is None:
        return slow

    def run(*args, **kwargs):
        try:
            return fast(*args, **kwargs)
        except NotImplementedError:
            return slow(*args, **kwargs)

    run.__name__ = name
    run.__doc__ = slow.__doc__
    return run


rnn = _dispatch("rnn")
