"""Registration of kzoo classes for Keras serialization."""

import keras


def register_serializable(cls):
    """Registers `cls` for Keras serialization under the package name `kzoo`.

    Saved files name the class `kzoo>ClassName`, so `keras.saving.load_model`
    finds it once `kzoo` is imported, whichever module defines it.
    """
    return keras.saving.register_keras_serializable(package="kzoo")(cls)


def deserialize_component(value, expected_class, name):
    """A task's component (`preprocessor`, `backbone`) from an argument or a config.

    Args:
        value: None, an instance, or its serialized config (a dict, as
            `get_config` stores it in a `.keras` file).
        expected_class: the class (or tuple of classes) it must be.
        name: the argument's name, for the message.

    Returns:
        None or an instance of `expected_class`.
    """
    if isinstance(value, dict):
        value = keras.saving.deserialize_keras_object(value)
    if value is not None and not isinstance(value, expected_class):
        classes = expected_class if isinstance(expected_class, tuple) else (expected_class,)
        expected = " or ".join(c.__name__ for c in classes)
        raise TypeError(f"`{name}` must be a {expected} or None. Received: {type(value).__name__}")
    return value
