"""`keras.utils.set_random_seed` that leaves TensorFlow alone on the other backends."""

import sys

import keras
from keras.src.utils import module_utils


def set_random_seed(seed):
    """Seeds Python, NumPy, Keras's global seed generator and the backend.

    The same as `keras.utils.set_random_seed(seed)`, except that on the JAX
    and PyTorch backends it does not import TensorFlow just to seed it
    (Keras's version imports it whenever it is installed: seconds of start-up
    and TensorFlow's log lines in a run that never uses it). TensorFlow is
    still seeded when it is the backend or already imported.

    Args:
        seed: int, the random seed.

    Example:

    >>> kzoo.utils.set_random_seed(1337)
    >>> keras.random.uniform((2,))  # the same numbers on every run
    """
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    lazy_tensorflow = module_utils.tensorflow
    # Keras asks `tensorflow.available`, which imports it; answer "no" for
    # this call only, so that a later use of TensorFlow still finds it.
    known = lazy_tensorflow._available
    lazy_tensorflow._available = False
    try:
        keras.utils.set_random_seed(seed)
    finally:
        lazy_tensorflow._available = known
