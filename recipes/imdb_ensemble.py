"""IMDB: one raw-text classifier that averages several trained pipelines.

Members are `.keras` files written by `recipes/imdb.py` (TextClassifiers with
their preprocessor), e.g. the same
settings trained with different `--seed` values. They must share one
tokenizer (same vocabulary and length), which holds when they were trained on
the same reviews with the same `--vocab` and `--maxlen`:

    KERAS_BACKEND=jax python recipes/imdb_ensemble.py \\
        saved_models/imdb_bigru.keras runs/seed1/imdb_bigru.keras \\
        --name imdb_bigru_ensemble

The result is one `kzoo.models.TextPipeline` whose classifier averages the
members' positive-class probabilities (`keras.layers.Average`). Its weights are
stored as float16 when float32 would pass `--max-megabytes`. Test accuracy on
the 25,000 test reviews is measured on the saved file (and printed for every
member), and a model card `<name>.md` and `<name>.expected.json` (probabilities
of fixed texts, for the cross-backend test) are written beside it.
"""

import argparse
import datetime
import os
import shlex
import sys
import time

import keras
import numpy as np

# Run from a checkout without installing: put the repository root on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import kzoo.models  # noqa: E402
from kzoo.datasets.imdb import load_texts  # noqa: E402
from kzoo.models.saving import store_weights_as_float16  # noqa: E402
from kzoo.utils import (  # noqa: E402
    atomic_path,
    check_writable_folder,
    float_range,
    int_range,
    write_json,
    write_text,
)
from recipes.imdb import EXPECTED_TEXTS  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("members", nargs="+", help="pipelines saved by recipes/imdb.py")
    p.add_argument("--name", default="imdb_ensemble")
    p.add_argument("--output-dir", default="saved_models")
    p.add_argument(
        "--max-megabytes",
        type=float_range(0, min_inclusive=False),
        default=10.0,
        help="store float16 weights when the float32 file is larger",
    )
    p.add_argument("--data-path", default=None, help="aclImdb_v1.tar.gz or its folder")
    p.add_argument(
        "--test-size", type=int_range(1), default=None, help="score on the first N reviews"
    )
    args = p.parse_args(argv)
    if args.data_path is not None and not os.path.exists(args.data_path):
        p.error(f"argument --data-path: not found: {args.data_path!r}")
    if len(args.members) < 2:
        p.error("an ensemble needs at least two member files")
    for path in args.members:
        if not os.path.isfile(path):
            p.error(f"member file not found: {path}")
    try:  # before any member is loaded or scored
        check_writable_folder(os.path.join(args.output_dir, f"{args.name}.keras"))
    except OSError as e:
        p.error(f"argument --output-dir: {e}")
    return args


def id_classifier(model):
    """The model on ids inside a saved classifier (a TextClassifier is one itself)."""
    return model.classifier if isinstance(model, kzoo.models.TextPipeline) else model


def build_ensemble(pipelines, name):
    """A `TextPipeline` averaging the probabilities of `pipelines` (saved classifiers)."""
    tokenizer_config = pipelines[0].tokenizer.get_config()
    for i, pipeline in enumerate(pipelines[1:], 2):
        if pipeline.tokenizer.get_config() != tokenizer_config:
            raise ValueError(
                f"Member {i} has another tokenizer (vocabulary or length) than member 1; "
                "ensemble members must be trained with the same --vocab and --maxlen."
            )
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    outputs = []
    for i, pipeline in enumerate(pipelines, 1):
        classifier = id_classifier(pipeline)
        config = dict(classifier.get_config(), name=f"member_{i}")
        if "preprocessor" in config:
            config["preprocessor"] = None  # the ensemble holds the one tokenizer
        member = type(classifier).from_config(config)
        member.set_weights(classifier.get_weights())
        outputs.append(member(token_ids))
    averaged = keras.layers.Average(name="average")(outputs)
    classifier = keras.Model(token_ids, averaged, name=f"{name}_members")
    return kzoo.models.TextPipeline(
        pipelines[0].tokenizer,
        classifier,
        bucket_width=pipelines[0].preprocessor.bucket_width,
        name=name,
    )


