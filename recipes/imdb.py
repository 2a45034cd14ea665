"""IMDB sentiment, end to end: raw reviews in, a saved raw-text classifier out.

Trains a `kzoo.models.TextClassifier` (a bidirectional GRU by default) on the
25,000 IMDB training reviews, with a validation split taken from them (never
from the test set; the last 10% of review ids of each class, i.e. other movies
than the training part), evaluates on the 25,000 test reviews and saves the classifier with its
preprocessor (vocabulary included), so it predicts from raw text on every Keras
backend:

    KERAS_BACKEND=jax python recipes/imdb.py                # the full run
    KERAS_BACKEND=torch python recipes/imdb.py --quick      # smoke run (CI)
    python -m kzoo predict saved_models/imdb_bigru.keras "A wonderful film."

Pipeline: `TextVectorization` (adapted on the training part) turns reviews into
ids; batches group reviews of similar length (each padded only to its bucket's
length, which roughly halves the recurrent steps compared with padding all to
`maxlen`); Adam with gradient-norm clipping, decoupled weight decay and a step
learning-rate schedule (`lr * gamma ** (epoch // step)`, like PyTorch's
StepLR); early stopping on the validation accuracy with the best weights
restored. The data come from `kzoo.datasets.imdb` (set `KZOO_DATA_DIR` to a
folder holding `aclImdb_v1.tar.gz` to work offline).

Artifacts in `--output-dir` (default `saved_models/`): `<name>.keras`, the
training curves `<name>_curves.png`, `<name>_history.json` (per-epoch metrics and
timings), `<name>.expected.json` (probabilities of a few fixed texts, to check
other backends against) and the model card `<name>.md`.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import tempfile
import time

import keras
import numpy as np

# Run from a checkout without installing: put the repository root on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import kzoo.models  # noqa: E402
from kzoo.datasets.imdb import load_texts  # noqa: E402
from kzoo.models.text_classifier import TextClassifierPreprocessor  # noqa: E402
from kzoo.utils import (  # noqa: E402
    atomic_path,
    check_writable_folder,
    float_range,
    int_range,
    save_model,
    write_json,
    write_text,
)
from kzoo.utils.bucketing import BucketedBatches  # noqa: E402

# === Settings (the full run; flags override some) ===
SETTINGS = dict(
    cell="gru",
    bidirectional=True,
    units=64,
    num_layers=1,
    embedding_dim=64,
    vocab=30000,  # ids, padding and OOV included
    maxlen=400,  # tokens kept per review
    truncating="pre",  # keep the end of long reviews, where the verdict often is
    pooling=["max", "mean"],
    embedding_dropout=0.1,  # whole tokens
    spatial_dropout=0.2,  # whole embedding channels per review
    word_type_dropout=0.25,  # whole word types per batch (AWD embedding dropout)
    dropout=0.0,  # cell input (variational)
    recurrent_dropout=0.0,  # one mask per review
    head_dropout=0.3,
    batch_size=64,
    bucket_width=50,  # batches padded to a multiple of this
    epochs=3,
    learning_rate=2e-3,
    lr_step_epochs=1,  # StepLR step_size
    lr_gamma=0.5,  # StepLR gamma
    clipnorm=1.0,
    weight_decay=1e-2,  # decoupled (AdamW-style), biases excluded
    patience=2,  # early stopping on val_accuracy
    average_from_epoch=2,  # average the weights from this epoch on (0: never)
    average_every=0.125,  # ... every this fraction of an epoch
    validation_fraction=0.1,
    seed=1337,
)

# The values each numeric setting accepts (flags and --set alike).
_COUNT, _FRACTION = int_range(1), float_range(0, 1, max_inclusive=False)
SETTING_RANGES = dict(
    units=_COUNT,
    num_layers=_COUNT,
    embedding_dim=_COUNT,
    vocab=int_range(3),  # padding, OOV and at least one word
    maxlen=_COUNT,
    embedding_dropout=_FRACTION,
    spatial_dropout=_FRACTION,
    word_type_dropout=_FRACTION,
    dropout=_FRACTION,
    recurrent_dropout=_FRACTION,
    head_dropout=_FRACTION,
    batch_size=_COUNT,
    bucket_width=_COUNT,
    epochs=_COUNT,
    learning_rate=float_range(0, min_inclusive=False),
    lr_step_epochs=_COUNT,
    lr_gamma=float_range(0, min_inclusive=False),
    clipnorm=float_range(0, min_inclusive=False),
    weight_decay=float_range(0),
    patience=int_range(0),
    average_from_epoch=int_range(0),
    average_every=float_range(0, 1, min_inclusive=False),
    validation_fraction=float_range(0, 1, min_inclusive=False, max_inclusive=False),
    seed=int_range(0),
)

# A few seconds of training on a small subset with a tiny model.
QUICK = dict(
    units=8,
    embedding_dim=16,
    vocab=2000,
    maxlen=48,
    batch_size=32,
    bucket_width=48,  # one shape: fewer compilations
    epochs=1,
    average_from_epoch=1,
    train_size=1000,
    test_size=500,
)

EXPECTED_TEXTS = [
    "This movie was wonderful, the best film I have seen this year.",
    "A dull, boring and far too long film. I want my money back.",
    "",
    "Ce film était magnifique ! 素晴らしい映画 — ÉNORME.",
    "It was okay.<br /><br />Not great, not terrible.",
    "An absolute masterpiece of acting and direction. " * 300,
]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cell", choices=["gru", "lstm", "rnn"], default=SETTINGS["cell"])
    # Values given here (and with --set) win over SETTINGS and over --quick's.
    ranges = SETTING_RANGES
    p.add_argument("--epochs", type=ranges["epochs"], default=None)
    p.add_argument("--maxlen", type=ranges["maxlen"], default=None)
    p.add_argument("--vocab", type=ranges["vocab"], default=None, help="vocabulary size (ids)")
    p.add_argument("--batch-size", type=ranges["batch_size"], default=None)
    p.add_argument("--units", type=ranges["units"], default=None)
    p.add_argument("--embedding-dim", type=ranges["embedding_dim"], default=None)
    p.add_argument("--quick", action="store_true", help="small smoke run (CI)")
    p.add_argument("--output-dir", default="saved_models")
    p.add_argument("--name", default=None, help="artifact name (default imdb_<bi><cell>)")
    p.add_argument("--data-path", default=None, help="aclImdb_v1.tar.gz or its folder")
    p.add_argument("--seed", type=ranges["seed"], default=SETTINGS["seed"])
    p.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1, help="Keras fit verbosity")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any setting at the top of this file, VALUE in JSON "
        "(e.g. --set spatial_dropout=0.4 --set pooling='[\"max\"]')",
    )
    args = p.parse_args(argv)
    if args.data_path is not None and not os.path.exists(args.data_path):
        p.error(f"argument --data-path: not found: {args.data_path!r}")
    config = dict(SETTINGS, cell=args.cell, seed=args.seed)
    if args.quick:
        config.update(QUICK)
    for key in ("epochs", "maxlen", "vocab", "batch_size", "units", "embedding_dim"):
        value = getattr(args, key)
        if value is not None:
            config[key] = value
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep or key not in SETTINGS:
            p.error(f"--set expects KEY=VALUE with KEY one of {sorted(SETTINGS)}, got {item!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text  # a bare string such as --set truncating=post
        expected = type(SETTINGS[key])
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
            p.error(f"--set {key}: expected a {expected.__name__}, got {text!r}")
        if key in SETTING_RANGES:
            try:
                SETTING_RANGES[key](str(value))
            except argparse.ArgumentTypeError as e:
                p.error(f"--set {key}: {e}")
        config[key] = value
    try:  # before any data is loaded or any model trained
        check_writable_folder(os.path.join(args.output_dir, "imdb.md"))
    except OSError as e:
        p.error(f"argument --output-dir: {e}")
    name = args.name or "imdb_{}{}{}".format(
        "bi" if config["bidirectional"] else "", config["cell"], "_quick" if args.quick else ""
    )
    return args, config, name


class WeightAverage(keras.callbacks.Callback):
    """Uniform average of the trainable weights, sampled every `every` steps.

    Sampling starts with epoch `start_epoch` (1-based). Averaging the weights
    along the end of the trajectory (Polyak averaging, as in the averaged SGD
    of AWD-LSTM, or SWA) usually generalizes better than the last point.
    """

    def __init__(self, start_epoch, every):
        super().__init__()
        self.start_epoch, self.every = start_epoch, max(1, every)
        self.total, self.count, self.epoch = None, 0, 0

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

    def assign_average(self, model):
        for variable, total in zip(model.trainable_weights, self.total):
            variable.assign((total / self.count).astype(variable.dtype))


def vectorize(vectorizer, texts, maxlen, truncating, batch_size=2000):
    """Unpadded id arrays from an adapted TextVectorization, cut to `maxlen`."""
    sequences = []
    for start in range(0, len(texts), batch_size):
        ids = keras.ops.convert_to_numpy(
            vectorizer(np.asarray(texts[start : start + batch_size], dtype=object))
        )
        for row in ids:
            row = row[: np.count_nonzero(row)]  # no word has id 0: the rest is padding
            row = row[:maxlen] if truncating == "post" else row[-maxlen:]
            sequences.append(row.astype("int32"))
    return sequences


def plot_curves(history, epoch_seconds, path, title, test_accuracy=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, history["loss"], "o-", label="train")
    ax_loss.plot(epochs, history["val_loss"], "o-", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="binary cross-entropy", title="loss")
    ax_acc.plot(epochs, history["accuracy"], "o-", label="train")
    ax_acc.plot(epochs, history["val_accuracy"], "o-", label="validation")
    if test_accuracy is not None:
        ax_acc.axhline(test_accuracy, color="gray", ls="--", label="test (shipped weights)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_xticks(epochs)
    fig.suptitle(f"{title} ({np.mean(epoch_seconds):.0f} s per epoch)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)


def write_card(path, name, config, results, command):
    rows = "\n".join(
        f"| {i + 1} | {results['epoch_seconds'][i]:.0f} | {h['loss']:.4f} | {h['accuracy']:.4f} | "
        f"{h['val_loss']:.4f} | {h['val_accuracy']:.4f} | {h['learning_rate']:.2e} |"
        for i, h in enumerate(results["epochs"])
    )
    settings = ", ".join(f"{k}={v}" for k, v in config.items())
    text = f"""# {name}

