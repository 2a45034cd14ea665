"""IMDB: one raw-text classifier that averages several trained classifiers.

The members are classifiers saved by `recipes/imdb.py` (`model.keras`, e.g.
the same settings trained with other `--seed` values) or by
`recipes/imdb_pretrained.py` (e.g. ULMFiT's forward and backward pair,
`imdb_ulmfit.keras` and `imdb_ulmfit_backward.keras`); they must share one
tokenizer (same vocabulary and length), which holds when they were trained on
the same reviews with the same `vocab` and `maxlen`. The result is one
`kzoo.models.TextPipeline` whose network averages the members'
positive-class probabilities (`keras.layers.Average`), stored with float16
weights when float32 would pass `max_megabytes`. Each member and the saved
ensemble are scored on the IMDB test reviews through the raw-text pipeline.

    KERAS_BACKEND=jax python recipes/imdb.py --seed 2        # a second member
    KERAS_BACKEND=jax python recipes/imdb_ensemble.py        # the shipped ensemble's members
    KERAS_BACKEND=jax python recipes/imdb_ensemble.py --quick      # 1,000 test reviews
    KERAS_BACKEND=jax python recipes/imdb_ensemble.py --publish    # saved_models/imdb_bigru_ensemble.*
    python recipes/imdb_ensemble.py --members "a.keras b.keras c.keras"

Writes into `runs/imdb_ensemble/<backend>[-quick]-seed<seed>/`: `model.keras`,
`model_card.md`, `metrics.json`, `timings.json` and `model.expected.json`
(probabilities of fixed texts, checked on every backend). No TensorFlow is
imported on JAX or PyTorch.
"""

import dataclasses
import os
import shlex
import sys
import time

import keras
import numpy as np

import kzoo.models
from kzoo.datasets.imdb import load_texts
from kzoo.models.saving import store_weights_as_float16
from kzoo.recipes import parse_settings, start_run
from kzoo.recipes.expected_outputs import sample_probabilities
from kzoo.utils.atomic_write import atomic_path


@dataclasses.dataclass(frozen=True)
class Settings:
    members: tuple[str, ...] = dataclasses.field(
        default=("saved_models/imdb_bigru.keras", "runs/imdb/jax-seed2/model.keras"),
        metadata={"help": "classifiers saved by recipes/imdb.py (at least two)"},
    )
    max_megabytes: float = dataclasses.field(
        default=10.0, metadata={"help": "store float16 weights above this size", "min": 0.001}
    )
    test_reviews: int | None = dataclasses.field(
        default=None,
        metadata={"help": "score this many test reviews (random; None: all 25,000)", "min": 1},
    )
    data_path: str | None = dataclasses.field(
        default=None, metadata={"help": "aclImdb_v1.tar.gz or an aclImdb folder"}
    )


QUICK_NOTICE = "Quick run (--quick): the members and the ensemble are scored on 1,000 test reviews."
QUICK = {"test_reviews": 1000}


def main(argv=None):
    settings, options = parse_settings(
        Settings, QUICK, argv=argv, recipe="imdb_ensemble", description=__doc__
    )
    check_members(settings.members)
    run = start_run(options, quick_notice=QUICK_NOTICE)
    start = time.time()
    members = [kzoo.models.load(path) for path in settings.members]
    ensemble = build_ensemble(members, "imdb_bigru_ensemble")
    weights_dtype = save_ensemble(run, ensemble, settings.max_megabytes)
    saved = kzoo.models.load(run.file("model.keras"))

    texts, labels = load_texts("test", path=settings.data_path)
    keep = np.random.default_rng(options.seed).permutation(len(texts))[: settings.test_reviews]
    texts, labels = [texts[i] for i in keep], labels[keep]
    metrics = {"members": [], "test_reviews": len(texts), "weights_dtype": weights_dtype}
    for path, member in zip(settings.members, members):
        accuracy = test_accuracy(member, texts, labels, f"member {path}")
        metrics["members"].append({"path": path, "test_accuracy": accuracy})
    metrics["test_accuracy"] = test_accuracy(saved, texts, labels, "the saved ensemble")
    print(f"Ensemble test accuracy: {metrics['test_accuracy']:.2%} on {len(texts)} reviews")

    run.write_json("metrics.json", metrics)
    run.write_json("timings.json", {"seconds": time.time() - start})
    run.write_json("model.expected.json", sample_probabilities(saved))
    command = sys.argv[1:] if argv is None else argv
    run.write_text("model_card.md", model_card(metrics, run.file("model.keras"), command))
    if options.publish:
        names = ["model.keras", "model_card.md", "model.expected.json"]
        rename = {name: name.replace("model", "imdb_bigru_ensemble", 1) for name in names}
        rename["model_card.md"] = "imdb_bigru_ensemble.md"
        run.publish(names, "saved_models", rename=rename)
    print(run.summary())
    return metrics


