"""IMDB sentiment, end to end: raw reviews in, a saved raw-text classifier out.

Trains a `kzoo.models.TextClassifier` (a bidirectional GRU) on the IMDB
training reviews and tests it on all 25,000 test reviews through the saved
model's own raw-text pipeline. The validation reviews are the last 10% of
review ids of each class: a movie's reviews have consecutive ids, so these
are (almost only) other movies than the training part, as the test movies
are. The vocabulary is learned from the training part with
`kzoo.preprocessing.WordTokenizer.from_texts` (TextVectorization's
vocabulary, without TensorFlow), so the recipe runs on JAX and PyTorch
without TensorFlow installed.

    KERAS_BACKEND=jax python recipes/imdb.py             # the full run (the shipped model)
    KERAS_BACKEND=torch python recipes/imdb.py --quick   # smoke run, under 2 minutes
    KERAS_BACKEND=jax python recipes/imdb.py --publish   # also copy to saved_models/imdb_bigru.*
    python -m kzoo predict runs/imdb/jax-seed1337/model.keras "A wonderful film."

Training: batches of reviews of similar length (`BucketedBatches`, each
padded to a multiple of `bucket_width`), Adam with gradient clipping,
decoupled weight decay and a step schedule (the rate times `lr_gamma` every
`lr_step_epochs`), the best model on validation accuracy, early stopping, and
a uniform average of the weights sampled along the last epochs (kept instead
of the best epoch's weights when it scores higher on validation). A killed
run continues where it stopped when the same command is run again.

Writes into `runs/imdb/<backend>[-quick]-seed<seed>/` (or `--output-dir`):
`model.keras`, `model_card.md`, `metrics.json`, `timings.json`,
`model.expected.json` (probabilities of fixed texts, checked on every
backend), `curves.png`, `log.csv`, `best.keras` and `backup/`. Set
`KZOO_DATA_DIR` to a folder holding `aclImdb_v1.tar.gz` to work offline. On
PyTorch the run computes on one CPU thread unless `OMP_NUM_THREADS` says
otherwise (`kzoo.recipes.limit_threads`). After `--publish`, run
`python tools/update_presets.py` (the preset's hash changes).
"""

import csv
import dataclasses
import os
import time

import keras
import numpy as np

from kzoo.datasets.imdb import load_texts
from kzoo.models import TextClassifier, load
from kzoo.models.text_classifier import TextClassifierPreprocessor
from kzoo.models.text_classifier.text_classifier import BACKBONE_ARGUMENTS
from kzoo.preprocessing import WordTokenizer
from kzoo.recipes import (
    SMOKE_RUN,
    command_line,
    fit_resumable,
    parse_settings,
    progress,
    setting,
    start_run,
    training_callbacks,
)
from kzoo.recipes.expected_outputs import sample_probabilities
from kzoo.utils.atomic_write import atomic_path
from kzoo.utils.bucketing import BucketedBatches
from kzoo.utils.optional import require

RATE = {"min": 0.0, "max": 0.99}


