"""How many CPU threads a recipe's process computes with.

A recipe's models are small: one thread per process is fastest, and on a
shared machine PyTorch's default of one thread per core mostly waits (the
measured steps: README.md, "Recipes"). The recipes once set
`OMP_NUM_THREADS=1` before importing Keras, which works only while nothing
has imported PyTorch yet; `limit_threads` sets PyTorch's pool at any time.
"""

import os

import keras

from kzoo.utils.validation import check_int


def limit_threads(threads=1):
    """Runs PyTorch's CPU operations on `threads` threads, unless `OMP_NUM_THREADS` is set.

    Call it at the start of a recipe's `main`. On the PyTorch backend it
    calls `torch.set_num_threads(threads)`, which takes effect after PyTorch
    is imported (the environment variable is read only at its import). A user's
    `OMP_NUM_THREADS` wins: PyTorch then keeps the count it read from it. On
    TensorFlow and JAX it does nothing: their thread pools are their own, not
    OpenMP's, and `OMP_NUM_THREADS=1` did not change their step times.

    Args:
        threads: positive int, the number of threads.

    Returns:
        The number of threads PyTorch computes with now, or None on the
        other backends.

    Example:

    >>> def main(argv=None):
    ...     settings, options = parse_settings(Settings, QUICK, argv=argv, recipe="demo")
    ...     set_random_seed(options.seed)
    ...     limit_threads()
    """
    threads = check_int(threads, "threads", minimum=1)
    if keras.backend.backend() != "torch":
        return None
    import torch

    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(threads)
    return torch.get_num_threads()
