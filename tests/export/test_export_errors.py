"""Bad arguments and damaged files give clear errors, on every backend, without converting."""

import importlib.util
import zipfile

import keras
import numpy as np
import pytest

import kzoo
import kzoo.export
from kzoo.export import api
from tests.export import models


def tiny_tflite(op_names):
    """A LiteRT flatbuffer with one subgraph holding one operator per name (not runnable)."""
    flatbuffers = pytest.importorskip("flatbuffers", reason="flatbuffers is not installed")
    schema = pytest.importorskip(
        "ai_edge_litert.schema_py_generated", reason="ai-edge-litert is not installed"
    )
    builder = flatbuffers.Builder(256)
    custom_names = {
        n: builder.CreateString(n) for n in op_names if not hasattr(schema.BuiltinOperator, n)
    }
    codes = []
    for name in op_names:
        schema.OperatorCodeStart(builder)
        if name in custom_names:
            schema.OperatorCodeAddBuiltinCode(builder, schema.BuiltinOperator.CUSTOM)
            schema.OperatorCodeAddDeprecatedBuiltinCode(builder, schema.BuiltinOperator.CUSTOM)
            schema.OperatorCodeAddCustomCode(builder, custom_names[name])
        else:
            code = getattr(schema.BuiltinOperator, name)
            schema.OperatorCodeAddBuiltinCode(builder, code)
            schema.OperatorCodeAddDeprecatedBuiltinCode(builder, min(code, 127))
        codes.append(schema.OperatorCodeEnd(builder))
    operators = []
    for index in range(len(op_names)):
        schema.OperatorStart(builder)
        schema.OperatorAddOpcodeIndex(builder, index)
        operators.append(schema.OperatorEnd(builder))

    def vector(start, items):
        start(builder, len(items))
        for item in reversed(items):
            builder.PrependUOffsetTRelative(item)
        return builder.EndVector()

    operator_vector = vector(schema.SubGraphStartOperatorsVector, operators)
    schema.SubGraphStart(builder)
    schema.SubGraphAddOperators(builder, operator_vector)
    subgraph = schema.SubGraphEnd(builder)
    code_vector = vector(schema.ModelStartOperatorCodesVector, codes)
    subgraph_vector = vector(schema.ModelStartSubgraphsVector, [subgraph])
    schema.ModelStart(builder)
    schema.ModelAddVersion(builder, 3)
    schema.ModelAddOperatorCodes(builder, code_vector)
    schema.ModelAddSubgraphs(builder, subgraph_vector)
    builder.Finish(schema.ModelEnd(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_op_list_of_a_flatbuffer_names_builtin_and_custom_ops(tmp_path):
    data = tiny_tflite(["ADD", "UNIDIRECTIONAL_SEQUENCE_LSTM", "FlexTensorListReserve", "ADD"])
    path = tmp_path / "tiny.tflite"
    path.write_bytes(data)
    ops = kzoo.export.tflite_ops(path)
    assert ops == {
        "ADD": 2,
        "CUSTOM:FlexTensorListReserve": 1,
        "UNIDIRECTIONAL_SEQUENCE_LSTM": 1,
    }
    assert kzoo.export.non_builtin_ops(ops) == ["CUSTOM:FlexTensorListReserve"]
    assert kzoo.export.non_builtin_ops(kzoo.export.tflite_ops(tiny_tflite(["WHILE"]))) == []


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda data: data[: len(data) // 2], "truncated or corrupt"),
        (lambda data: data[:6], "not a LiteRT"),
        (lambda data: data[:4] + b"PK\x03\x04" + data[8:], "not a LiteRT"),
    ],
)
def test_damaged_tflite_files_are_refused(tmp_path, damage, message):
    path = tmp_path / "bad.tflite"
    path.write_bytes(damage(tiny_tflite(["ADD", "MUL", "LOGISTIC", "TANH"])))
    with pytest.raises(ValueError, match=message):
        kzoo.export.tflite_ops(path)
    with pytest.raises(ValueError, match="bad.tflite"):
        kzoo.export.run_litert(path, {})
    with pytest.raises(FileNotFoundError):
        kzoo.export.tflite_ops(tmp_path / "missing.tflite")


def test_damaged_keras_files_are_refused(tmp_path):
    model = models.gru_regressor()
    good = tmp_path / "model.keras"
    model.save(good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a .keras file"):
        kzoo.export(truncated, str(tmp_path / "out.onnx"))
    not_a_model = tmp_path / "notes.keras"
    with zipfile.ZipFile(not_a_model, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="no 'config.json'"):
        kzoo.export(not_a_model, str(tmp_path / "out.onnx"))
    bad_config = tmp_path / "bad_config.keras"
    with zipfile.ZipFile(bad_config, "w") as archive:
        archive.writestr("config.json", "{not json")
    with pytest.raises(ValueError, match="Could not load"):
        kzoo.export(bad_config, str(tmp_path / "out.onnx"))
    with pytest.raises(FileNotFoundError):
        kzoo.export(tmp_path / "missing.keras", str(tmp_path / "out.onnx"))
    # The intact file loads with equal outputs.
    x = np.ones((2, 4, 3), np.float32)
    reloaded = kzoo.export.load_keras_file(good)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"format": "coreml"}, "`format` must be one of"),
        ({"path": "model.pb", "format": "litert"}, "'.tflite' file"),
        ({"path": "model.onnx", "quantize": "dynamic"}, "implemented for format='litert'"),
        ({"quantize": "int4"}, "`quantize` must be"),
        ({"recurrent": "cudnn"}, "`recurrent` must be"),
        ({"batch_size": 0}, "`batch_size` must be a positive int"),
        ({"recurrent": "unroll"}, "needs `max_length`"),
        ({"streaming": True, "recurrent": "fused"}, "does not apply"),
        ({"streaming": True, "chunk_length": None}, "needs `chunk_length`"),
        ({"streaming": True, "model": "classifier"}, "Bidirectional"),
    ],
)
def test_bad_export_arguments(kwargs, message, tmp_path):
    kwargs = dict(kwargs)
    model = models.classifier() if kwargs.pop("model", None) else models.language_model()
    path = str(tmp_path / kwargs.pop("path", "model.tflite"))
    with pytest.raises(ValueError, match=message):
        kzoo.export(model, path, **kwargs)


