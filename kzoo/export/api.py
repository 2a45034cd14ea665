"""`kzoo.export.export`: one call that writes, reloads and checks an export."""

import dataclasses
import importlib.util
import json
import math
import numbers
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np

from kzoo.backend import BACKEND
from kzoo.export._layout import fusable, recurrent_layers, streaming_layout, structured_inputs
from kzoo.utils.atomic_write import atomic_path, check_writable_folder, write_json

FORMATS = ("tf_saved_model", "litert", "onnx")
RECURRENT_MODES = ("auto", "fused", "loop", "unroll")
FLOAT_ATOL = 1e-4
QUANTIZED_RTOL = 5e-2
SUBPROCESS_ROUTE = "subprocess: KERAS_BACKEND=tensorflow python -m kzoo.export MODEL.keras OUT"


@dataclasses.dataclass
class ExportReport:
    """What `kzoo.export.export` wrote and how well it matches Keras.

    Attributes:
        path: the written file (`.tflite`, `.onnx`) or SavedModel folder.
        format: `"tf_saved_model"`, `"litert"` or `"onnx"`.
        route: `"in-process"` (TensorFlow backend) or the subprocess command.
        signature: `"serving_default"`, or `"step"` for a streaming export.
        inputs: `{input name: shape}` of the signature (None = dynamic).
        state_names: streaming exports: the state inputs; the outputs carry
            the new states as `new_<name>`.
        ops: `{op: count}`: LiteRT builtin ops, ONNX node types, or the TF
            ops of the SavedModel's graph.
        size_bytes: size of the export.
        float_size_bytes: quantized LiteRT exports: size of the float export.
        recurrent, batch_size, time_steps, quantize, streaming: the settings
            used (after defaults were applied).
        max_abs_diff: largest absolute difference to the Keras model on the
            verification inputs (None without verification).
        argmax_agreement: fraction of rows whose argmax over the last axis of
            the first output equals Keras's (outputs with >= 2 classes).
        tolerance: the bound `max_abs_diff` was checked against: `atol`, by
            default 1e-4 for float exports and, for quantized ones, 5% of the
            output range, `0.05 * (1 + max |keras output|)`.
        verified_rows: number of verification rows.
        notes: what kzoo did that a reader of the file should know.
    """

    path: str
    format: str
    route: str
    signature: str
    inputs: dict
    state_names: list
    ops: dict
    size_bytes: int
    float_size_bytes: int = None
    recurrent: str = None
    batch_size: int = None
    time_steps: int = None
    quantize: str = None
    streaming: bool = False
    max_abs_diff: float = None
    argmax_agreement: float = None
    tolerance: float = None
    verified_rows: int = 0
    notes: list = dataclasses.field(default_factory=list)

    def summary(self):
        """A few human-readable lines."""
        size = f"{self.size_bytes / 1024:.1f} KiB"
        if self.float_size_bytes:
            size += f" (float: {self.float_size_bytes / 1024:.1f} KiB)"
        lines = [
            f"{self.format} export at {self.path} [{self.route}]",
            f"  signature {self.signature!r}, inputs {self.inputs}, size {size}",
            f"  ops: {self.ops}",
        ]
        if self.batch_size:
            lines.insert(1, f"  FIXED BATCH: {_fixed_batch_text(self.batch_size)}")
        if self.max_abs_diff is not None:
            line = (
                f"  verified on {self.verified_rows} rows: max |export - keras| = "
                f"{self.max_abs_diff:.3g} (tolerance {self.tolerance:g})"
            )
            if self.argmax_agreement is not None:
                line += f", argmax agreement {self.argmax_agreement:.4f}"
            lines.append(line)
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _fixed_batch_text(batch_size):
    return (
        f"every call must feed exactly {batch_size} row(s); other batch sizes are refused "
        "(split larger batches, pad the last slice). For a dynamic batch, export with "
        "recurrent='unroll' and max_length (LiteRT), or without batch_size (ONNX, SavedModel)."
    )


