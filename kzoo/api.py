"""Helpers shared by every public kzoo class."""

import keras


def kzoo_export(cls):
    """Registers `cls` for Keras serialization under the package name `kzoo`."""
    return keras.saving.register_keras_serializable(package="kzoo")(cls)
