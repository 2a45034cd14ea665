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


def _check_feed(where, signature, name, array, shape, dtype, batch_hint=True):
    """Refuses an input whose rank, fixed dimensions or dtype kind the model cannot take.

    `shape` is the input's shape with -1 (or None) for dynamic dimensions.
    """
    shape = [None if d is None or d < 0 else int(d) for d in shape]
    if array.ndim != len(shape):
        raise ValueError(
            f"Input {name!r} of {where} (signature {signature!r}) has rank {len(shape)}, "
            f"shape {_text(shape)}; got an array of shape {array.shape}."
        )
    if shape and shape[0] is not None and array.shape[0] != shape[0]:
        hint = ""
        if batch_hint:
            hint = (
                f" Feed exactly {shape[0]} row(s) per call: split larger batches and pad the "
                "last slice. For a dynamic batch, export with recurrent='unroll' and "
                "max_length (see 'Limitations' in docs/export.md)."
            )
        raise ValueError(
            f"{where} was exported with a fixed batch of {shape[0]} row(s) (input {name!r} has "
            f"shape {_text(shape)}), but {array.shape[0]} row(s) were given.{hint}"
        )
    for axis, (want, got) in enumerate(zip(shape, array.shape)):
        if want is not None and want != got:
            raise ValueError(
                f"Input {name!r} of {where} has the fixed shape {_text(shape)}; got shape "
                f"{array.shape} (axis {axis}: {got} != {want})."
            )
    if array.dtype.kind in "fc" and np.dtype(dtype).kind in "iub":
        raise TypeError(
            f"Input {name!r} of {where} takes {np.dtype(dtype).name} values (e.g. token ids); "
            f"got a {array.dtype.name} array. Convert it first, e.g. `x.astype('int32')`."
        )


def _text(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _check_names(where, signature, expected, inputs):
    if not isinstance(inputs, dict):
        raise TypeError(
            f"`inputs` must be a dict {{input name: array}}; {where} takes {sorted(expected)}. "
            f"Received {type(inputs).__name__}."
        )
    missing = sorted(set(expected) - set(inputs))
    unknown = sorted(set(inputs) - set(expected))
    if missing or unknown:
        raise ValueError(
            f"Signature {signature!r} of {where} takes inputs {sorted(expected)}; "
            f"missing {missing}, unknown {unknown}."
        )


def run_litert(path, inputs, signature="serving_default", interpreter=None):
    """Runs one signature of a `.tflite` file.

    Each input is checked against the file before it runs: its rank, its
    fixed dimensions and its dtype kind. A file exported with a fixed batch
    (every whole-sequence LiteRT export without `recurrent="unroll"`, see
    `report.batch_size`) takes exactly that many rows; any other count is
    refused with a `ValueError` that names both. Dynamic dimensions (-1 in
    the file's `shape_signature`) are resized to the inputs.

    Args:
        path: the `.tflite` file.
        inputs: dict `{input name: array}`.
        signature: signature key (`"serving_default"`, or `"step"` for a
            streaming export).
        interpreter: optional interpreter to reuse (from `litert_interpreter`).

    Returns:
        dict `{output name: np.ndarray}`.
    """
    interpreter = interpreter or litert_interpreter(path)
    signatures = interpreter.get_signature_list()
    if signature not in signatures:
        raise ValueError(
            f"{path} has the signature(s) {sorted(signatures)}, not {signature!r}. Received: "
            f"signature={signature!r}"
        )
    runner = interpreter.get_signature_runner(signature)
    expected = runner.get_input_details()
    _check_names(path, signature, expected, inputs)
    feed = {}
    for name, details in expected.items():
        array = np.asarray(inputs[name])
        _check_feed(path, signature, name, array, details["shape_signature"], details["dtype"])
        feed[name] = array.astype(details["dtype"], copy=False)
    return {name: np.asarray(value) for name, value in runner(**feed).items()}


def _check_file(path, kind):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"Expected the path of {kind}. Received {type(path).__name__}: {path!r}.")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a folder, not {kind}.")
    if not os.path.exists(path):
        raise FileNotFoundError(f"No {kind} at {path!r}.")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path!r} is empty (0 bytes), not {kind}.")
    return path


def run_onnx(path, inputs):
    """Runs an `.onnx` file with onnxruntime; returns `{output name: array}`.

    Inputs are checked like `run_litert`'s (names, rank, fixed dimensions,
    dtype kind) before onnxruntime runs.
    """
    path = _check_file(path, "an .onnx file")
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError("Running an .onnx file needs `onnxruntime`.") from error
    try:
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types
        raise ValueError(
            f"onnxruntime cannot load {path!r} (truncated, corrupt or not an ONNX model?): {error}"
        ) from error
    specs = {spec.name: spec for spec in session.get_inputs()}
    _check_names(path, "onnx", specs, inputs)
    feed = {}
    for name, spec in specs.items():
        dtype = np.int32 if "int32" in spec.type else np.int64 if "int64" in spec.type else None
        dtype = dtype or (np.bool_ if "bool" in spec.type else np.float32)
        array = np.asarray(inputs[name])
        shape = [d if isinstance(d, int) else None for d in spec.shape]
        _check_feed(path, "onnx", name, array, shape, dtype, batch_hint=False)
        feed[name] = array.astype(dtype, copy=False)
    names = [spec.name for spec in session.get_outputs()]
    return dict(zip(names, session.run(names, feed)))


def run_saved_model(path, inputs, signature="serving_default"):
    """Runs a signature of a TensorFlow SavedModel (needs TensorFlow)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"Expected a SavedModel folder. Received {type(path).__name__}.")
    path = os.fspath(path)
    if not os.path.isdir(path):
        state = "is a file" if os.path.exists(path) else "does not exist"
        raise FileNotFoundError(f"No SavedModel folder at {path!r}: the path {state}.")
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ValueError(f"{path!r} is a folder without 'saved_model.pb', not a SavedModel.")
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(path)
    except Exception as error:  # TensorFlow raises several types for damaged SavedModels
        raise ValueError(f"TensorFlow cannot load the SavedModel {path!r}: {error}") from error
    if signature not in loaded.signatures:
        raise ValueError(f"{path} has signatures {sorted(loaded.signatures)}, not {signature!r}.")
    function = loaded.signatures[signature]
    specs = function.structured_input_signature[1]
    _check_names(path, signature, specs, inputs)
    feed = {}
    for name, spec in specs.items():
        array = np.asarray(inputs[name])
        dtype = spec.dtype.as_numpy_dtype
        _check_feed(path, signature, name, array, spec.shape.as_list(), dtype, batch_hint=False)
        feed[name] = tf.constant(array, dtype=spec.dtype)
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