class ExportVerificationError(RuntimeError):
    """The export's outputs differ from the Keras model's beyond the tolerance."""


def load_keras_file(path):
    """Loads a `.keras` file with a clear error when it is missing or damaged.

    kzoo's one loader (`kzoo.models.loading.load_file`), without compiling.
    """
    from kzoo.models.loading import load_file

    return load_file(path, compile=False, what="a .keras file")


def _resolve_format(format, path):
    if format is None:
        suffix = os.path.splitext(os.fspath(path))[1].lower()
        format = {".tflite": "litert", ".onnx": "onnx"}.get(suffix, "tf_saved_model")
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {FORMATS}. Received: format={format!r}")
    suffix = {"litert": ".tflite", "onnx": ".onnx"}.get(format)
    if suffix and not os.fspath(path).endswith(suffix):
        raise ValueError(f"A {format} export must be written to a '{suffix}' file. Got {path!r}.")
    return format


def _check_target(path, format):
    """Refuses a destination the export could not take, before any conversion runs."""
    if os.path.isdir(path):
        if format != "tf_saved_model":
            raise IsADirectoryError(
                f"Cannot write the {format} export to {path!r}: it is a folder, and a {format} "
                "export is one file."
            )
        if os.listdir(path) and not os.path.exists(os.path.join(path, "saved_model.pb")):
            raise FileExistsError(
                f"{path!r} is a folder that is not empty and holds no SavedModel; the export "
                "would replace it whole. Choose another path, or remove the folder first."
            )
    elif format == "tf_saved_model" and os.path.exists(path):
        raise FileExistsError(
            f"Cannot write a SavedModel folder to {path!r}: a file exists there. Choose "
            "another path, or give a '.tflite' / '.onnx' name for those formats."
        )
    check_writable_folder(path)


def _positive_or_none(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be a positive int or None. Received: {name}={value!r}")
    return value


def _resolve_options(
    model, format, recurrent, batch_size, max_length, quantize, streaming, chunk_length
):
    if recurrent not in RECURRENT_MODES:
        raise ValueError(
            f"`recurrent` must be one of {RECURRENT_MODES}. Received: recurrent={recurrent!r}"
        )
    if quantize not in (None, "dynamic"):
        raise ValueError(f"`quantize` must be None or 'dynamic'. Received: quantize={quantize!r}")
    if quantize and format != "litert":
        raise ValueError(f"quantize='dynamic' is implemented for format='litert', not {format!r}.")
    batch_size = _positive_or_none(batch_size, "batch_size")
    max_length = _positive_or_none(max_length, "max_length")
    notes = []
    if streaming:
        chunk_length = _positive_or_none(chunk_length, "chunk_length")
        if chunk_length is None:
            raise ValueError("A streaming export needs `chunk_length` (steps per call).")
        if recurrent not in ("auto", "unroll"):
            raise ValueError(
                "A streaming export unrolls its chunk of `chunk_length` steps; "
                f"recurrent={recurrent!r} does not apply (use 'auto')."
            )
        streaming_layout(model)  # raises on bidirectional / non-kzoo recurrent layers
        recurrent, time_steps = "unroll", chunk_length
        notes.append(
            f"streaming: signature 'step' takes {chunk_length} step(s) and the states, "
            "returns the outputs and `new_<state>`; start from zero states"
        )
    else:
        chunk_length = None
        time_steps = max_length
        if recurrent == "auto":
            recurrent = "fused" if format == "litert" else "loop"
        if recurrent == "unroll" and time_steps is None:
            static = [x.shape[1] for x in getattr(model, "inputs", None) or [] if len(x.shape) > 1]
            if not static or None in static:
                raise ValueError(
                    "recurrent='unroll' needs `max_length` (the fixed sequence length)."
                )
    loops = _recurrent_names(model)
    if format == "litert" and recurrent in ("fused", "loop") and batch_size is None and loops:
        batch_size = 1
        notes.append(
            "batch_size=1 by default (a recurrent loop over a dynamic batch needs Flex ops); "
            "pass batch_size=N, or recurrent='unroll' with max_length for a dynamic batch"
        )
    return {
        "recurrent": recurrent,
        "batch_size": batch_size,
        "time_steps": time_steps,
        "streaming": bool(streaming),
        "chunk_length": chunk_length,
        "quantize": quantize,
        "opset": 17,
    }, notes


def _recurrent_names(model):
    """Names of the kzoo and keras.layers recurrent layers of `model`."""
    return [
        layer.name
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.RNN) or layer in recurrent_layers(model)
    ]


