"""IMDB classifier to LiteRT: accuracy of the float and int8 `.tflite` files.

Loads a saved IMDB classifier (default `saved_models/imdb_bigru.keras`),
exports its network on ids with `kzoo.export` to a float LiteRT file and to
a dynamic-range int8 one, and scores Keras, float LiteRT and int8 LiteRT on
the same IMDB test reviews (tokenized once by the model's own tokenizer) with
the stock `ai_edge_litert` interpreter. The export needs TensorFlow (the one
recipe that imports it); under JAX or PyTorch it runs in kzoo's TensorFlow
subprocess.

    KERAS_BACKEND=tensorflow python recipes/imdb_export.py           # all 25,000 test reviews
    KERAS_BACKEND=tensorflow python recipes/imdb_export.py --quick   # 500 reviews
    python recipes/imdb_export.py --model runs/imdb/jax-seed1337/model.keras

Prints a table (accuracy, agreement with Keras, largest probability change,
file size) and writes into `runs/imdb_export/<backend>[-quick]-seed<seed>/`:
`imdb_float.tflite`, `imdb_int8.tflite`, `metrics.json` (the table without
timings), `timings.json` and `model_card.md` (of the int8 file).
"""

import dataclasses
import os
import time

import keras
import numpy as np

import kzoo.export
import kzoo.models
from kzoo.datasets.imdb import load_texts
from kzoo.recipes import parse_settings, progress, start_run
from kzoo.utils.bucketing import BucketedBatches
from kzoo.utils.optional import require


@dataclasses.dataclass(frozen=True)
class Settings:
    model: str = dataclasses.field(
        default="saved_models/imdb_bigru.keras",
        metadata={"help": "a classifier saved by recipes/imdb.py"},
    )
    limit: int | None = dataclasses.field(
        default=None,
        metadata={"help": "score this many random test reviews (None: all 25,000)", "min": 1},
    )
    batch_size: int = dataclasses.field(
        default=64, metadata={"help": "static batch of the exported files", "min": 1}
    )
    data_path: str | None = dataclasses.field(
        default=None, metadata={"help": "aclImdb_v1.tar.gz or an aclImdb folder"}
    )


QUICK_NOTICE = "Quick run (--quick): 500 test reviews; the full run scores all 25,000."
QUICK = {"limit": 500}
NAMES = ("LiteRT float32", "LiteRT int8 (dynamic range)")


def main(argv=None):
    settings, options = parse_settings(
        Settings, QUICK, argv=argv, recipe="imdb_export", description=__doc__
    )
    require("ai_edge_litert.interpreter", extra="export", feature="recipes/imdb_export.py")
    if not os.path.isfile(settings.model):
        raise FileNotFoundError(f"`model` file not found: {settings.model!r}")
    run = start_run(options, quick_notice=QUICK_NOTICE)
    pipeline = kzoo.models.load(settings.model)
    classifier = getattr(pipeline, "classifier", pipeline)  # a TextPipeline holds one
    texts, labels = load_texts("test", path=settings.data_path)
    keep = np.random.default_rng(0).permutation(len(texts))[: settings.limit]
    texts, labels = [texts[i] for i in keep], labels[keep]
    sequences = [
        pipeline.tokenizer.encode([text])[0]
        for text in progress(texts, label=f"Tokenizing {len(texts)} reviews", unit="reviews")
    ]
    # Sorted by length; padding rows fill the static batch of the LiteRT files.
    batches = BucketedBatches(
        sequences,
        batch_size=settings.batch_size,
        bucket_width=pipeline.preprocessor.bucket_width,
        sort_window=len(sequences),
        pad_batches=True,
    )
    start = time.perf_counter()
    reference = batches.restore_order(classifier.predict(batches, verbose=1))[:, 0]
    timings = {f"Keras ({keras.backend.backend()})": time.perf_counter() - start}
    rows = [score(next(iter(timings)), reference, labels, reference, settings.model)]

    targets = [
        {"path": run.file("imdb_float.tflite")},
        {"path": run.file("imdb_int8.tflite"), "quantize": "dynamic"},
    ]
    reports = kzoo.export.export_many(
        classifier, targets, batch_size=settings.batch_size, max_length=None
    )
    for report, name in zip(reports, NAMES):
        print(report.summary(), flush=True)
        run.record(os.path.basename(report.path))
        start = time.perf_counter()
        probabilities = litert_probabilities(report.path, batches)
        timings[name] = time.perf_counter() - start
        rows.append(score(name, probabilities, labels, reference, report.path))

    metrics = {"model": settings.model, "test_reviews": len(texts), "ops": reports[1].ops}
    metrics.update(batch_size=settings.batch_size, rows=rows)
    run.write_json("metrics.json", metrics)
    run.write_json("timings.json", {"seconds": timings})
    run.write_text("model_card.md", model_card(metrics, timings))
    print(table(metrics, timings))
    print(run.summary())
    return metrics


