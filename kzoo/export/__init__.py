"""Export Keras models with kzoo layers to TF SavedModel, LiteRT and ONNX.

`kzoo.export(model, path, ...)` (the same as `kzoo.export.export`) writes
the export, loads it back with the stock runtime, compares it with the Keras
model and returns an `ExportReport`. From the command line:
`KERAS_BACKEND=tensorflow python -m kzoo.export MODEL.keras OUT.tflite`.
"""

import sys
import types

from kzoo.export.api import (
    FORMATS,
    ExportReport,
    ExportVerificationError,
    export,
    export_many,
    load_keras_file,
    make_sample_inputs,
)
from kzoo.export.runtime import litert_interpreter, run_artifact, run_litert, run_onnx
from kzoo.export.tflite_ops import non_builtin_ops, tflite_ops

__all__ = [
    "FORMATS",
    "ExportReport",
    "ExportVerificationError",
    "export",
    "export_many",
    "litert_interpreter",
    "load_keras_file",
    "make_sample_inputs",
    "non_builtin_ops",
    "run_artifact",
    "run_litert",
    "run_onnx",
    "tflite_ops",
]


class _CallableModule(types.ModuleType):
    """Lets `kzoo.export(model, path, ...)` call `kzoo.export.export`."""

    def __call__(self, model, path, format=None, **kwargs):
        return export(model, path, format, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