def check_members(paths):
    if len(paths) < 2:
        raise ValueError(f"An ensemble needs at least two `members`. Received: {list(paths)}")
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(
            f"`members` files not found: {missing}. Train them with recipes/imdb.py "
            "(e.g. `python recipes/imdb.py --seed 2` writes runs/imdb/<backend>-seed2/model.keras)."
        )


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
                "ensemble members must be trained with the same vocab and maxlen."
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
        class_names=["negative", "positive"],
        name=name,
    )


def save_ensemble(run, ensemble, max_megabytes):
    """Saves `model.keras` in one step, float16 weights if float32 is too big."""
    weights_dtype = "float32"
    with atomic_path(run.file("model.keras")) as temporary:
        ensemble.save(temporary)
        if os.path.getsize(temporary) > max_megabytes * 1e6:
            store_weights_as_float16(temporary)
            weights_dtype = "float16"
    run.record("model.keras")
    size = os.path.getsize(run.file("model.keras")) / 1e6
    print(f"Saved the ensemble ({size:.1f} MB, {weights_dtype} weights)")
    return weights_dtype


def test_accuracy(model, texts, labels, label):
    """Accuracy through the raw-text pipeline (the saved tokenizer), with a progress bar."""
    print(f"Scoring {label} on {len(texts)} test reviews")
    network = id_classifier(model)
    batches = model.preprocessor.batches(texts, 256, getattr(network, "sequence_length", None))
    probabilities = batches.restore_order(network.predict(batches, verbose=1))[:, 0]
    return float(np.mean((probabilities > 0.5) == (labels == 1)))


def model_card(metrics, path, argv):
    backend = keras.backend.backend()
    command = " ".join(
        [f"KERAS_BACKEND={backend}", "python", "recipes/imdb_ensemble.py"]
        + [shlex.quote(a) for a in argv]
    )
    rows = "\n".join(f"| `{m['path']}` | {m['test_accuracy']:.2%} |" for m in metrics["members"])
    count = len(metrics["members"])
    return f"""# IMDB sentiment ensemble (`recipes/imdb_ensemble.py`)

Raw English review text in, `P(positive)` out: the average of {count} classifiers
saved by kzoo's IMDB recipes (listed below), one `kzoo.models.TextPipeline` file.

```python
import kzoo.models

clf = kzoo.models.load("model.keras")
clf.predict(["This movie was wonderful", "Dull and far too long."])  # shape (2,)
```

## Intended use

Sentiment of English movie reviews (IMDB style) where {count}x the inference time
of one model is affordable for a more accurate and more stable answer.

## Limitations

Those of its members (see their cards): English movie reviews only, a
fixed vocabulary, reviews cut to the training length, uncalibrated probabilities.
Every prediction runs all {count} members.

## Data

IMDB Large Movie Review Dataset v1.0 (Maas et al., 2011): the members were trained
on the training reviews; scored here on {metrics["test_reviews"]:,} test reviews.
Licence: no explicit licence; the archive's README asks users to cite Maas et al. (2011);
distributed for research. The review texts come from IMDb users.

## Metrics

- Test accuracy: **{metrics["test_accuracy"]:.2%}** ({metrics["test_reviews"]:,} test
  reviews, threshold 0.5, measured on the saved file through its raw-text pipeline).
- Command: `{command}`

| member | test accuracy (float32) |
| --- | ---: |
{rows}

## Training

No training: the members' weights, {metrics["weights_dtype"]}
({os.path.getsize(path) / 1e6:.1f} MB). Keras {keras.__version__} on {backend},
{os.cpu_count()} CPU cores.
"""


if __name__ == "__main__":
    main()