def litert_probabilities(path, batches):
    """Positive-class probabilities of a static-batch LiteRT classifier, with a progress bar."""
    interpreter = kzoo.export.litert_interpreter(path)
    outputs = []
    for i in progress(range(len(batches)), label=f"Scoring {os.path.basename(path)}"):
        (ids,) = batches[i]
        result = kzoo.export.run_litert(path, {"token_ids": ids}, interpreter=interpreter)
        outputs.append(np.asarray(result["output_0"]))
    return batches.restore_order(np.concatenate(outputs))[:, 0]


def score(name, probabilities, labels, reference, path):
    predicted = (probabilities > 0.5).astype("int32")
    return {
        "model": name,
        "accuracy": float(np.mean(predicted == labels)),
        "agreement_with_keras": float(np.mean(predicted == (reference > 0.5))),
        "max_abs_probability_change": float(np.abs(probabilities - reference).max()),
        "size_bytes": os.path.getsize(path),
    }


def table(metrics, timings):
    lines = [
        f"{metrics['test_reviews']} IMDB test reviews, {metrics['model']}:",
        "",
        "| model | accuracy | agreement with Keras | max prob. change | size | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in metrics["rows"]:
        lines.append(
            f"| {r['model']} | {r['accuracy']:.2%} | {r['agreement_with_keras']:.2%} "
            f"| {r['max_abs_probability_change']:.2g} | {r['size_bytes'] / 2**20:.2f} MiB "
            f"| {timings[r['model']]:.1f} |"
        )
    keras_row, _, int8_row = metrics["rows"]
    change = round((int8_row["accuracy"] - keras_row["accuracy"]) * 100, 2) + 0.0  # no "-0.00"
    lines += ["", f"int8 accuracy change: {change:+.2f} points"]
    return "\n".join(lines)


def model_card(metrics, timings):
    return f"""# IMDB classifier as LiteRT int8 (`recipes/imdb_export.py`)

`imdb_int8.tflite` (dynamic-range int8 weights) and `imdb_float.tflite`: the network
on ids of `{metrics["model"]}`, exported with `kzoo.export` (builtin LiteRT ops only),
static batch {metrics["batch_size"]}; inputs `token_ids` from the model's own
`WordTokenizer`, output `output_0` = `P(positive)`.

## Intended use

On-device sentiment of English movie reviews where the `.keras` file is too large
or Keras is not available; tokenize with the saved model's tokenizer.

## Limitations

Those of the source model (English movie reviews, fixed vocabulary, reviews cut to
the training length, uncalibrated); the int8 file's probabilities differ slightly
from Keras's (see the table); static batch: pad the last batch.

## Data

Scored on {metrics["test_reviews"]:,} IMDB test reviews (Maas et al., 2011); the source
model was trained on the IMDB training reviews.
Licence: no explicit licence; the archive's README asks users to cite Maas et al. (2011);
distributed for research. The review texts come from IMDb users.

## Metrics

{table(metrics, timings)}

## Training

None: conversion of a trained model. Keras {keras.__version__} on
{keras.backend.backend()}, {os.cpu_count()} CPU cores.
"""


if __name__ == "__main__":
    main()