def accuracy(pipeline, texts, labels):
    probabilities = np.reshape(pipeline.predict(texts, batch_size=256), len(texts))
    return float(np.mean((probabilities > 0.5) == (labels == 1)))


def write_card(path, name, results):
    members = "\n".join(
        f"| `{m['path']}` | {m['test_accuracy'] * 100:.2f}% |" for m in results["members"]
    )
    text = f"""# {name}

Binary sentiment classifier for English movie reviews (IMDB), raw text in,
positive-class probability out: the average of {len(results["members"])} classifiers
trained from scratch by `recipes/imdb.py` (same settings, different seeds), combined by
`recipes/imdb_ensemble.py`.

```python
import kzoo.models

clf = kzoo.models.load("saved_models/{name}.keras")
clf.predict(["This movie was wonderful", "Dull and far too long."])  # shape (2,)
```

- **Test accuracy:** {results["test_accuracy"] * 100:.2f}% ({results["test_size"]:,} test
  reviews, threshold 0.5, measured on the saved file through `predict` on raw texts).
- **Command:** `{results["command"]}`
- **Backend:** Keras {results["keras_version"]} on {results["backend"]}, CPU, {results["date"]}.
- **Weights:** {results["weights_dtype"]} ({results["model_bytes"] / 1e6:.1f} MB).
- **Cost:** every prediction runs all members ({len(results["members"])}x the
  inference time of one member).
- **Members** (each one's own card is written by `recipes/imdb.py`; test accuracy
  measured here, float32 weights):

| member | test accuracy |
| --- | ---: |
{members}
"""
    write_text(path, text)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    pipelines = [kzoo.models.load(path) for path in args.members]
    ensemble = build_ensemble(pipelines, args.name)

    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, f"{args.name}.keras")
    weights_dtype = "float32"
    with atomic_path(path) as tmp:  # the file appears once, with its final weights
        ensemble.save(tmp)
        if os.path.getsize(tmp) > args.max_megabytes * 1e6:
            store_weights_as_float16(tmp)
            weights_dtype = "float16"
    saved = kzoo.models.load(path)
    print(f"Saved {path} ({os.path.getsize(path) / 1e6:.1f} MB, {weights_dtype} weights)")

    texts, labels = load_texts("test", path=args.data_path)
    if args.test_size:
        texts, labels = texts[: args.test_size], labels[: args.test_size]
    members = []
    for member_path, pipeline in zip(args.members, pipelines):
        members.append(dict(path=member_path, test_accuracy=accuracy(pipeline, texts, labels)))
        print(f"  member {member_path}: {members[-1]['test_accuracy'] * 100:.2f}%")
    test_accuracy = accuracy(saved, texts, labels)
    print(f"Ensemble test accuracy: {test_accuracy * 100:.2f}% on {len(texts)} test reviews")

    backend = keras.backend.backend()
    script_args = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(
        [f"KERAS_BACKEND={backend}", "python", "recipes/imdb_ensemble.py"]
        + [shlex.quote(a) for a in script_args]
    )
    results = dict(
        name=args.name,
        command=command,
        backend=backend,
        keras_version=keras.__version__,
        date=datetime.date.today().isoformat(),
        test_size=len(texts),
        test_accuracy=test_accuracy,
        members=members,
        weights_dtype=weights_dtype,
        model_bytes=os.path.getsize(path),
        seconds=time.time() - start,
    )
    stem = os.path.join(args.output_dir, args.name)
    write_json(f"{stem}_results.json", results, indent=1)
    probabilities = saved.predict(EXPECTED_TEXTS).tolist()
    write_json(
        f"{stem}.expected.json",
        {"backend": backend, "texts": EXPECTED_TEXTS, "probabilities": probabilities},
        indent=None,
    )
    write_card(f"{stem}.md", args.name, results)
    return results


if __name__ == "__main__":
    main()
