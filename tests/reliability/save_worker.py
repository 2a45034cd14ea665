"""Saves one small model again and again; run by test_atomic_writes.py.

Usage: python save_worker.py PATH FUNCTION FIRST_VERSION COUNT

FUNCTION is `save_model` (kzoo.utils.save_model) or `save_compact`
(kzoo.models.saving.save_compact, float32 and float16 in turn). Before save
number i every weight is filled with the value FIRST_VERSION + i, so a reader
can tell which save a file holds, and that it holds one whole save. A Ctrl-C
(SIGINT) interrupts the current save and the loop goes on with the next one.
COUNT 0 means: until killed. Prints `saved <version>` after every finished save
and `interrupted` after every interrupted one.
"""

import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def say(line):
    # One write call per line (print writes the text and its end separately,
    # and a Ctrl-C may fall between them).
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main():
    path, function, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    # A process started in the background by a non-interactive shell inherits
    # SIGINT ignored, and Python then leaves it ignored: Ctrl-C must raise here.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import keras
    import numpy as np

    from kzoo.models.saving import save_compact
    from kzoo.utils import save_model

    inputs = keras.Input((600,))
    outputs = keras.layers.Dense(8)(keras.layers.Dense(600)(inputs))  # about 1.4 MB float32
    model = keras.Model(inputs, outputs)
    say("ready")
    i = 0
    while count == 0 or i < count:
        version = first + i
        try:
            for weight in model.weights:
                weight.assign(np.full(weight.shape, version, "float32"))
            if function == "save_model":
                save_model(model, path)
            else:
                save_compact(model, path, "float16" if i % 2 else "float32")
            say(f"saved {version}")
        except KeyboardInterrupt:
            say("interrupted")
        i += 1


if __name__ == "__main__":
    main()