@dataclasses.dataclass(frozen=True)
class Settings:
    cell_type: str = setting("gru", "recurrent cell", choices=("gru", "lstm", "rnn"))
    bidirectional: bool = setting(True, "read each review in both directions")
    units: int = setting(64, "recurrent units (per direction)", min=1)
    num_layers: int = setting(1, "stacked recurrent layers", min=1)
    embedding_dim: int = setting(64, "word embedding size", min=1)
    vocab: int = setting(30000, "vocabulary size, padding and [UNK] included", min=3)
    maxlen: int = setting(400, "tokens kept per review", min=1)
    truncating: str = setting("pre", "pre keeps a long review's end", choices=("pre", "post"))
    pooling: tuple[str, ...] = setting(
        ("max", "mean"), "pooling(s) over time", choices=("last", "max", "mean", "attention")
    )
    embedding_dropout: float = setting(0.1, "dropout of whole tokens", **RATE)
    spatial_dropout: float = setting(0.2, "dropout of embedding channels", **RATE)
    word_type_dropout: float = setting(0.25, "dropout of whole word types per batch", **RATE)
    dropout: float = setting(0.0, "variational dropout of the cell inputs", **RATE)
    recurrent_dropout: float = setting(0.0, "dropout of the recurrent state", **RATE)
    head_dropout: float = setting(0.3, "dropout before the output layer", **RATE)
    batch_size: int = setting(64, "reviews per training batch", min=1)
    bucket_width: int = setting(50, "batches are padded to a multiple of this", min=1)
    epochs: int = setting(3, "training epochs at most", min=1)
    learning_rate: float = setting(2e-3, "Adam learning rate", min=1e-9)
    lr_step_epochs: int = setting(1, "epochs between learning-rate steps", min=1)
    lr_gamma: float = setting(0.5, "learning-rate factor at each step", min=1e-9)
    clipnorm: float = setting(1.0, "gradient norm clipping", min=1e-9)
    weight_decay: float = setting(1e-2, "decoupled weight decay (not on biases)", min=0.0)
    patience: int = setting(2, "epochs without a better validation accuracy", min=0)
    average_from_epoch: int = setting(
        2, "average the weights from this epoch (1-based) on; 0: never", min=0
    )
    average_every: float = setting(
        0.125, "sample the weights every this fraction of an epoch", min=1e-6, max=1.0
    )
    validation_fraction: float = setting(
        0.1, "last review ids of each class held out", min=0.01, max=0.5
    )
    train_reviews: int | None = setting(
        None, "use this many training reviews (random, validation included; None: all)", min=20
    )
    test_reviews: int | None = setting(
        None, "test on this many test reviews (random; None: all 25,000)", min=1
    )
    data_path: str | None = setting(None, "aclImdb_v1.tar.gz or an aclImdb folder")
    seed: int = setting(1337, "random seed", min=0)


QUICK = {
    "units": 16,
    "embedding_dim": 32,
    "vocab": 5000,
    "maxlen": 100,
    "batch_size": 32,
    "epochs": 2,
    "train_reviews": 4000,
    "test_reviews": 2000,
}

CLASS_NAMES = ["negative", "positive"]


def main(argv=None):
    settings, options = parse_settings(
        Settings, QUICK, argv=argv, recipe="imdb", description=__doc__
    )
    require("matplotlib", extra="recipes", feature="the training curves of recipes/imdb.py")
    run = start_run(options)
    timings = {}
    data = timed(timings, "load", load_reviews, settings)
    tokenizer, train, val = timed(timings, "tokenize", prepare, settings, data)

    model = build_model(settings, tokenizer, steps_per_epoch=len(train))
    averager = WeightAverage(
        settings.average_from_epoch, round(settings.average_every * len(train)), run.backup_dir
    )
    callbacks, backup = training_callbacks(
        run,
        monitor="val_accuracy",
        mode="max",
        patience=settings.patience,
        # The averager is kept in the backup as the metrics are (get_state/set_state).
        metrics=[EpochSeconds(), averager],
        datasets=[train],
        resume=options.resume,
    )
    fit = dict(backup=backup, epochs=settings.epochs, callbacks=callbacks, validation_data=val)
    timed(timings, "fit", fit_resumable, model, train, **fit)

    metrics = choose_weights(model, run.file("best.keras"), averager, val)
    final = TextClassifier.from_config(model.get_config())  # no optimizer state: a small file
    final.set_weights(model.get_weights())
    metrics["test_accuracy"] = timed(timings, "test", test_accuracy, final, *data["test"])
    print(f"Test accuracy: {metrics['test_accuracy']:.2%} on {len(data['test'][0])} reviews")
    metrics.update({f"{split}_reviews": len(data[split][0]) for split in data})
    metrics.update(
        vocabulary_size=tokenizer.vocabulary_size,
        parameters=int(final.count_params()),
        epochs=read_log(run.file("log.csv")),
    )
    write_outputs(run, final, settings, options, metrics, timings, argv)
    if options.publish:
        publish(run)
    print(run.summary())
    return metrics