def test_export_many_checks_its_targets(tmp_path):
    model = models.gru_regressor()
    with pytest.raises(TypeError, match="Unknown export arguments"):
        kzoo.export.export_many(model, [str(tmp_path / "a.onnx")], quantise="dynamic")
    with pytest.raises(TypeError, match="needs a 'path'"):
        kzoo.export.export_many(model, [{"format": "onnx"}])
    with pytest.raises(ValueError, match="'.onnx' file"):
        kzoo.export.export_many(model, [{"path": str(tmp_path / "a.tflite"), "format": "onnx"}])


def test_streaming_needs_kzoo_recurrent_layers(tmp_path):
    ids = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.LSTM(4, return_sequences=True)(keras.layers.Embedding(10, 4)(ids))
    with pytest.raises(ValueError, match="kzoo.convert.from_keras"):
        kzoo.export(keras.Model(ids, x), str(tmp_path / "s.tflite"), streaming=True)


def test_subprocess_route_names_itself_when_tensorflow_is_missing(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorflow" else real(name, *a),
    )
    with pytest.raises(RuntimeError, match=r"python -m kzoo.export MODEL.keras OUT"):
        job = {
            "path": str(tmp_path / "x.tflite"),
            "format": "litert",
            "options": {},
            "inputs": None,
        }
        api._subprocess_export(models.gru_regressor(), None, [job], 10)


def test_layers_defined_in_main_cannot_cross_to_the_subprocess():
    class Scale(keras.layers.Layer):
        def call(self, x):
            return 2.0 * x

    Scale.__module__ = "__main__"
    x = keras.Input(shape=(3,))
    model = keras.Model(x, Scale()(x))
    with pytest.raises(ValueError, match="defined in __main__"):
        api._custom_modules(model)


def test_export_module_is_callable():
    assert callable(kzoo.export) and kzoo.export.export is api.export