Binary sentiment classifier for English movie reviews (IMDB), raw text in,
positive-class probability out. Trained from scratch (no pretrained embeddings)
by `recipes/imdb.py`.

```python
import kzoo.models
clf = kzoo.models.load("saved_models/{name}.keras")
clf.predict(["This movie was wonderful", "Dull and far too long."])  # shape (2, 1)
```
or `python -m kzoo predict saved_models/{name}.keras "This movie was wonderful"`.

- **Data:** IMDB Large Movie Review Dataset v1.0 (Maas et al., 2011). Trained on
  {results["train_size"]:,} of the 25,000 training reviews, {results["val_size"]:,}
  held out for validation (the last 10% of review ids of each class: other movies than
  the training part, since a movie's reviews have consecutive ids); tested on {results["test_size"]:,} test reviews.
- **Test accuracy:** {results["test_accuracy"] * 100:.2f}% ({results["test_size"]:,} test
  reviews, threshold 0.5, measured through `predict` on the raw texts).
- **Command:** `{command}`
- **Backend:** Keras {results["keras_version"]} on {results["backend"]}, CPU
  ({results["cpu_count"]} cores, shared), {results["date"]}.
- **Weights:** {results["weights_used"]} (chosen on the validation split).
- **Epochs run:** {len(results["epochs"])} (best: epoch {results["best_epoch"]}), mean wall
  time per epoch {np.mean(results["epoch_seconds"]):.0f} s; total fit time
  {results["fit_seconds"]:.0f} s.
- **Model:** `kzoo.models.TextClassifier`, {results["parameters"]:,} parameters; the
  vocabulary ({results["vocabulary_size"]:,} ids) is stored in the `.keras` file.
- **Tokenization:** `<br />` tags replaced by spaces, then the standardization and
  whitespace split of `keras.layers.TextVectorization` (lower-case ASCII, strip ASCII
  punctuation); reviews longer than {config["maxlen"]} tokens keep their
  {"last" if config["truncating"] == "pre" else "first"} {config["maxlen"]} tokens.
- **Settings:** {settings}.
- **Limitations:** English movie reviews only; words outside the vocabulary count as one
  unknown token; reviews are judged as a whole (no aspects); no calibration.

| epoch | seconds | loss | accuracy | val loss | val accuracy | learning rate |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{rows}

![training curves]({name}_curves.png)
"""
    write_text(path, text)


def main(argv=None):
    run_start = time.time()
    args, config, name = parse_args(argv)
    keras.utils.set_random_seed(config["seed"])
    backend = keras.backend.backend()
    print(f"Backend: {backend}; settings: {json.dumps(config)}")

    # === Data ===
    start = time.time()
    # Sorted by class, then by review id. Reviews of one movie have consecutive
    # ids, so the last ids of each class form a validation set of (almost
    # only) movies absent from the training part, like the test set, whose
    # movies are disjoint from the training movies. A random split would
    # share movies with training and overrate memorized names and titles.
    train_texts, train_labels = load_texts("train", path=args.data_path)
    test_texts, test_labels = load_texts("test", path=args.data_path)
    first = {label: np.argmax(train_labels == label) for label in np.unique(train_labels)}
    count = {label: np.sum(train_labels == label) for label in np.unique(train_labels)}
    rank = np.array([i - first[y] for i, y in enumerate(train_labels)])
    share = rank / np.array([count[y] for y in train_labels])
    is_val = share >= 1 - config["validation_fraction"]
    rng = np.random.default_rng(config["seed"])
    train_order = rng.permutation(len(train_texts))
    test_order = rng.permutation(len(test_texts))
    if args.quick:
        train_order = train_order[: config["train_size"]]
        test_order = test_order[: config["test_size"]]
    val_rows = [i for i in train_order if is_val[i]]
    train_rows = [i for i in train_order if not is_val[i]]
    val_texts, val_labels = [train_texts[i] for i in val_rows], train_labels[val_rows]
    train_texts, train_labels = [train_texts[i] for i in train_rows], train_labels[train_rows]
    test_texts, test_labels = [test_texts[i] for i in test_order], test_labels[test_order]
    print(
        f"Loaded {len(train_texts)} train, {len(val_texts)} validation (from train, last "
        f"review ids of each class) and {len(test_texts)} test reviews in "
        f"{time.time() - start:.1f} s"
    )

    # === Vocabulary and ids ===
    start = time.time()
    vectorizer = keras.layers.TextVectorization(
        max_tokens=config["vocab"], standardize="lower_and_strip_punctuation", split="whitespace"
    )
    vectorizer.adapt(np.asarray(train_texts, dtype=object), batch_size=1024)
    tokenizer = kzoo.models.WordTokenizer.from_text_vectorization(
        vectorizer, sequence_length=config["maxlen"], truncating=config["truncating"]
    )
    x_train = vectorize(vectorizer, train_texts, config["maxlen"], config["truncating"])
    x_val = vectorize(vectorizer, val_texts, config["maxlen"], config["truncating"])
    # The saved model tokenizes without TensorFlow: check it gives the same ids.
    mismatches = sum(not np.array_equal(a, b) for a, b in zip(tokenizer.encode(val_texts), x_val))
    if mismatches:
        raise RuntimeError(f"WordTokenizer differs from TextVectorization on {mismatches} reviews")
    print(
        f"Vocabulary of {tokenizer.vocabulary_size} ids; ids of {len(x_train) + len(x_val)} "
        f"reviews in {time.time() - start:.1f} s (WordTokenizer == TextVectorization on "
        f"{len(x_val)} validation reviews)"
    )

    # === Model ===
    classifier = kzoo.models.TextClassifier(
        tokenizer.vocabulary_size,
        embedding_dim=config["embedding_dim"],
        cell_type=config["cell"],
        units=config["units"],
        num_layers=config["num_layers"],
        bidirectional=config["bidirectional"],
        dropout=config["dropout"],
        recurrent_dropout=config["recurrent_dropout"],
        embedding_dropout=config["embedding_dropout"],
        spatial_dropout=config["spatial_dropout"],
        word_type_dropout=config["word_type_dropout"],
        pooling=config["pooling"],
        head_dropout=config["head_dropout"],
        seed=config["seed"],
        name=name,
    )
    # Reviews of similar length together, each batch padded to its bucket;
    # reshuffled every epoch; incomplete batches dropped.
    train_data = BucketedBatches(
        x_train,
        train_labels.astype("float32"),
        batch_size=config["batch_size"],
        bucket_width=config["bucket_width"],
        max_length=config["maxlen"],
        shuffle=True,
        drop_remainder=True,
        seed=config["seed"],
    )
    val_data = BucketedBatches(
        x_val,
        val_labels.astype("float32"),
        batch_size=256,
        bucket_width=config["bucket_width"],
        max_length=config["maxlen"],
    )
    steps_per_epoch = len(train_data)
    schedule = keras.optimizers.schedules.ExponentialDecay(
        config["learning_rate"],
        decay_steps=config["lr_step_epochs"] * steps_per_epoch,
        decay_rate=config["lr_gamma"],
        staircase=True,
    )
    optimizer = keras.optimizers.Adam(
        learning_rate=schedule, clipnorm=config["clipnorm"], weight_decay=config["weight_decay"]
    )
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    classifier.compile(optimizer=optimizer)  # the task's loss and metrics: cross-entropy, accuracy
    classifier.summary()

    # === Training ===
    epoch_seconds, epoch_start = [], [0.0]
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: epoch_start.__setitem__(0, time.time()),
        on_epoch_end=lambda epoch, logs: epoch_seconds.append(time.time() - epoch_start[0]),
    )
    with tempfile.TemporaryDirectory() as tmp:
        best_path = os.path.join(tmp, "best.weights.h5")
        averager = WeightAverage(
            config["average_from_epoch"], int(config["average_every"] * steps_per_epoch)
        )
        callbacks = [
            timer,
            averager,
            keras.callbacks.ModelCheckpoint(
                best_path, monitor="val_accuracy", save_best_only=True, save_weights_only=True
            ),
            keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config["patience"]),
        ]
        start = time.time()
        history = classifier.fit(
            train_data,
            validation_data=val_data,
            epochs=config["epochs"],
            callbacks=callbacks,
            verbose=args.verbose,
        )
        fit_seconds = time.time() - start
        classifier.load_weights(best_path)
    history = history.history
    best_epoch = int(np.argmax(history["val_accuracy"])) + 1
    for epoch, seconds in enumerate(epoch_seconds, 1):
        print(
            f"Epoch {epoch}: {seconds:.0f} s, val_accuracy {history['val_accuracy'][epoch - 1]:.4f}"
        )
    print(f"Best epoch {best_epoch}; fit took {fit_seconds:.0f} s")

    # === Best checkpoint or weight average: whichever is better on validation ===
    best_val = classifier.evaluate(val_data, verbose=0)[1]
    weights_used = f"best epoch ({best_epoch}) checkpoint"
    average_val = None
    if averager.count:
        best_weights = classifier.get_weights()
        averager.assign_average(classifier)
        average_val = classifier.evaluate(val_data, verbose=0)[1]
        print(
            f"Validation accuracy: best checkpoint {best_val:.4f}, average of "
            f"{averager.count} snapshots from epoch {config['average_from_epoch']} on "
            f"{average_val:.4f}"
        )
        if average_val > best_val:
            weights_used = f"average of {averager.count} snapshots from epoch {config['average_from_epoch']} on"
        else:
            classifier.set_weights(best_weights)
    print(f"Shipping the {weights_used}")

    # === Test: raw texts through the saved-model path ===
    # A fresh copy without the optimizer state keeps the saved file small; it
    # holds the tokenizer, so it predicts from raw text.
    pipeline = kzoo.models.TextClassifier.from_config(
        dict(
            classifier.get_config(),
            preprocessor=TextClassifierPreprocessor(tokenizer, bucket_width=config["bucket_width"]),
            class_names=["negative", "positive"],
        )
    )
    pipeline.set_weights(classifier.get_weights())
    start = time.time()
    probabilities = pipeline.predict(test_texts, batch_size=256)[:, 0]
    test_accuracy = float(np.mean((probabilities > 0.5) == (test_labels == 1)))
    print(
        f"Test accuracy: {test_accuracy * 100:.2f}% on {len(test_texts)} test reviews "
        f"({time.time() - start:.0f} s)"
    )

    # === Artifacts ===
    os.makedirs(args.output_dir, exist_ok=True)
    model_path = os.path.join(args.output_dir, f"{name}.keras")
    save_model(pipeline, model_path)
    reloaded = kzoo.models.load(model_path)
    expected = reloaded.predict(EXPECTED_TEXTS)[:, 0]
    epochs = [
        {key: float(values[i]) for key, values in history.items()}
        for i in range(len(epoch_seconds))
    ]
    for i, record in enumerate(epochs):
        record["learning_rate"] = config["learning_rate"] * config["lr_gamma"] ** (
            i // config["lr_step_epochs"]
        )
    # The command as run, with the environment variables that shaped it.
    env = [f"KERAS_BACKEND={backend}"] + [
        f"{key}={shlex.quote(os.environ[key])}"
        for key in ("KZOO_DATA_DIR", "XLA_FLAGS", "OMP_NUM_THREADS")
        if key in os.environ
    ]
    script_args = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(env + ["python", "recipes/imdb.py"] + [shlex.quote(a) for a in script_args])
    results = dict(
        name=name,
        command=command,
        backend=backend,
        keras_version=keras.__version__,
        date=datetime.date.today().isoformat(),
        cpu_count=os.cpu_count(),
        python=platform.python_version(),
        train_size=len(train_texts),
        val_size=len(val_texts),
        test_size=len(test_texts),
        test_accuracy=test_accuracy,
        best_epoch=best_epoch,
        weights_used=weights_used,
        best_checkpoint_val_accuracy=float(best_val),
        average_val_accuracy=None if average_val is None else float(average_val),
        fit_seconds=fit_seconds,
        epoch_seconds=epoch_seconds,
        epochs=epochs,
        parameters=int(classifier.count_params()),
        vocabulary_size=tokenizer.vocabulary_size,
        model_bytes=os.path.getsize(model_path),
        settings=config,
    )
    write_json(os.path.join(args.output_dir, f"{name}_history.json"), results, indent=1)
    write_json(
        os.path.join(args.output_dir, f"{name}.expected.json"),
        {"backend": backend, "texts": EXPECTED_TEXTS, "probabilities": expected.tolist()},
        indent=1,
    )
    plot_curves(
        history,
        epoch_seconds,
        os.path.join(args.output_dir, f"{name}_curves.png"),
        f"{name} on {backend}",
        test_accuracy,
    )
    write_card(os.path.join(args.output_dir, f"{name}.md"), name, config, results, command)
    print(f"Saved {model_path} ({results['model_bytes'] / 1e6:.1f} MB) and its card, curves")
    for text, p in zip(EXPECTED_TEXTS, expected):
        print(f"  {p:.4f}  {text[:60]!r}")
    print(f"Done in {time.time() - run_start:.0f} s")
    return results


if __name__ == "__main__":
    main()