def timed(timings, name, function, *args, **kwargs):
    """`function(*args, **kwargs)`, its wall time recorded as `timings[name + "_seconds"]`."""
    start = time.time()
    result = function(*args, **kwargs)
    timings[f"{name}_seconds"] = time.time() - start
    return result


# --- data ---------------------------------------------------------------------


def load_reviews(settings):
    """`{"train"|"validation"|"test": (texts, labels)}`, validation split by movie."""
    print("Loading the IMDB reviews (the first run extracts the archive: a minute or more)")
    texts, labels = load_texts("train", path=settings.data_path)
    test_texts, test_labels = load_texts("test", path=settings.data_path)
    # Sorted by class, then review id: the last ids of each class are other movies.
    is_val = np.zeros(len(texts), bool)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        rank = np.arange(len(rows)) / len(rows)
        is_val[rows[rank >= 1 - settings.validation_fraction]] = True
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(len(texts))[: settings.train_reviews]
    test_order = rng.permutation(len(test_texts))[: settings.test_reviews]
    data = {
        "train": [i for i in order if not is_val[i]],
        "validation": [i for i in order if is_val[i]],
    }
    data = {key: ([texts[i] for i in rows], labels[rows]) for key, rows in data.items()}
    data["test"] = ([test_texts[i] for i in test_order], test_labels[test_order])
    print(", ".join(f"{len(data[k][0])} {k}" for k in data) + " reviews")
    return data


def prepare(settings, data):
    """The tokenizer learned from the training reviews, and the training/validation batches."""
    tokenizer = WordTokenizer.from_texts(
        data["train"][0],
        max_tokens=settings.vocab,
        sequence_length=settings.maxlen,
        truncating=settings.truncating,
        verbose=1,
    )
    train = batches(tokenizer, *data["train"], settings, training=True)
    return tokenizer, train, batches(tokenizer, *data["validation"], settings, training=False)


def batches(tokenizer, texts, labels, settings, training):
    """Length-bucketed batches of the reviews' ids (shuffled from (seed, epoch) for training)."""
    sequences = [
        tokenizer.encode([text])[0]
        for text in progress(texts, label=f"Tokenizing {len(texts)} reviews", unit="reviews")
    ]
    return BucketedBatches(
        sequences,
        labels.astype("float32"),
        batch_size=settings.batch_size if training else 256,
        bucket_width=settings.bucket_width,
        max_length=settings.maxlen,
        shuffle=training,
        drop_remainder=training,
        seed=settings.seed,
    )


# --- model and training -------------------------------------------------------


def build_model(settings, tokenizer, steps_per_epoch):
    # The settings named as the backbone's arguments are passed as they are.
    backbone = {
        k: list(v) if k == "pooling" else v
        for k, v in dataclasses.asdict(settings).items()
        if k in BACKBONE_ARGUMENTS
    }
    model = TextClassifier(
        tokenizer.vocabulary_size,
        **backbone,
        head_dropout=settings.head_dropout,
        preprocessor=TextClassifierPreprocessor(tokenizer, bucket_width=settings.bucket_width),
        class_names=CLASS_NAMES,
        seed=settings.seed,
        name="imdb_classifier",
    )
    schedule = keras.optimizers.schedules.ExponentialDecay(
        settings.learning_rate,
        decay_steps=settings.lr_step_epochs * steps_per_epoch,
        decay_rate=settings.lr_gamma,
        staircase=True,
    )
    optimizer = keras.optimizers.Adam(
        schedule, clipnorm=settings.clipnorm, weight_decay=settings.weight_decay
    )
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    model.compile(optimizer=optimizer)  # binary cross-entropy and accuracy
    return model