def _fusion_notes(model, ops):
    """What became of the recurrent layers of a `recurrent="fused"` LiteRT export."""
    layers = recurrent_layers(model)
    candidates = [layer.name for layer in layers if fusable(layer)]
    fused = ops.get("UNIDIRECTIONAL_SEQUENCE_LSTM", 0)
    notes = []
    if fused:
        notes.append(
            f"{fused} UNIDIRECTIONAL_SEQUENCE_LSTM op(s), each with one leading reset step so "
            "that every invoke() starts from zero state (no reset_all_variables() needed); "
            "masks are applied by gathering the valid steps"
        )
    if fused < len(candidates):
        notes.append(
            f"{len(candidates) - fused} of the LSTM layers {candidates} were not fused (called "
            "with an initial state or constants) and run as WHILE loops"
        )
    others = [name for name in _recurrent_names(model) if name not in candidates]
    if others:
        notes.append(f"run as builtin WHILE loops (no fused LiteRT op): {others}")
    return notes


def _embedding_vocabulary(model):
    sizes = [
        layer.input_dim
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.Embedding)
    ]
    return min(sizes) if sizes else None


def make_sample_inputs(model, rows, steps, seed=0):
    """Random inputs for `model` with padded rows, for verification.

    Integer inputs are token ids in `[1, vocabulary)` (the smallest
    `Embedding.input_dim` of the model); float inputs are standard normal.
    With at least 4 steps, row 0 is right-padded (last third set to 0),
    row 1 left-padded (first two steps 0) and row 2 has a hole (middle
    step 0), so that masks from `Embedding(mask_zero=True)` or `Masking`
    are exercised.
    """
    rng = np.random.default_rng(seed)
    vocabulary = _embedding_vocabulary(model)
    arrays = []
    for x in model.inputs:
        shape = [rows] + [
            steps if i == 1 and d is None else d or 4 for i, d in enumerate(x.shape[1:], 1)
        ]
        dtype = np.dtype(keras.backend.standardize_dtype(x.dtype))
        if dtype.kind in "iu":
            array = rng.integers(1, max(vocabulary or 2, 2), size=shape).astype(dtype)
        elif dtype.kind == "b":
            array = rng.random(shape) > 0.5
        else:
            array = rng.normal(size=shape).astype(dtype)
        if array.ndim >= 2 and shape[1] >= 4 and dtype.kind != "b":
            t = shape[1]
            array[0, t - t // 3 :] = 0
            if rows > 1:
                array[1, :2] = 0
            if rows > 2:
                array[2, t // 2] = 0
        arrays.append(array)
    return arrays


def _keras_outputs(model, inputs):
    outputs = model(structured_inputs(model, inputs), training=False)
    return [np.asarray(keras.ops.convert_to_numpy(y)) for y in keras.tree.flatten(outputs)]


def _expected(model, inputs, options):
    """Keras outputs keyed as the export's runner returns them."""
    if not options["streaming"]:
        return {f"output_{i}": y for i, y in enumerate(_keras_outputs(model, inputs))}
    length = options["chunk_length"]
    chunks = inputs[0].shape[1] // length
    prefixes = [
        _keras_outputs(model, [x[:, : (k + 1) * length] for x in inputs]) for k in range(chunks)
    ]
    expected = {}
    for i in range(len(prefixes[0])):
        shapes = [p[i].shape for p in prefixes[:2]]
        timed = len(shapes) == 2 and shapes[0][1:2] == (length,) and shapes[1][1:2] == (2 * length,)
        for k, prefix in enumerate(prefixes):
            expected[f"chunk{k}/output_{i}"] = prefix[i][:, -length:] if timed else prefix[i]
    return expected


def _compare(expected, actual):
    missing = sorted(set(expected) - set(actual))
    if missing:
        raise ExportVerificationError(f"The export did not return outputs {missing}.")
    worst, agreement = 0.0, None
    for key, want in expected.items():
        got = np.asarray(actual[key], np.float64)
        if got.shape != want.shape:
            raise ExportVerificationError(
                f"Output {key!r}: the export gives shape {got.shape}, Keras {want.shape}."
            )
        worst = max(worst, float(np.max(np.abs(got - want))) if want.size else 0.0)
    first = sorted(k for k in expected if k.endswith("output_0"))[-1]
    if expected[first].ndim >= 2 and expected[first].shape[-1] >= 2:
        agreement = float(
            np.mean(np.argmax(expected[first], -1) == np.argmax(np.asarray(actual[first]), -1))
        )
    return worst, agreement


def _custom_modules(model):
    modules = set()
    for obj in [model, *model._flatten_layers(include_self=False)]:
        module = type(obj).__module__
        if module.split(".")[0] in ("keras", "kzoo", "tf_keras"):
            continue
        if module == "__main__":
            raise ValueError(
                f"{type(obj).__name__} is defined in __main__, which the TensorFlow export "
                f"subprocess ({SUBPROCESS_ROUTE}) cannot import. Move it into a module, or "
                "export from a process that runs the TensorFlow backend."
            )
        modules.add(module)
    return sorted(modules)


def _subprocess_export(model, model_path, jobs, timeout):
    """Runs `jobs` (dicts with path, format, options, inputs) in one TensorFlow subprocess.

    Returns one `(info, outputs)` pair per job, or raises the first job's error.
    """
    if importlib.util.find_spec("tensorflow") is None:
        formats = sorted({job["format"] for job in jobs})
        raise RuntimeError(
            f"Exporting {formats} from the {BACKEND} backend runs TensorFlow in a subprocess "
            f"({SUBPROCESS_ROUTE}), but TensorFlow is not installed "
            "(pip install 'kzoo[tensorflow]')."
        )
    modules = _custom_modules(model)
    with tempfile.TemporaryDirectory() as tmp:
        if model_path is None:
            model_path = os.path.join(tmp, "model.keras")
            model.save(model_path)
        specs = []
        for i, job in enumerate(jobs):
            spec = {
                "path": job.get("write_path", job["path"]),
                "format": job["format"],
                "options": job["options"],
                "report": os.path.join(tmp, f"report_{i}.json"),
                "inputs": None,
                "outputs": os.path.join(tmp, f"outputs_{i}.npz"),
            }
            if job["inputs"] is not None:
                spec["inputs"] = os.path.join(tmp, f"inputs_{i}.npz")
                np.savez(spec["inputs"], *job["inputs"])
            specs.append(spec)
        jobs_path = os.path.join(tmp, "jobs.json")
        write_json(jobs_path, specs)
        command = [
            sys.executable,
            "-m",
            "kzoo.export",
            os.fspath(model_path),
            "--worker",
            jobs_path,
        ]
        for module in modules:
            command += ["--import", module]
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            completed = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as error:
            raise RuntimeError(
                f"The TensorFlow export subprocess ({SUBPROCESS_ROUTE}) did not finish within "
                f"timeout={timeout} s and was stopped; nothing was written. Pass a larger "
                "`timeout` for large models."
            ) from error
        results = []
        for spec in specs:
            info = {}
            if os.path.exists(spec["report"]):
                with open(spec["report"]) as f:
                    info = json.load(f)
            if "error_type" in info:
                error_class = {
                    cls.__name__: cls
                    for cls in (ValueError, TypeError, FileNotFoundError, IsADirectoryError)
                    + (PermissionError, ImportError, NotImplementedError)
                }
                raise error_class.get(info["error_type"], RuntimeError)(
                    f"{info['message']} [route: {SUBPROCESS_ROUTE}]"
                )
            if not info:
                tail = "\n".join(completed.stderr.strip().splitlines()[-15:])
                raise RuntimeError(
                    "The TensorFlow export subprocess failed with exit code "
                    f"{completed.returncode} (route: {SUBPROCESS_ROUTE}). Its last messages:\n{tail}"
                )
            outputs = None
            if spec["inputs"] is not None:
                with np.load(spec["outputs"]) as data:
                    outputs = {key: data[key] for key in data.files}
            results.append((info, outputs))
        return results


def _plan(
    model,
    path,
    format,
    recurrent,
    batch_size,
    max_length,
    quantize,
    streaming,
    chunk_length,
    verify,
    sample_inputs,
    atol,
):
    """Checks the arguments of one export and draws its verification inputs."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or path. Received {type(path).__name__}: {path!r}.")
    path = os.fspath(path)
    format = _resolve_format(format, path)
    _check_target(path, format)
    if atol is not None and (
        isinstance(atol, bool) or not isinstance(atol, numbers.Real) or not atol >= 0
    ):
        raise ValueError(f"`atol` must be None or a number >= 0. Received: atol={atol!r}")
    options, notes = _resolve_options(
        model, format, recurrent, batch_size, max_length, quantize, streaming, chunk_length
    )
    inputs = None
    if verify:
        if sample_inputs is not None:
            inputs = [np.asarray(x) for x in keras.tree.flatten(sample_inputs)]
            _check_sample_inputs(model, inputs, options)
        else:
            block = options["batch_size"] or 4
            rows = block * math.ceil(4 / block)
            steps = 3 * options["chunk_length"] if streaming else options["time_steps"] or 12
            inputs = make_sample_inputs(model, rows, steps)
        if options["batch_size"] and inputs[0].shape[0] % options["batch_size"]:
            raise ValueError(
                f"`sample_inputs` rows ({inputs[0].shape[0]}) must be a multiple of "
                f"batch_size={options['batch_size']}."
            )
    return {
        "path": path,
        "format": format,
        "options": options,
        "notes": notes,
        "inputs": inputs,
        "atol": atol,
    }


def _check_sample_inputs(model, inputs, options):
    """Refuses verification inputs that do not fit the model, before anything is converted."""
    names = [x.name for x in model.inputs]
    if len(inputs) != len(names):
        raise ValueError(
            f"`sample_inputs` must hold one array per model input ({len(names)}: {names}); "
            f"received {len(inputs)}."
        )
    for name, x, array in zip(names, model.inputs, inputs):
        if array.ndim != len(x.shape) or array.ndim == 0 or array.shape[0] == 0:
            raise ValueError(
                f"`sample_inputs` for input {name!r} must have shape {tuple(x.shape)} with at "
                f"least one row; received shape {array.shape}."
            )
        if array.shape[0] != inputs[0].shape[0]:
            raise ValueError(
                f"Every `sample_inputs` array needs the same number of rows; {name!r} has "
                f"{array.shape[0]}, the first {inputs[0].shape[0]}."
            )
    length = options["chunk_length"]
    if options["streaming"] and (inputs[0].ndim < 2 or inputs[0].shape[1] % length):
        raise ValueError(
            f"A streaming export is verified chunk by chunk: the `sample_inputs` time "
            f"dimension must be a multiple of chunk_length={length}; received shape "
            f"{inputs[0].shape}."
        )


def _run(model, model_path, plans, timeout):
    """Writes every planned export; returns `(info, outputs, route)` per plan."""
    if BACKEND == "tensorflow":
        from kzoo.export import _worker

        results = []
        for plan in plans:
            options = plan["options"]
            info = _worker.export(model, plan["write_path"], plan["format"], options)
            outputs = None
            if plan["inputs"] is not None:
                outputs = _worker.run(
                    plan["write_path"],
                    plan["format"],
                    info,
                    plan["inputs"],
                    options["batch_size"],
                    options["chunk_length"],
                )
            results.append((info, outputs, "in-process"))
        return results
    pairs = _subprocess_export(model, model_path, plans, timeout)
    return [(info, outputs, SUBPROCESS_ROUTE) for info, outputs in pairs]


def _finish(model, plan, info, outputs, route):
    """The report of one export, verified against `model` when inputs were drawn."""
    options = plan["options"]
    report = ExportReport(
        path=plan["path"],
        format=plan["format"],
        route=route,
        signature=info["signature"],
        inputs=info["inputs"],
        state_names=info["state_names"],
        ops=info["ops"],
        size_bytes=info["size_bytes"],
        float_size_bytes=info["float_size_bytes"],
        recurrent=options["recurrent"],
        batch_size=options["batch_size"],
        time_steps=options["time_steps"],
        quantize=options["quantize"],
        streaming=options["streaming"],
        notes=list(plan["notes"]),
    )
    if plan["format"] == "litert" and options["recurrent"] == "fused":
        report.notes += _fusion_notes(model, info["ops"])
    inputs = plan["inputs"]
    if inputs is None:
        return report
    expected = _expected(model, inputs, options)
    report.max_abs_diff, report.argmax_agreement = _compare(expected, outputs)
    if plan["atol"] is not None:
        report.tolerance = float(plan["atol"])
    elif options["quantize"]:
        scale = max(float(np.max(np.abs(y))) for y in expected.values() if y.size)
        report.tolerance = QUANTIZED_RTOL * (1.0 + scale)
    else:
        report.tolerance = FLOAT_ATOL
    report.verified_rows = int(inputs[0].shape[0])
    if not report.max_abs_diff <= report.tolerance:
        raise ExportVerificationError(
            f"The {plan['format']} export differs from the Keras model by "
            f"{report.max_abs_diff:.3g} > tolerance {report.tolerance:g}, so it was not written: "
            f"{plan['path']!r} keeps its previous content (if any).\n{report.summary()}"
        )
    return report


class _Staged:
    """One output written at a temporary sibling path, moved over the target only on `commit`.

    A rejected or failed export is discarded, so the previous file (or
    SavedModel folder) at the target is left untouched.
    """

    def __init__(self, path):
        self._context = atomic_path(path)
        self.path = self._context.__enter__()
        self._open = True

    def commit(self):
        self._open = False
        self._context.__exit__(None, None, None)

    def discard(self):
        if self._open:
            self._open = False
            error = RuntimeError("export discarded")
            self._context.__exit__(type(error), error, None)  # removes the temporary output


def _known_inputs(model):
    try:
        return model.inputs
    except (AttributeError, ValueError):  # subclassed models never called on keras.Input
        return None


def check_exportable(model):
    """Raises a `ValueError` that says what to export instead when `model` cannot be exported.

    An export is a graph from fixed inputs to outputs, so the model needs
    known inputs: a functional or Sequential model built on `keras.Input`s.
    kzoo's subclassed models get a pointer to their exportable part.
    """
    if _known_inputs(model):
        return
    from kzoo.models import Seq2Seq, TextPipeline

    name = type(model).__name__
    if isinstance(model, Seq2Seq):
        raise ValueError(
            "kzoo.export cannot export a Seq2Seq model itself: it is a subclassed model "
            "without fixed inputs, and its generation (`generate`, greedy or beam search) "
            "runs in Python around the network. Export its teacher-forced scorer as a "
            "functional model instead:\n"
            "    source = keras.Input((None,), dtype='int32', name='source_ids')\n"
            "    target = keras.Input((None,), dtype='int32', name='decoder_input_ids')\n"
            "    kzoo.export(keras.Model([source, target], s2s((source, target))), path)\n"
            "(see 'The model builders' in docs/export.md)."
        )
    if isinstance(model, TextPipeline):
        raise ValueError(
            "kzoo.export cannot export a TextPipeline: its tokenizer runs in Python on raw "
            "text, which no export format holds. Export the classifier (token ids -> "
            "probabilities) with `kzoo.export(pipeline.classifier, path)` and turn texts into "
            "ids with `pipeline.tokenizer(texts)` next to the exported file."
        )
    if isinstance(model, keras.Sequential):
        raise ValueError(
            "Export needs a model with known inputs, and this Sequential model has none (it "
            "was never built). Start it with `keras.Input(shape=...)`, e.g. "
            "`keras.Sequential([keras.Input((None, features)), ...])`."
        )
    raise ValueError(
        "Export needs a model with known inputs (a functional or Sequential model built on "
        f"`keras.Input`s); {name} has none. Wrap it: `x = keras.Input(shape=..., "
        "dtype=...)`, then `kzoo.export(keras.Model(x, model(x)), path)`."
    )


def _as_model(model):
    model_path = None
    if isinstance(model, (str, os.PathLike)):
        model_path = model
        model = load_keras_file(model_path)
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model or a .keras path. Received: {model!r}")
    check_exportable(model)
    return model, model_path


def export(
    model,
    path,
    format=None,
    *,
    recurrent="auto",
    batch_size=None,
    max_length=None,
    quantize=None,
    streaming=False,
    chunk_length=1,
    verify=True,
    sample_inputs=None,
    atol=None,
    timeout=900,
):
    """Exports a Keras model and checks the export against Keras.

    Works for any Keras model with known inputs; kzoo recurrent layers get
    the lowering chosen by `recurrent`. Under the TensorFlow backend the
    export runs in-process. Under JAX or PyTorch the model is saved as
    `.keras` and exported by `KERAS_BACKEND=tensorflow python -m kzoo.export`
    in a subprocess (the `.keras` file loads there with the same weights);
    the verification compares with the model in the calling process.

    Args:
        model: a Keras model, or the path of a `.keras` file.
        path: output `.tflite` file, `.onnx` file, or SavedModel folder.
        format: `"litert"`, `"onnx"` or `"tf_saved_model"`; by default
            taken from the suffix of `path`.
        recurrent: how recurrent layers are lowered. `"auto"` (default):
            `"fused"` for LiteRT, `"loop"` otherwise. `"fused"`: kzoo LSTM
            layers become one `UNIDIRECTIONAL_SEQUENCE_LSTM` op each (other
            recurrent layers use the loop); needs a static batch size.
            `"loop"`: a `WHILE` loop (static batch size for LiteRT).
            `"unroll"`: one copy of the cell per step; needs `max_length`,
            allows a dynamic batch.
        batch_size: static batch size of the signature; None = dynamic,
            except LiteRT with `"fused"`/`"loop"`, where it defaults to 1.
        max_length: static sequence length; None = dynamic.
        quantize: None or `"dynamic"` (LiteRT dynamic-range int8 weights).
        streaming: export a `"step"` signature that takes `chunk_length`
            steps plus every recurrent state and returns the outputs plus
            the new states `new_<state name>` (names in the report).
        chunk_length: steps per streaming call.
        verify: reload the export, run it on `sample_inputs` and compare
            with Keras; raises `ExportVerificationError` beyond `atol`.
        sample_inputs: list of arrays, one per model input; by default
            random inputs with padded rows (see `make_sample_inputs`).
        atol: absolute tolerance of the verification; default 1e-4, and
            `0.05 * (1 + max |keras output|)` for quantized LiteRT.
        timeout: seconds allowed to the TensorFlow subprocess.

    The export is written at a temporary path next to `path`, verified
    there, and moved over `path` only when it passes: a failed, interrupted
    or rejected export leaves the previous file (or folder) at `path` as it
    was.

    Returns:
        An `ExportReport` (sizes, op counts, measured difference). A LiteRT
        file with a fixed batch (`report.batch_size`) takes exactly that many
        rows per call; `report.summary()` says so first.

    Raises:
        ValueError: bad arguments, a model without known inputs (the message
            says what to export instead), or a damaged `.keras` file.
        FileNotFoundError, IsADirectoryError, FileExistsError,
            NotADirectoryError: an unusable `model` file or output `path`.
        ExportVerificationError: the export differs from Keras beyond the
            tolerance; nothing was written.
        RuntimeError: the conversion failed (e.g. it would need Flex ops).

    Example:

    >>> report = kzoo.export(model, "model.tflite", quantize="dynamic")
    >>> print(report.summary())
    """
    return export_many(
        model,
        [path],
        format=format,
        recurrent=recurrent,
        batch_size=batch_size,
        max_length=max_length,
        quantize=quantize,
        streaming=streaming,
        chunk_length=chunk_length,
        verify=verify,
        sample_inputs=sample_inputs,
        atol=atol,
        timeout=timeout,
    )[0]


def export_many(model, targets, *, timeout=900, **defaults):
    """Several exports of one model; under JAX/PyTorch in one TensorFlow subprocess.

    Args:
        model: a Keras model, or the path of a `.keras` file.
        targets: list of output paths, or of dicts with a `"path"` and any
            `export` arguments for that target.
        timeout: seconds allowed to the TensorFlow subprocess.
        **defaults: `export` arguments shared by all targets.

    Returns:
        A list of `ExportReport`, one per target.

    Example:

    >>> kzoo.export.export_many(model, ["m.tflite", "m.onnx",
    ...     {"path": "m_int8.tflite", "quantize": "dynamic"}])
    """
    model, model_path = _as_model(model)
    arguments = {
        "format": None,
        "recurrent": "auto",
        "batch_size": None,
        "max_length": None,
        "quantize": None,
        "streaming": False,
        "chunk_length": 1,
        "verify": True,
        "sample_inputs": None,
        "atol": None,
    }
    unknown = set(defaults) - set(arguments)
    if unknown:
        raise TypeError(f"Unknown export arguments: {sorted(unknown)}")
    plans = []
    if isinstance(targets, (str, os.PathLike)) or not isinstance(targets, (list, tuple)):
        raise TypeError(f"`targets` must be a list of paths or dicts. Received: {targets!r}")
    for target in targets:
        if not isinstance(target, (str, os.PathLike, dict)):
            raise TypeError(
                "`path` must be a str or path (or, in `export_many`, a dict with a 'path'). "
                f"Received {type(target).__name__}: {target!r}."
            )
        target = {"path": target} if isinstance(target, (str, os.PathLike)) else dict(target)
        unknown = set(target) - set(arguments) - {"path"}
        if unknown or "path" not in target:
            raise TypeError(f"A target needs a 'path' and export arguments; got {sorted(target)}")
        settings = {**arguments, **defaults, **target}
        plans.append(_plan(model, **settings))
    paths = [plan["path"] for plan in plans]
    repeated = sorted({p for p in paths if paths.count(p) > 1})
    if repeated:
        raise ValueError(f"Each target needs its own path; repeated: {repeated}")
    # Every output is written at a temporary path next to its target, verified
    # there, and moved over the target only when it passed.
    staged = []
    try:
        for plan in plans:
            staged.append(_Staged(plan["path"]))
            plan["write_path"] = staged[-1].path
        results = _run(model, model_path, plans, timeout)
        reports, failures = [], []
        for plan, result, stage in zip(plans, results, staged):
            try:
                report = _finish(model, plan, *result)
            except ExportVerificationError as error:
                stage.discard()
                failures.append(error)
                continue
            stage.commit()
            reports.append(report)
    finally:
        for stage in staged:
            stage.discard()
    if failures:
        if len(plans) > 1:
            written = [report.path for report in reports]
            failures[0].args = (f"{failures[0].args[0]}\nTargets written: {written}",)
        raise failures[0]
    return reports
