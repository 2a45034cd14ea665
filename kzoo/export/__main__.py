"""`python -m kzoo.export MODEL.keras OUT [options]`: export a saved model.

Run it with `KERAS_BACKEND=tensorflow` to export in-process; under another
backend it starts that TensorFlow process itself. `kzoo.export.export` uses
the hidden `--worker JOBS.json` flag to run this module as its TensorFlow
worker.

Exit codes: 0 the export was written and verified; 1 the export failed or
was rejected by the verification (nothing was written, a previous file at the
output path is unchanged); 2 a wrong command line or input (missing, empty or
corrupt model file, unusable output path, bad option); 130 interrupted.
Errors print one line on standard error; `--debug` adds the traceback.
"""

import argparse
import importlib
import json
import sys
import traceback

from kzoo.__main__ import CommandError, run_command


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m kzoo.export",
        description="Export a .keras model to LiteRT, ONNX or a TF SavedModel, and verify it.",
    )
    parser.add_argument("model", help="the .keras file")
    parser.add_argument(
        "output", nargs="?", help="the .tflite or .onnx file, or the SavedModel folder"
    )
    parser.add_argument("--format", choices=["litert", "onnx", "tf_saved_model"])
    parser.add_argument("--recurrent", default="auto", choices=["auto", "fused", "loop", "unroll"])
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--quantize", choices=["dynamic"])
    parser.add_argument("--streaming", action="store_true")
    parser.add_argument("--chunk-length", type=int, default=1)
    parser.add_argument("--no-verify", action="store_true")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="module to import first (one that registers custom layers)",
    )
    parser.add_argument("--debug", action="store_true", help="print tracebacks of errors")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser


def _run_jobs(model_path, jobs_path):
    """Runs the export jobs written by `kzoo.export` in a JAX/PyTorch process.

    Each job names the output, the format, the resolved options, and files
    for the verification inputs, the outputs and the report (or the error).
    """
    import numpy as np

    from kzoo.backend import BACKEND
    from kzoo.export import _worker
    from kzoo.export.api import load_keras_file
    from kzoo.utils.atomic_write import write_json

    with open(jobs_path) as f:
        jobs = json.load(f)
    failed = False
    model = None
    for job in jobs:
        try:
            if BACKEND != "tensorflow":
                raise RuntimeError("The export worker needs KERAS_BACKEND=tensorflow.")
            model = model or load_keras_file(model_path)
            options = job["options"]
            info = _worker.export(model, job["path"], job["format"], options)
            if job["inputs"]:
                with np.load(job["inputs"]) as data:
                    inputs = [data[f"arr_{i}"] for i in range(len(data.files))]
                outputs = _worker.run(
                    job["path"],
                    job["format"],
                    info,
                    inputs,
                    options["batch_size"],
                    options["chunk_length"],
                )
                np.savez(job["outputs"], **outputs)
        except Exception as error:
            traceback.print_exc()
            info = {"error_type": type(error).__name__, "message": str(error)}
            failed = True
        write_json(job["report"], info)
        if failed:
            break
    return 1 if failed else 0


def _export(args):
    for module in args.imports:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise CommandError(f"--import {module}: cannot import it ({error}).") from error
    if args.worker:
        return _run_jobs(args.model, args.worker)
    for flag in ("batch_size", "max_length", "chunk_length"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            option = "--" + flag.replace("_", "-")
            raise CommandError(f"{option} must be a positive int. Received {value}.")

    from kzoo.export.api import export

    report = export(
        args.model,
        args.output,
        args.format,
        recurrent=args.recurrent,
        batch_size=args.batch_size,
        max_length=args.max_length,
        quantize=args.quantize,
        streaming=args.streaming,
        chunk_length=args.chunk_length,
        verify=not args.no_verify,
    )
    print(report.summary())
    return 0


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.output is None and not args.worker:
        parser.error("the output path is required")
    from kzoo.export.api import ExportVerificationError

    # A rejected export (1) differs from a wrong input (2): see the module docstring.
    failures = (ExportVerificationError, RuntimeError, ImportError, NotImplementedError)
    return run_command(_export, args, "python -m kzoo.export", debug=args.debug, failures=failures)


if __name__ == "__main__":
    sys.exit(main())
