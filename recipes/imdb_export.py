"""IMDB classifier to LiteRT: accuracy of the float and int8 `.tflite` files.

Loads a saved IMDB classifier (default `saved_models/imdb_bigru.keras`),
exports its id-level network with `kzoo.export` to a float LiteRT file and
to a dynamic-range int8 one, and scores Keras, float LiteRT and int8 LiteRT
on the same IMDB test reviews (tokenized once by the pipeline's own
tokenizer), with the stock `ai_edge_litert` interpreter:

    KZOO_DATA_DIR=../shared/data KERAS_BACKEND=tensorflow python recipes/imdb_export.py
    python recipes/imdb_export.py --limit 500          # a quick look

Prints a table (accuracy, agreement with Keras, largest probability change,
file size) and writes it as `<output-dir>/imdb_export_<backend>.json`. Under
JAX or PyTorch the export runs through kzoo's TensorFlow subprocess route.
"""

import argparse
import os
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as a script: make `kzoo` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kzoo  # noqa: E402
import kzoo.export  # noqa: E402
from kzoo.datasets.imdb import load_texts  # noqa: E402
from kzoo.utils import check_writable_folder, int_range, write_json  # noqa: E402
from kzoo.utils.bucketing import BucketedBatches  # noqa: E402


def litert_probabilities(path, batches):
    """Positive-class probabilities of a static-batch LiteRT classifier."""
    interpreter = kzoo.export.litert_interpreter(path)

    def run(ids):
        outputs = kzoo.export.run_litert(path, {"token_ids": ids}, interpreter=interpreter)
        return outputs["output_0"]

    return batches.map_batches(run)[:, 0]


def score(name, probabilities, labels, reference, size_bytes, seconds):
    predicted = (probabilities > 0.5).astype("int32")
    return {
        "model": name,
        "accuracy": float(np.mean(predicted == labels)),
        "agreement_with_keras": float(np.mean(predicted == (reference > 0.5))),
        "max_abs_probability_change": float(np.abs(probabilities - reference).max()),
        "size_bytes": size_bytes,
        "seconds": round(seconds, 1),
    }


def main(argv=None):
    args = parse_args(argv)
    pipeline = kzoo.models.load(args.model)
    texts, labels = load_texts("test")
    if args.limit:
        keep = np.random.default_rng(0).permutation(len(texts))[: args.limit]
        texts, labels = [texts[i] for i in keep], labels[keep]
    classifier = getattr(pipeline, "classifier", pipeline)  # a TextPipeline holds one
    sequences = pipeline.tokenizer.encode(texts)
    # Sorted by length; padding rows fill the static batch of the LiteRT files.
    batches = BucketedBatches(
        sequences,
        batch_size=args.batch_size,
        bucket_width=pipeline.preprocessor.bucket_width,
        sort_window=len(sequences),
        pad_batches=True,
    )

    start = time.perf_counter()
    reference = batches.map_batches(classifier.predict_on_batch)[:, 0]
    keras_seconds = time.perf_counter() - start
    rows = [
        score(
            f"Keras ({keras.backend.backend()})",
            reference,
            labels,
            reference,
            os.path.getsize(args.model),
            keras_seconds,
        )
    ]

    os.makedirs(args.output_dir, exist_ok=True)
    targets = [
        {"path": os.path.join(args.output_dir, "imdb_float.tflite")},
        {"path": os.path.join(args.output_dir, "imdb_int8.tflite"), "quantize": "dynamic"},
    ]
    reports = kzoo.export.export_many(
        classifier, targets, batch_size=args.batch_size, max_length=None
    )
    for report, name in zip(reports, ("LiteRT float32", "LiteRT int8 (dynamic range)")):
        print(report.summary(), flush=True)
        start = time.perf_counter()
        probabilities = litert_probabilities(report.path, batches)
        rows.append(
            score(
                name,
                probabilities,
                labels,
                reference,
                report.size_bytes,
                time.perf_counter() - start,
            )
        )

    result = {
        "model": args.model,
        "backend": keras.backend.backend(),
        "test_reviews": len(texts),
        "batch_size": args.batch_size,
        "ops": reports[1].ops,
        "rows": rows,
    }
    path = os.path.join(args.output_dir, f"imdb_export_{result['backend']}.json")
    write_json(path, result)
    print(f"\n{len(texts)} IMDB test reviews, {args.model}:\n")
    print("| model | accuracy | agreement with Keras | max prob. change | size | seconds |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['model']} | {r['accuracy'] * 100:.2f}% | {r['agreement_with_keras'] * 100:.2f}% "
            f"| {r['max_abs_probability_change']:.2g} | {r['size_bytes'] / 2**20:.2f} MiB "
            f"| {r['seconds']} |"
        )
    change = round((rows[2]["accuracy"] - rows[0]["accuracy"]) * 100, 2) + 0.0  # no "-0.00"
    print(f"\nint8 accuracy change: {change:+.2f} points (written to {path})")
    return result


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="saved_models/imdb_bigru.keras")
    parser.add_argument(
        "--limit", type=int_range(1), default=None, help="score N random test reviews"
    )
    parser.add_argument(
        "--batch-size", type=int_range(1), default=64, help="static batch of the export"
    )
    parser.add_argument("--output-dir", default=None, help="default: a temporary folder")
    args = parser.parse_args(argv)
    if args.output_dir is None:
        args.output_dir = tempfile.mkdtemp(prefix="kzoo_imdb_export_")
    if not os.path.isfile(args.model):
        parser.error(f"argument --model: file not found: {args.model!r}")
    try:  # before the data are loaded and the model exported
        check_writable_folder(os.path.join(args.output_dir, "imdb_export.json"))
    except OSError as e:
        parser.error(f"argument --output-dir: {e}")
    return args


if __name__ == "__main__":
    main()
