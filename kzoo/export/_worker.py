"""Writes one export and runs it; the part of `kzoo.export` that needs TensorFlow.

Runs in the caller's process under the TensorFlow backend, and in the
`python -m kzoo.export` subprocess for JAX and PyTorch callers.
"""

import os
import tempfile
from collections import Counter

import numpy as np

from kzoo.export import _tf_graph
from kzoo.export.runtime import litert_interpreter, run_litert, run_onnx, run_saved_model
from kzoo.export.tflite_ops import non_builtin_ops, tflite_ops
from kzoo.utils.atomic_write import write_bytes


def _directory_size(path):
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def _onnx_ops(model_proto):
    counts = Counter()

    def visit(graph):
        for node in graph.node:
            counts[node.op_type] += 1
            for attribute in node.attribute:
                if attribute.type == attribute.GRAPH:
                    visit(attribute.g)

    visit(model_proto.graph)
    return dict(sorted(counts.items()))


def _tf_ops(function):
    graph_def = function.get_concrete_function().graph.as_graph_def()
    counts = Counter(node.op for node in graph_def.node)
    for library_function in graph_def.library.function:
        counts.update(node.op for node in library_function.node_def)
    return dict(sorted(counts.items()))


def export(model, path, format, options):
    """Writes `model` to `path`; returns a dict of facts for the report.

    `options` holds the resolved settings of `kzoo.export.export`:
    `recurrent`, `batch_size`, `time_steps`, `streaming`, `quantize`,
    `opset`.
    """
    specs = _tf_graph.input_specs(model, options["batch_size"], options["time_steps"])
    state_names, state_sizes = [], []
    if options["streaming"]:
        function, state_names, state_sizes = _tf_graph.streaming_function(model, specs)
        signature = "step"
    else:
        function = _tf_graph.serving_function(model, specs, options["recurrent"])
        signature = "serving_default"
    info = {
        "signature": signature,
        "inputs": {spec.name: list(spec.shape.as_list()) for spec in specs},
        "state_names": state_names,
        "state_sizes": state_sizes,
        "float_size_bytes": None,
    }
    path = os.fspath(path)
    if format == "tf_saved_model":
        _tf_graph.save_module(model, {signature: function}, path)
        info["size_bytes"] = _directory_size(path)
        info["ops"] = _tf_ops(function)
    elif format == "litert":
        with tempfile.TemporaryDirectory() as saved_model_dir:
            _tf_graph.save_module(model, {signature: function}, saved_model_dir)
            data = _tf_graph.convert_litert(saved_model_dir, [signature], options["quantize"])
            if options["quantize"]:
                info["float_size_bytes"] = len(
                    _tf_graph.convert_litert(saved_model_dir, [signature])
                )
        ops = tflite_ops(data)
        bad = non_builtin_ops(ops)
        if bad:
            raise RuntimeError(f"The converted model holds non-builtin ops {bad}; not written.")
        write_bytes(path, data)
        info["size_bytes"] = len(data)
        info["ops"] = ops
    elif format == "onnx":
        proto = _tf_graph.convert_onnx(
            function, [*function.input_signature], path, options["opset"]
        )
        info["size_bytes"] = os.path.getsize(path)
        info["ops"] = _onnx_ops(proto)
    else:
        raise ValueError(f"Unknown format {format!r}.")
    return info


def _runner(path, format, signature):
    if format == "litert":
        interpreter = litert_interpreter(path)
        return lambda feed: run_litert(path, feed, signature, interpreter=interpreter)
    if format == "onnx":
        return lambda feed: run_onnx(path, feed)
    return lambda feed: run_saved_model(path, feed, signature)


def run(path, format, info, inputs, batch_size, chunk_length=None):
    """Runs the export on `inputs` (a list of arrays, one per model input).

    Whole-sequence exports run in slices of `batch_size` rows when the batch
    is static. Streaming exports run chunk by chunk from zero states, and
    return one list of outputs per chunk.
    """
    names = list(info["inputs"])
    runner = _runner(path, format, info["signature"])
    rows = inputs[0].shape[0]
    step = batch_size or rows
    if not info["state_names"]:
        pieces = []
        for start in range(0, rows, step):
            feed = {n: x[start : start + step] for n, x in zip(names, inputs)}
            pieces.append(runner(feed))
        return {key: np.concatenate([p[key] for p in pieces]) for key in pieces[0]}
    steps = inputs[0].shape[1]
    chunks = []
    for start in range(0, rows, step):
        states = None
        for t in range(0, steps, chunk_length):
            feed = {n: x[start : start + step, t : t + chunk_length] for n, x in zip(names, inputs)}
            if states is None:
                states = {
                    name: np.zeros((feed[names[0]].shape[0], size), np.float32)
                    for name, size in zip(info["state_names"], info["state_sizes"])
                }
            result = runner({**feed, **states})
            states = {name: result[f"new_{name}"] for name in info["state_names"]}
            chunks.append((start, t, result))
    outputs = {}
    for _start, t, result in chunks:
        for key, value in result.items():
            if key.startswith("output_"):
                outputs.setdefault(f"chunk{t // chunk_length}/{key}", []).append(value)
    return {key: np.concatenate(values) for key, values in outputs.items()}