class EpochSeconds(keras.callbacks.Callback):
    """Adds each epoch's wall time (validation included) to the logs as `seconds`."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.time() - self.start

    def get_state(self):
        return {}

    def set_state(self, state):
        pass


class WeightAverage(keras.callbacks.Callback):
    """Uniform average of the trainable weights along the end of training.

    From epoch `start_epoch` (1-based) on, the weights are added to a running
    sum every `every` batches (Polyak averaging, as the averaged SGD of
    AWD-LSTM or SWA). Resumable: after each epoch the sum is written to
    `folder`, alternating between two files, so that a kill while one is
    written leaves the one the last backup names (`get_state`).

    Args:
        start_epoch: the first epoch sampled (1-based); 0 turns it off.
        every: batches between two samples.
        folder: where the running sum is kept.
    """

    def __init__(self, start_epoch, every, folder):
        super().__init__()
        self.start_epoch, self.every, self.folder = start_epoch, max(1, every), folder
        self.total, self.count, self.file, self.epoch = None, 0, None, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self.start_epoch < 1 or self.epoch < self.start_epoch or (batch + 1) % self.every:
            return
        values = [
            keras.ops.convert_to_numpy(v).astype("float64") for v in self.model.trainable_weights
        ]
        self.total = values if self.total is None else [t + v for t, v in zip(self.total, values)]
        self.count += 1

    def on_epoch_end(self, epoch, logs=None):
        if self.count:
            self.file = f"weight_average_{(epoch + 1) % 2}.npz"
            with atomic_path(os.path.join(self.folder, self.file)) as temporary:
                with open(temporary, "wb") as f:
                    np.savez(f, *self.total)

    def get_state(self):
        return {"count": self.count, "file": self.file}

    def set_state(self, state):
        self.count, self.file, self.total = state["count"], state["file"], None
        if self.file is not None:
            with np.load(os.path.join(self.folder, self.file)) as stored:
                self.total = [stored[f"arr_{i}"] for i in range(len(stored.files))]

    def assign_average(self, model):
        for variable, total in zip(model.trainable_weights, self.total):
            variable.assign((total / self.count).astype(variable.dtype))


def choose_weights(model, best_path, averager, val):
    """Loads the best epoch's weights, or the average if it is better on validation."""
    model.load_weights(best_path)
    best = float(model.evaluate(val, verbose=0, return_dict=True)["accuracy"])
    metrics = {"best_epoch_val_accuracy": best, "average_val_accuracy": None}
    metrics["weights"] = "best epoch"
    if averager.count:
        kept = model.get_weights()
        averager.assign_average(model)
        average = model.evaluate(val, verbose=0, return_dict=True)["accuracy"]
        metrics["average_val_accuracy"] = float(average)
        if metrics["average_val_accuracy"] > best:
            metrics["weights"] = f"average of {averager.count} snapshots"
        else:
            model.set_weights(kept)
    average = metrics["average_val_accuracy"]
    print(
        f"Validation accuracy: best epoch {best:.4f}"
        + ("" if average is None else f", weight average {average:.4f}")
        + f"; keeping the {metrics['weights']}"
    )
    return metrics


def test_accuracy(model, texts, labels):
    """Accuracy through the model's raw-text pipeline, with a progress bar."""
    print(f"Testing on {len(texts)} reviews")
    batches = model.preprocessor.batches(texts, 256, model.sequence_length)
    probabilities = batches.restore_order(model.predict(batches, verbose=1))[:, 0]
    return float(np.mean((probabilities > 0.5) == (labels == 1)))


