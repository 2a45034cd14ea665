"""Reads the operator list of a `.tflite` file without running it."""

import os

# Ops that the stock LiteRT interpreter cannot run without extra libraries:
# `FlexXxx` (SELECT_TF_OPS) and any other custom op.
_FLEX_PREFIX = "Flex"


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        try:
            from tensorflow.lite.python import schema_py_generated as schema
        except ImportError as error:
            raise ImportError(
                "Reading a .tflite file needs the `ai-edge-litert` package "
                "(pip install ai-edge-litert) or TensorFlow."
            ) from error
    return schema


def _read(path_or_bytes):
    if isinstance(path_or_bytes, (bytes, bytearray)):
        return bytes(path_or_bytes), "<bytes>"
    if not isinstance(path_or_bytes, (str, os.PathLike)):
        raise TypeError(
            "Expected the path of a .tflite file or its bytes. Received "
            f"{type(path_or_bytes).__name__}."
        )
    path = os.fspath(path_or_bytes)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a folder, not a .tflite file.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No .tflite file at {path!r}.")
    with open(path, "rb") as f:
        return f.read(), path


def tflite_ops(path_or_bytes):
    """Counts the operators of a `.tflite` model, over all its subgraphs.

    Builtin ops are named as in the LiteRT schema (`FULLY_CONNECTED`,
    `UNIDIRECTIONAL_SEQUENCE_LSTM`, `WHILE`, ...); custom ops, including the
    `Flex*` ops of SELECT_TF_OPS, as `CUSTOM:<name>`.

    Args:
        path_or_bytes: path of a `.tflite` file, or its bytes.

    Returns:
        dict `{op name: count}`, sorted by name.

    Raises:
        ValueError: the data is not a complete LiteRT flatbuffer.

    Example:

    >>> ops = kzoo.export.tflite_ops("model.tflite")
    >>> assert not kzoo.export.non_builtin_ops(ops)
    """
    data, where = _read(path_or_bytes)
    schema = _schema()
    if not data:
        raise ValueError(f"{where} is empty (0 bytes), not a LiteRT (.tflite) flatbuffer.")
    if len(data) < 8 or data[4:8] != b"TFL3":
        kind = " (it is a zip archive, e.g. a .keras file)" if data[:4] == b"PK\x03\x04" else ""
        raise ValueError(
            f"{where} is not a LiteRT (.tflite) flatbuffer: the file identifier "
            f"'TFL3' is missing ({len(data)} bytes){kind}."
        )
    names = {
        value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")
    }
    try:
        model = schema.Model.GetRootAs(data, 0)
        codes = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = names.get(builtin, f"BUILTIN_{builtin}")
            if name == "CUSTOM":
                name = "CUSTOM:" + (code.CustomCode() or b"?").decode()
            codes.append(name)
        counts = {}
        for g in range(model.SubgraphsLength()):
            subgraph = model.Subgraphs(g)
            for j in range(subgraph.OperatorsLength()):
                name = codes[subgraph.Operators(j).OpcodeIndex()]
                counts[name] = counts.get(name, 0) + 1
    except Exception as error:  # flatbuffers raises struct/Index errors on truncation
        raise ValueError(
            f"{where} is not a valid LiteRT (.tflite) flatbuffer (truncated or corrupt): "
            f"{type(error).__name__}: {error}"
        ) from error
    return dict(sorted(counts.items()))


def non_builtin_ops(ops):
    """The ops of `tflite_ops(...)` that the stock interpreter cannot run alone.

    These are the custom ops, including the `Flex*` ops that SELECT_TF_OPS
    adds (they need the TensorFlow Flex delegate).
    """
    return sorted(
        name for name in ops if name.startswith("CUSTOM:") or name.startswith(_FLEX_PREFIX)
    )
