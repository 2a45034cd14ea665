"""Runs exported artefacts with their stock runtimes.

LiteRT files run on `ai_edge_litert` (or `tf.lite` when only TensorFlow is
installed), ONNX files on `onnxruntime`, SavedModels on TensorFlow. The
LiteRT and ONNX runners work in any process, whatever the Keras backend.
"""

import os

import numpy as np

from kzoo.export.tflite_ops import tflite_ops


def litert_interpreter(path):
    """A stock LiteRT interpreter for `path`, with a clear error on bad files."""
    tflite_ops(path)  # raises a ValueError that names the file if it is not a .tflite
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tensorflow.lite.python.interpreter import Interpreter
        except ImportError as error:
            raise ImportError(
                "Running a .tflite file needs `ai-edge-litert` (pip install ai-edge-litert) "
                "or TensorFlow."
            ) from error
    try:
        return Interpreter(model_path=os.fspath(path))
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"The LiteRT interpreter cannot load {path!r}: {error}") from error


def run_litert(path, inputs, signature="serving_default", interpreter=None):
    """Runs one signature of a `.tflite` file.

    Args:
        path: the `.tflite` file.
        inputs: dict `{input name: array}`; dynamic dimensions are resized.
        signature: signature key (`"serving_default"`, or `"step"` for a
            streaming export).
        interpreter: optional interpreter to reuse (from `litert_interpreter`).

    Returns:
        dict `{output name: np.ndarray}`.
    """
    interpreter = interpreter or litert_interpreter(path)
    runner = interpreter.get_signature_runner(signature)
    expected = runner.get_input_details()
    missing = set(expected) - set(inputs)
    if missing:
        raise ValueError(
            f"Signature {signature!r} of {path} needs inputs {sorted(expected)}; "
            f"missing {sorted(missing)}."
        )
    feed = {
        name: np.asarray(inputs[name], dtype=details["dtype"]) for name, details in expected.items()
    }
    return {name: np.asarray(value) for name, value in runner(**feed).items()}


def run_onnx(path, inputs):
    """Runs an `.onnx` file with onnxruntime; returns `{output name: array}`."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError("Running an .onnx file needs `onnxruntime`.") from error
    try:
        session = onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types
        raise ValueError(f"onnxruntime cannot load {path!r}: {error}") from error
    feed = {}
    for spec in session.get_inputs():
        if spec.name not in inputs:
            raise ValueError(f"{path} needs input {spec.name!r}; got {sorted(inputs)}.")
        dtype = np.int32 if "int32" in spec.type else np.int64 if "int64" in spec.type else None
        feed[spec.name] = np.asarray(inputs[spec.name], dtype=dtype or np.float32)
    names = [spec.name for spec in session.get_outputs()]
    return dict(zip(names, session.run(names, feed)))


def run_saved_model(path, inputs, signature="serving_default"):
    """Runs a signature of a TensorFlow SavedModel (needs TensorFlow)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(os.fspath(path))
    if signature not in loaded.signatures:
        raise ValueError(f"{path} has signatures {sorted(loaded.signatures)}, not {signature!r}.")
    function = loaded.signatures[signature]
    specs = function.structured_input_signature[1]
    feed = {name: tf.constant(inputs[name], dtype=spec.dtype) for name, spec in specs.items()}
    return {name: value.numpy() for name, value in function(**feed).items()}


def run_artifact(path, format, inputs, signature="serving_default"):
    """Runs any kzoo export: `format` is `"litert"`, `"onnx"` or `"tf_saved_model"`."""
    if format == "litert":
        return run_litert(path, inputs, signature)
    if format == "onnx":
        return run_onnx(path, inputs)
    if format == "tf_saved_model":
        return run_saved_model(path, inputs, signature)
    raise ValueError(f"Unknown format {format!r}.")