def read_log(path):
    """The per-epoch rows of the CSV log (timings left out: metrics.json is deterministic)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    return [{key: float(row[key]) for key in keys} for row in rows]


# --- outputs ------------------------------------------------------------------


def write_outputs(run, model, settings, options, metrics, timings, argv):
    run.save_model("model.keras", model)
    reloaded = load(run.file("model.keras"))
    run.write_json("model.expected.json", sample_probabilities(reloaded))
    run.write_json("metrics.json", metrics)
    with open(run.file("log.csv"), newline="", encoding="utf-8") as f:
        timings["epoch_seconds"] = [float(r["seconds"]) for r in csv.DictReader(f)]
    run.write_json("timings.json", timings)
    plot_curves(metrics, timings, run.file("curves.png"))
    run.record("curves.png")
    card = model_card(settings, options, metrics, timings, argv)
    run.write_text("model_card.md", card)
    for name in ("log.csv", "best.keras"):
        run.record(name)


def publish(run):
    names = ["model.keras", "model_card.md", "curves.png", "model.expected.json"]
    rename = {
        "model.keras": "imdb_bigru.keras",
        "model_card.md": "imdb_bigru.md",
        "curves.png": "imdb_bigru_curves.png",
        "model.expected.json": "imdb_bigru.expected.json",
    }
    run.publish(names, "saved_models", rename=rename)


def plot_curves(metrics, timings, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = metrics["epochs"]
    x = np.arange(1, len(epochs) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in zip(axes, ("loss", "accuracy"), ("binary cross-entropy", "accuracy")):
        ax.plot(x, [e[key] for e in epochs], "o-", label="train")
        ax.plot(x, [e["val_" + key] for e in epochs], "o-", label="validation")
        ax.set(xlabel="epoch", ylabel=label, title=key, xticks=x)
        ax.grid(alpha=0.3)
    axes[1].axhline(metrics["test_accuracy"], color="gray", ls="--", label="test (kept weights)")
    for ax in axes:
        ax.legend()
    seconds = np.mean(timings["epoch_seconds"] or [0])
    fig.suptitle(f"IMDB classifier on {keras.backend.backend()} ({seconds:.0f} s per epoch)")
    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=90, format="png")
    plt.close(fig)


def model_card(settings, options, metrics, timings, argv):
    backend = keras.backend.backend()
    command = command_line("imdb", argv)
    rows = "\n".join(
        f"| {i} | {s:.0f} | {e['loss']:.4f} | {e['accuracy']:.4f} | {e['val_loss']:.4f} | "
        f"{e['val_accuracy']:.4f} |"
        for i, (e, s) in enumerate(zip(metrics["epochs"], timings["epoch_seconds"]), 1)
    )
    values = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(settings).items())
    smoke = f"\n**{SMOKE_RUN}**\n" if options.quick else ""
    average = metrics["average_val_accuracy"]
    average = "" if average is None else f", {average:.4f} (weight average)"
    return f"""# IMDB sentiment classifier (`recipes/imdb.py`)
{smoke}
Raw English review text in, `P(positive)` out (`class_names` {CLASS_NAMES}):
a `kzoo.models.TextClassifier` trained from scratch, with its vocabulary in the file.

```python
import kzoo.models

clf = kzoo.models.load("model.keras")
clf.predict(["This movie was wonderful", "Dull and far too long."])  # (2, 1)
```

## Intended use

Sentiment of English movie reviews (IMDB style), for research, teaching and as a
baseline; `python -m kzoo predict model.keras "text"` from the command line.

## Limitations

English movie reviews only; words outside the {metrics["vocabulary_size"]:,}-id
vocabulary count as one unknown token; reviews longer than {settings.maxlen} tokens
keep their {"last" if settings.truncating == "pre" else "first"} {settings.maxlen};
a review is judged as a whole (no aspects, no sarcasm handling); probabilities are not
calibrated.

## Data

IMDB Large Movie Review Dataset v1.0 (Maas et al., 2011). Trained on
{metrics["train_reviews"]:,} training reviews, validated on {metrics["validation_reviews"]:,}
(the last {settings.validation_fraction:.0%} of review ids of each class: other movies
than the training part), tested on {metrics["test_reviews"]:,} test reviews.
Licence: no explicit licence; the archive's README asks users to cite Maas et al. (2011);
distributed for research. The review texts come from IMDb users.

## Metrics

- Test accuracy: **{metrics["test_accuracy"]:.2%}** ({metrics["test_reviews"]:,} test
  reviews, threshold 0.5, through `predict` on the raw texts).
- Validation accuracy: {metrics["best_epoch_val_accuracy"]:.4f} (best epoch){average};
  kept: the {metrics["weights"]}.
- Command: `{command}`

| epoch | seconds | loss | accuracy | val loss | val accuracy |
| ---: | ---: | ---: | ---: | ---: | ---: |
{rows}

![training curves](curves.png)

## Training

Keras {keras.__version__} on {backend}, {os.cpu_count()} CPU cores; fit
{timings["fit_seconds"]:.0f} s, test {timings["test_seconds"]:.0f} s.
{metrics["parameters"]:,} parameters. Settings: {values}.
"""


if __name__ == "__main__":
    main()
