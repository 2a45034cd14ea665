"""`python -m kzoo.export MODEL.keras OUT [options]`: export a saved model.

Run it with `KERAS_BACKEND=tensorflow` to export in-process; under another
backend it starts that TensorFlow process itself. `kzoo.export.export` uses
the hidden `--worker JOBS.json` flag to run this module as its TensorFlow
worker.
"""

import argparse
import importlib
import json
import sys
import traceback


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
        with open(job["report"], "w") as f:
            json.dump(info, f)
        if failed:
            break
    return 1 if failed else 0


def main(argv=None):
    args = _parser().parse_args(argv)
    for module in args.imports:
        importlib.import_module(module)
    if args.worker:
        return _run_jobs(args.model, args.worker)
    if args.output is None:
        _parser().error("the output path is required")

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


if __name__ == "__main__":
    sys.exit(main())
