"""Registration of kzoo classes for Keras serialization."""

import keras


def register_serializable(cls):
    """Registers `cls` for Keras serialization under the package name `kzoo`.

    Saved files name the class `kzoo>ClassName`, so `keras.saving.load_model`
    finds it once `kzoo` is imported, whichever module defines it.
    """
    return keras.saving.register_keras_serializable(package="kzoo")(cls)
