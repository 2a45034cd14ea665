"""Semi-supervised IMDB: pretrain a word language model on the reviews, fine-tune it as the classifier.

The ULMFiT recipe (Howard & Ruder, 2018; Dai & Le, 2015) on the IMDB archive
alone, in four resumable stages, each in its own sub-folder with its own
backup (a finished stage is skipped when the command is run again):

1. `vocabulary/`: the words of the 50,000 unlabelled (`train/unsup`) and
   25,000 labelled training reviews (never the test reviews), counted with
   `WordTokenizer.from_texts`, and the reviews as one token stream with an
   end-of-review token (id 0) between reviews.
2. `language_model/`: an AWD-LSTM language model (tied embedding, weight
   drop, variational and embedding dropout, AR/TAR) trained by truncated
   BPTT with a sampled softmax over the vocabulary; an "epoch" is a fixed
   number of steps, so a backup is written every few minutes. Validation: the
   exact perplexity of held-out unlabelled reviews.
3. `classifier/`: a `TextClassifier` with the same vocabulary, embedding and
   LSTM layers copied from the language model, concat pooling (last, max,
   mean), discriminative learning rates per layer group, gradual unfreezing
   from the top and a slanted triangular schedule. The validation reviews are
   the last 10% of review ids of each class (other movies, as in
   `recipes/imdb.py`); the model with the best validation accuracy is kept.
4. The test: all 25,000 test reviews through the saved model's raw-text
   pipeline.

    KERAS_BACKEND=tensorflow python recipes/imdb_pretrained.py --name full-1   # the full run
    KERAS_BACKEND=jax python recipes/imdb_pretrained.py --quick                # smoke run, ~2 minutes
    KERAS_BACKEND=tensorflow python recipes/imdb_pretrained.py --name full-1 --publish

The full run takes hours on 2 CPU cores; a killed run resumes from its last
backup with the same command. Every stage prints tokens/s and an ETA.

Writes into `runs/imdb_pretrained/<name>/` (or `--output-dir`): `metrics.json`,
`timings.json`, `model_card.md`, `imdb_lm.keras` (the language model,
stateless), `imdb_ulmfit.keras` (the classifier) with `imdb_ulmfit.expected.json`
(its probabilities of fixed texts, checked on every backend by the tests), and
the stages' folders. `--set direction=backward` trains ULMFiT's backward
model instead (`language_model_backward/`, `imdb_lm_backward.keras`,
`imdb_ulmfit_backward.*`); `--set direction=both` trains both language models
and one classifier on both (`imdb_ulmfit_bidirectional.*`); `--set teacher=<classifier>`
adds the unlabelled reviews to the classifier's training data, with that
classifier's probabilities as soft targets (distillation; `teacher/`,
`*_distilled.*`; several teachers separated by spaces are averaged).
`--set language_model=imdb_lm` (a preset or a .keras path) fine-tunes a
finished language model instead of pretraining one: no vocabulary or
language-model stage, the hours of pretraining skipped. `--publish` copies
the models, the expected probabilities and the card to `saved_models/`. Set `KZOO_DATA_DIR`
to a folder holding `aclImdb_v1.tar.gz` to work offline.
"""

import dataclasses
import json
import os
import time

import keras
import numpy as np

from kzoo.datasets.imdb import load_texts
from kzoo.models import LanguageModel, TextClassifier, TextClassifierBackbone, load
from kzoo.models.saving import save_compact
from kzoo.models.text_classifier import TextClassifierPreprocessor
from kzoo.preprocessing import WordTokenizer
from kzoo.recipes import (
    EpochMetric,
    RunFolder,
    command_line,
    fit_resumable,
    parse_settings,
    progress,
    setting,
    start_run,
    training_callbacks,
)
from kzoo.recipes.expected_outputs import sample_probabilities
from kzoo.recipes.language_modeling import BPTTWindows, ResetStates, StreamScore, model_card
from kzoo.training import (
    DiscriminativeOptimizer,
    GradualUnfreezing,
    SlantedTriangularLearningRate,
    layer_groups,
    thresholded_binary_accuracy,
    transfer_language_model_weights,
)
from kzoo.utils.atomic_write import atomic_path
from kzoo.utils.bucketing import BucketedBatches

RATE = {"min": 0.0, "max": 0.99}
CLASS_NAMES = ["negative", "positive"]
# The language model's names of ids 0 and 1 (the tokenizer's padding and [UNK]).
END_OF_REVIEW, UNKNOWN = "<eor>", "<unk>"


@dataclasses.dataclass(frozen=True)
class Settings:
    # Data and vocabulary
    data_path: str | None = setting(None, "aclImdb_v1.tar.gz or an aclImdb folder")
    train_reviews: int | None = setting(
        None, "labelled training reviews read (random; None: all 25,000)", min=20
    )
    unsup_reviews: int | None = setting(None, "unlabelled reviews read (None: all 50,000)", min=2)
    test_reviews: int | None = setting(
        None, "test reviews scored (random; None: all 25,000)", min=1
    )
    validation_fraction: float = setting(
        0.1, "last review ids of each class held out for the classifier", min=0.01, max=0.5
    )
    vocab: int = setting(20000, "vocabulary size, padding and [UNK] included", min=3)
    # The network (language model and classifier alike)
    embedding_dim: int = setting(192, "embedding size = LSTM units (tied weights)", min=1)
    num_layers: int = setting(3, "stacked LSTM layers", min=1)
    # Language model
    lm_valid_reviews: int = setting(
        500, "unlabelled reviews held out for the validation perplexity", min=1
    )
    lm_batch_size: int = setting(64, "parallel rows of the token stream", min=1)
    bptt: int = setting(70, "truncated BPTT window (tokens)", min=2)
    num_sampled: int = setting(1024, "sampled softmax candidates per batch", min=1)
    lm_steps_per_epoch: int = setting(
        500, "training steps per language-model epoch (one backup each)", min=1
    )
    lm_epochs: int = setting(16, "language-model epochs", min=1)
    lm_learning_rate: float = setting(3e-3, "peak Adam rate (slanted triangular)", min=1e-9)
    lm_input_dropout: float = setting(0.1, "dropout on the embeddings", **RATE)
    lm_hidden_dropout: float = setting(0.1, "dropout between LSTM layers", **RATE)
    lm_output_dropout: float = setting(0.1, "dropout before the softmax", **RATE)
    lm_embedding_dropout: float = setting(0.02, "dropout of whole word types", **RATE)
    lm_weight_dropout: float = setting(0.1, "DropConnect on the recurrent kernels", **RATE)
    ar_alpha: float = setting(2.0, "activation regularisation (AR) weight", min=0.0)
    tar_beta: float = setting(1.0, "temporal activation regularisation (TAR) weight", min=0.0)
    language_model: str | None = setting(
        None,
        "a finished word language model (a .keras path or a preset name, e.g. imdb_lm) to "
        "fine-tune instead of pretraining one: the vocabulary and language-model stages are "
        "skipped and its vocabulary replaces `vocab` (None: pretrain)",
    )
    # Classifier
    direction: str = setting(
        "forward",
        "forward: reviews read first word first; backward: last word first (ULMFiT's "
        "backward model: its language model trains on the reversed stream, the classifier "
        "reverses its input); both: a forward and a backward language model fine-tuned "
        "together as one classifier (pooled features concatenated)",
        choices=("forward", "backward", "both"),
    )
    transfer_weights: bool = setting(
        True, "start from the language model's weights (false: random weights, the ablation)"
    )
    maxlen: int = setting(600, "tokens kept per review (its end)", min=1)
    bucket_width: int = setting(32, "batches are padded to a multiple of this", min=1)
    clf_batch_size: int = setting(32, "reviews per training batch", min=1)
    clf_epochs: int = setting(8, "classifier epochs", min=1)
    clf_learning_rate: float = setting(4e-3, "peak Adam rate of the top layer group", min=1e-9)
    lr_factor: float = setting(2.6, "learning-rate ratio between layer groups", min=1.0)
    gradual_unfreezing: bool = setting(True, "unfreeze one layer group per epoch, from the top")
    epochs_per_group: int = setting(1, "epochs between two unfreezings", min=1)
    clf_dropout: float = setting(0.15, "variational dropout of the LSTM inputs", **RATE)
    clf_spatial_dropout: float = setting(0.1, "dropout of embedding channels", **RATE)
    clf_weight_dropout: float = setting(
        0.1, "DropConnect on the classifier's recurrent kernels", **RATE
    )
    head_units: int = setting(50, "ReLU layer of the head (0: none)", min=0)
    head_dropout: float = setting(0.1, "dropout in the head", **RATE)
    # Distillation
    teacher: str | None = setting(
        None,
        "raw-text IMDB classifiers (.keras paths or preset names, separated by spaces, e.g. "
        "a forward + backward ensemble) whose averaged probabilities of the unlabelled "
        "reviews become the soft targets of extra training reviews: the classifier learns "
        "from the teacher (None: labelled reviews only)",
    )
    teacher_reviews: int | None = setting(
        None, "unlabelled reviews the teacher labels (None: all the language model's)", min=1
    )


QUICK = {
    "train_reviews": 2000,
    "unsup_reviews": 2000,
    "test_reviews": 1000,
    "vocab": 4000,
    "embedding_dim": 32,
    "num_layers": 2,
    "lm_valid_reviews": 50,
    "lm_batch_size": 16,
    "bptt": 30,
    "num_sampled": 256,
    "lm_steps_per_epoch": 60,
    "lm_epochs": 2,
    "lm_learning_rate": 1e-2,
    "maxlen": 200,
    "bucket_width": 100,
    "clf_epochs": 3,
    "clf_learning_rate": 3e-3,
    # A language model trained for a minute gives weak features: the whole
    # classifier trains from the start, at one rate.
    "gradual_unfreezing": False,
    "lr_factor": 1.0,
}


def main(argv=None):
    settings, options = parse_settings(
        Settings, QUICK, argv=argv, recipe="imdb_pretrained", description=__doc__
    )
    run = start_run(options)
    timings = {}
    data = load_reviews(settings, options.seed, timings)
    names = ["classifier"]
    if settings.language_model is None:
        names += ["vocabulary", *(LM_STAGES[d] for d in directions(settings))]
    names += ["teacher"] if settings.teacher is not None else []
    stages = {name: RunFolder(os.path.join(run.path, name)) for name in names}
    if settings.language_model is not None:
        tokenizer, language_models, lm_metrics = finished_language_model(data, settings, timings)
    else:
        tokenizer, streams = vocabulary_stage(
            stages["vocabulary"], data, settings, options, timings
        )
        language_models, lm_metrics = {}, {}
        for direction in directions(settings):
            language_models[direction], metrics = language_model_stage(
                stages[LM_STAGES[direction]], tokenizer, streams, direction, settings, options,
                timings,
            )  # fmt: skip
            lm_metrics.update(metrics)
    targets, teacher_metrics = None, {}
    if settings.teacher is not None:
        targets = teacher_stage(
            stages["teacher"], data, settings, options, timings, teacher_metrics
        )
    classifier, clf_metrics = classifier_stage(
        stages["classifier"], tokenizer, language_models, data, targets, settings, options,
        timings,
    )  # fmt: skip
    start = time.time()
    test_accuracy = score(classifier, *data["test"])
    timings["test_seconds"] = round(time.time() - start, 1)
    print(f"Test accuracy: {test_accuracy:.2%} on {len(data['test'][0])} reviews")
    metrics = {
        "test_accuracy": test_accuracy,
        **clf_metrics,
        **teacher_metrics,
        **lm_metrics,
        **{f"{k}_reviews": len(v[0]) for k, v in data.items()},
        "vocabulary_size": tokenizer.vocabulary_size,
        "lm_parameters": int(next(iter(language_models.values())).count_params()),
        "classifier_parameters": int(classifier.count_params()),
    }
    write_outputs(run, language_models, classifier, settings, options, metrics, timings)
    for stage in stages.values():
        run.written.extend(stage.written)
    print(run.summary())
    return metrics


def directions(settings):
    """The language models a run trains: `["forward"]`, `["backward"]` or both."""
    return ["forward", "backward"] if settings.direction == "both" else [settings.direction]


# Each direction's language-model stage folder, output file stem and metrics prefix.
LM_STAGES = {"forward": "language_model", "backward": "language_model_backward"}
LM_NAMES = {"forward": "imdb_lm", "backward": "imdb_lm_backward"}
LM_METRICS = {"forward": "lm_", "backward": "lm_backward_"}
CLASSIFIER_NAMES = {
    "forward": "imdb_ulmfit",
    "backward": "imdb_ulmfit_backward",
    "both": "imdb_ulmfit_bidirectional",
}


def classifier_file_stem(settings):
    """`imdb_ulmfit[_backward|_bidirectional]`, with `_distilled` when a teacher labelled reviews."""
    stem = CLASSIFIER_NAMES[settings.direction]
    return stem + "_distilled" if settings.teacher is not None else stem


# --- data ---------------------------------------------------------------------


def load_reviews(settings, seed, timings):
    """`{"lm_train", "lm_valid", "train", "val", "test": (texts, labels)}`.

    The classifier's validation reviews are the last review ids of each class
    (other movies); the language model's validation reviews are the last
    unlabelled ones. The language model trains on the other unlabelled
    reviews and all labelled training reviews (their labels unused).
    """
    start = time.time()
    print("Loading the IMDB reviews (the first run extracts the archive: a minute or more)")
    texts, labels = load_texts("train", include_unsup=True, path=settings.data_path)
    test_texts, test_labels = load_texts("test", path=settings.data_path)
    rng = np.random.default_rng(seed)
    labelled = np.flatnonzero(labels >= 0)
    unlabelled = np.flatnonzero(labels < 0)[: settings.unsup_reviews]
    if len(unlabelled) <= settings.lm_valid_reviews:
        raise ValueError(
            f"lm_valid_reviews={settings.lm_valid_reviews} leaves no unlabelled review to "
            f"train on ({len(unlabelled)} read)."
        )
    is_val = np.zeros(len(texts), bool)
    for label in (0, 1):  # sorted by class, then review id
        rows = np.flatnonzero(labels == label)
        is_val[rows[np.arange(len(rows)) >= (1 - settings.validation_fraction) * len(rows)]] = True
    chosen = rng.permutation(labelled)[: settings.train_reviews]
    test_rows = rng.permutation(len(test_texts))[: settings.test_reviews]
    split = settings.lm_valid_reviews
    rows = {
        "lm_train": np.concatenate([unlabelled[:-split], np.sort(chosen)]),
        "lm_valid": unlabelled[-split:],
        "train": np.array([i for i in chosen if not is_val[i]]),
        "val": np.array([i for i in chosen if is_val[i]]),
    }
    data = {key: ([texts[i] for i in r], labels[r]) for key, r in rows.items()}
    data["test"] = ([test_texts[i] for i in test_rows], test_labels[test_rows])
    if settings.teacher is not None:  # the teacher labels the language model's unlabelled reviews
        rows = unlabelled[:-split][: settings.teacher_reviews]
        data["unlabelled"] = ([texts[i] for i in rows], labels[rows])
    print(", ".join(f"{len(v[0])} {k}" for k, v in data.items()) + " reviews")
    timings["load_seconds"] = round(time.time() - start, 1)
    return data


def vocabulary_stage(stage, data, settings, options, timings):
    """The tokenizer and the language model's token streams (computed once, then read)."""
    path = stage.file("vocabulary.json")
    if options.resume and os.path.exists(path):
        print(f"Resuming: the vocabulary and token streams in {stage.path}")
        with open(path, encoding="utf-8") as f:
            tokenizer = WordTokenizer.from_config(json.load(f))
        streams = {k: np.load(stage.file(f"{k}_stream.npy")) for k in ("train", "valid")}
        return tokenizer, streams
    start = time.time()
    tokenizer = WordTokenizer.from_texts(
        data["lm_train"][0],
        max_tokens=settings.vocab,
        sequence_length=settings.maxlen,
        truncating="pre",
        verbose=1,
    )
    streams = {
        "train": token_stream(tokenizer, data["lm_train"][0]),
        "valid": token_stream(tokenizer, data["lm_valid"][0]),
    }
    for key, ids in streams.items():
        with atomic_path(stage.file(f"{key}_stream.npy")) as temporary:
            with open(temporary, "wb") as f:
                np.save(f, ids)
        stage.record(f"{key}_stream.npy")
    stage.write_json("vocabulary.json", tokenizer.get_config())  # last: marks the stage done
    timings["vocabulary_seconds"] = round(time.time() - start, 1)
    print(
        f"{tokenizer.vocabulary_size} words; language-model streams of "
        f"{len(streams['train']):,} training and {len(streams['valid']):,} validation tokens"
    )
    return tokenizer, streams


def token_stream(tokenizer, texts):
    """The reviews' ids as one stream, each review followed by id 0 (end of review)."""
    # Whole reviews: the classifier's `maxlen` cut does not apply here.
    whole = WordTokenizer.from_config({**tokenizer.get_config(), "sequence_length": None})
    parts = []
    for text in progress(texts, label=f"Tokenizing {len(texts)} reviews", unit="reviews"):
        parts.extend([whole.encode([text])[0], np.zeros(1, "int32")])
    return np.concatenate(parts).astype("int32")


# --- stage 2: the language model ------------------------------------------------


class StepWindows(keras.utils.PyDataset):
    """Epochs of `steps` consecutive BPTT batches, continuing through the passes over the stream.

    Epoch `e` holds global steps `e * steps ... (e + 1) * steps - 1`; step `g`
    is window `g % n` of pass `g // n` over the stream (`n` windows per pass,
    each pass with its own random offset, see `BPTTWindows`). `set_epoch`
    makes a resumed run read the same batches.
    """

    def __init__(self, windows, steps):
        super().__init__()
        self.windows, self.steps = windows, steps
        self.set_epoch(0)

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        passes, window = divmod(self.epoch * self.steps + index, len(self.windows))
        self.windows.set_epoch(passes)
        return self.windows[window]


class StageClock(keras.callbacks.Callback):
    """Prints tokens/s and the stage's ETA after each epoch; keeps the totals for timings.json.

    The seconds of each epoch are written to `clock.json` in the stage's
    folder, keyed by epoch, so a stage that spans several resumed runs reports
    the time of all its epochs (an epoch trained again after a kill counts
    once, with its last time).
    """

    def __init__(self, label, tokens_per_epoch, epochs, stage, resume):
        super().__init__()
        self.label, self.tokens_per_epoch, self.epochs = label, tokens_per_epoch, epochs
        self.stage, self.path = stage, stage.file("clock.json")
        self.epoch_seconds = {}
        if resume and os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                self.epoch_seconds = json.load(f)["epoch_seconds"]

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        self.epoch_seconds[str(epoch)] = round(seconds, 4)
        self.stage.write_json("clock.json", {"epoch_seconds": self.epoch_seconds})
        mean = sum(self.epoch_seconds.values()) / len(self.epoch_seconds)
        left = (self.epochs - epoch - 1) * mean
        print(
            f"{self.label} epoch {epoch + 1}/{self.epochs}: "
            f"{self.tokens_per_epoch / seconds:,.0f} tokens/s, stage ETA {left / 3600:.1f} h",
            flush=True,
        )

    def summary(self):
        seconds = sum(self.epoch_seconds.values())
        trained = len(self.epoch_seconds)
        rate = trained * self.tokens_per_epoch / seconds if seconds else None
        return {"epochs_trained": trained, "seconds": round(seconds, 3),
                "tokens_per_second": None if rate is None else round(rate)}  # fmt: skip


def build_language_model(settings, tokenizer, seed):
    vocabulary = [END_OF_REVIEW, UNKNOWN, *tokenizer.vocabulary[2:]]
    model = LanguageModel(
        vocabulary=vocabulary,
        token_level="word",
        embedding_dim=settings.embedding_dim,
        units=settings.embedding_dim,
        num_layers=settings.num_layers,
        cell_type="lstm",
        tie_weights=True,
        stateful=True,
        batch_size=settings.lm_batch_size,
        input_dropout=settings.lm_input_dropout,
        hidden_dropout=settings.lm_hidden_dropout,
        output_dropout=settings.lm_output_dropout,
        variational_dropout=True,
        embedding_dropout=settings.lm_embedding_dropout,
        recurrent_weight_dropout=settings.lm_weight_dropout,
        activation_regularization=settings.ar_alpha,
        temporal_activation_regularization=settings.tar_beta,
        softmax="sampled" if settings.num_sampled < tokenizer.vocabulary_size else "full",
        num_sampled=min(settings.num_sampled, tokenizer.vocabulary_size - 1),
        seed=seed,
    )
    total_steps = settings.lm_epochs * settings.lm_steps_per_epoch
    schedule = SlantedTriangularLearningRate(
        settings.lm_learning_rate, total_steps, cut_fraction=max(0.1, 1 / total_steps)
    )
    model.compile(optimizer=keras.optimizers.Adam(schedule, beta_1=0.8, beta_2=0.99, clipnorm=1.0))
    return model


def language_model_stage(stage, tokenizer, streams, direction, settings, options, timings):
    """Trains (or resumes) one direction's language model; returns it (stateless) and metrics."""
    model = build_language_model(settings, tokenizer, options.seed)
    if direction == "backward":  # each review reversed, the end-of-review ids now before them
        streams = {key: np.ascontiguousarray(ids[::-1]) for key, ids in streams.items()}
    windows = BPTTWindows(
        streams["train"], settings.lm_batch_size, settings.bptt, seed=options.seed,
        random_offset=True,
    )  # fmt: skip
    train = StepWindows(windows, settings.lm_steps_per_epoch)
    tokens_per_epoch = settings.lm_steps_per_epoch * settings.lm_batch_size * settings.bptt
    passes = settings.lm_epochs * tokens_per_epoch / windows.tokens_per_epoch
    label = "Language model" if direction == "forward" else "Backward language model"
    print(
        f"{label}: {model.count_params():,} parameters, {settings.lm_epochs} epochs of "
        f"{tokens_per_epoch:,} tokens ({passes:.2f} passes over the stream)"
    )
    valid = StreamScore(streams["valid"], batch_size=8, sequence_length=256)
    clock = StageClock(label, tokens_per_epoch, settings.lm_epochs, stage, options.resume)
    callbacks, backup = training_callbacks(
        stage, monitor="val_perplexity", mode="min", metrics=[valid], datasets=[train],
        resume=options.resume,
    )  # fmt: skip
    fit_resumable(
        model, train, backup=backup, epochs=settings.lm_epochs,
        callbacks=[clock, ResetStates(), *callbacks],
    )  # fmt: skip
    best = keras.saving.load_model(stage.file("best.keras"), compile=False)
    stage.record("best.keras")
    stage.record("log.csv")
    final = LanguageModel.from_config({**best.get_config(), "stateful": False, "batch_size": None})
    for source, target in zip(best.trainable_weights, final.trainable_weights):
        target.assign(source)  # the stateful model's carried states are left out
    result = valid.evaluate(final)
    print(f"{label}: validation perplexity {result['perplexity']:.2f}")
    timings[LM_STAGES[direction]] = clock.summary()
    prefix = LM_METRICS[direction]
    return final, {
        f"{prefix}val_perplexity": result["perplexity"],
        f"{prefix}val_tokens": result["tokens"],
    }


def finished_language_model(data, settings, timings):
    """The tokenizer, `{direction: model}` and metrics of `settings.language_model` (no training).

    The model is checked against the classifier it must fit (a word-level
    LSTM language model with `embedding_dim` units in `num_layers` layers)
    and scored on this run's held-out unlabelled reviews.
    """
    start = time.time()
    if settings.direction == "both":
        raise ValueError(
            "language_model= gives one language model; direction='both' needs a forward and "
            "a backward one. Use direction='forward' or 'backward' (the direction the model "
            "was trained in)."
        )
    model = load(settings.language_model, compile=False)
    if not isinstance(model, LanguageModel) or model.token_level != "word" or not model.vocabulary:
        raise ValueError(
            f"language_model={settings.language_model!r} must be a word-level kzoo "
            f"LanguageModel; it is a {type(model).__name__}."
        )
    config = model.get_config()
    wanted = {
        "cell_type": "lstm",
        "embedding_dim": settings.embedding_dim,
        "units": settings.embedding_dim,
        "num_layers": settings.num_layers,
    }
    wrong = [f"{k}={config[k]!r} (this run: {v!r})" for k, v in wanted.items() if config[k] != v]
    if wrong:
        raise ValueError(
            f"language_model={settings.language_model!r} does not fit this run's classifier: "
            + ", ".join(wrong)
            + ". Set embedding_dim and num_layers to the model's."
        )
    # Ids 0 and 1 are the end of review and [UNK] in the language model, padding
    # and [UNK] in the classifier (see vocabulary_stage).
    tokenizer = WordTokenizer(
        ["", "[UNK]", *model.vocabulary[2:]],
        sequence_length=settings.maxlen,
        truncating="pre",
    )
    stream = token_stream(tokenizer, data["lm_valid"][0])
    if settings.direction == "backward":
        stream = np.ascontiguousarray(stream[::-1])
    result = StreamScore(stream, batch_size=8, sequence_length=256).evaluate(model)
    print(
        f"Language model {settings.language_model}: {model.count_params():,} parameters, "
        f"{tokenizer.vocabulary_size} words; validation perplexity {result['perplexity']:.2f}"
    )
    timings["language_model_seconds"] = round(time.time() - start, 1)
    prefix = LM_METRICS[settings.direction]
    metrics = {
        f"{prefix}val_perplexity": result["perplexity"],
        f"{prefix}val_tokens": result["tokens"],
    }
    return tokenizer, {settings.direction: model}, metrics


# --- stage 3: the classifier ----------------------------------------------------


def build_classifier(settings, tokenizer, language_models, steps_per_epoch, seed):
    """The classifier on `language_models` (`{direction: model}`), compiled; and its layer groups.

    One `TextClassifierBackbone` per direction (the backward one reverses its
    input ids); with both, their pooled features are concatenated and layer
    group `i` holds layer `i` of both directions.
    """
    backbones = {
        direction: TextClassifierBackbone(
            tokenizer.vocabulary_size,
            embedding_dim=settings.embedding_dim,
            cell_type="lstm",
            units=settings.embedding_dim,
            num_layers=settings.num_layers,
            bidirectional=False,
            dropout=settings.clf_dropout,
            spatial_dropout=settings.clf_spatial_dropout,
            recurrent_weight_dropout=settings.clf_weight_dropout,
            pooling=["last", "max", "mean"],
            reverse=direction == "backward",
            seed=None if seed is None else seed + 100 * (direction == "backward"),
            name=f"{direction}_backbone",
        )
        for direction in directions(settings)
    }
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    pooled = [backbone(token_ids) for backbone in backbones.values()]
    features = pooled[0] if len(pooled) == 1 else keras.layers.Concatenate(name="pooled")(pooled)
    # ULMFiT's head starts with batch normalisation: the pooled states of a
    # pretrained LSTM differ little from review to review at first.
    features = keras.layers.BatchNormalization(momentum=0.9, name="feature_norm")(features)
    model = TextClassifier(
        backbone=keras.Model(token_ids, features, name="backbone"),
        head_units=settings.head_units,
        head_dropout=settings.head_dropout,
        preprocessor=TextClassifierPreprocessor(tokenizer, bucket_width=settings.bucket_width),
        class_names=CLASS_NAMES,
        seed=seed,
    )
    if settings.transfer_weights:
        for direction, backbone in backbones.items():
            transfer_language_model_weights(language_models[direction], backbone)
    # Bottom first: embeddings, each recurrent layer (both directions together), the head.
    per_direction = [layer_groups(backbone) for backbone in backbones.values()]
    groups = [sum(layers, []) for layers in zip(*per_direction)] + [layer_groups(model)[-1]]
    total_steps = settings.clf_epochs * steps_per_epoch
    schedule = SlantedTriangularLearningRate(
        settings.clf_learning_rate, total_steps, cut_fraction=max(0.1, 1 / total_steps)
    )
    optimizer = DiscriminativeOptimizer(
        keras.optimizers.Adam(schedule, beta_1=0.7, beta_2=0.99, clipnorm=1.0),
        groups,
        factor=settings.lr_factor,
    )
    # Binary cross-entropy (the default) takes soft targets as they are; the
    # accuracy counts a prediction on the target's side of 0.5 as right.
    accuracy = keras.metrics.MeanMetricWrapper(thresholded_binary_accuracy, name="accuracy")
    model.compile(optimizer=optimizer, metrics=[accuracy])
    return model, groups


def batches(tokenizer, texts, labels, settings, training, seed):
    sequences = [
        tokenizer.encode([text])[0]
        for text in progress(texts, label=f"Tokenizing {len(texts)} reviews", unit="reviews")
    ]
    return BucketedBatches(
        sequences, labels.astype("float32"),
        batch_size=settings.clf_batch_size if training else 128,
        bucket_width=settings.bucket_width, max_length=settings.maxlen,
        shuffle=training, drop_remainder=training, seed=seed,
    )  # fmt: skip


def teacher_stage(stage, data, settings, options, timings, metrics):
    """The teacher's positive-class probabilities of `data["unlabelled"]` (computed once, then read).

    With several teachers, their probabilities averaged. The teacher's
    accuracy on the classifier's validation reviews goes into `metrics`.
    """
    texts = data["unlabelled"][0]
    identity = {"teacher": settings.teacher, "reviews": len(texts)}
    done = stage.file("teacher.json")
    if options.resume and os.path.exists(done):
        with open(done, encoding="utf-8") as f:
            saved = json.load(f)
        if {k: saved.get(k) for k in identity} != identity:
            raise ValueError(
                f"{stage.path} holds the probabilities of another teacher: {saved}; this run "
                f"asks for {identity}. Use another --name, or delete that folder to relabel."
            )
        print(f"Resuming: the teacher's probabilities in {stage.path}")
        metrics["teacher_val_accuracy"] = saved.get("val_accuracy")
        return np.load(stage.file("probabilities.npy"))
    start = time.time()
    teachers = [load_teacher(path) for path in settings.teacher.split()]
    print(f"Teacher {settings.teacher}: labelling {len(texts)} unlabelled reviews")
    probabilities = np.mean([positive_probabilities(t, texts) for t in teachers], axis=0)
    val_texts, val_labels = data["val"]
    val_probabilities = np.mean([positive_probabilities(t, val_texts) for t in teachers], axis=0)
    val_accuracy = float(np.mean((val_probabilities > 0.5) == (val_labels == 1)))
    with atomic_path(stage.file("probabilities.npy")) as temporary:
        with open(temporary, "wb") as f:
            np.save(f, probabilities.astype("float32"))
    stage.record("probabilities.npy")
    stage.write_json("teacher.json", {**identity, "val_accuracy": val_accuracy})  # last: done
    timings["teacher_seconds"] = round(time.time() - start, 1)
    metrics["teacher_val_accuracy"] = val_accuracy
    print(
        f"Teacher: {np.mean(probabilities > 0.5):.1%} of the unlabelled reviews positive; "
        f"validation accuracy {val_accuracy:.2%}"
    )
    return probabilities.astype("float32")


def load_teacher(path):
    teacher = load(path, compile=False)
    if getattr(teacher, "task", None) != "classify" or teacher.num_classes != 2:
        raise ValueError(
            f"teacher {path!r} must be a two-class kzoo classifier of raw text "
            f"(a TextClassifier or TextPipeline); it is a {type(teacher).__name__}"
            + (f" with {teacher.num_classes} classes." if hasattr(teacher, "num_classes") else ".")
        )
    return teacher


def positive_probabilities(classifier, texts):
    # (n, 1) from a TextClassifier, (n,) from a TextPipeline such as an ensemble
    return np.reshape(classifier.predict(texts, batch_size=128), (-1,)).astype("float64")


def classifier_stage(stage, tokenizer, language_models, data, targets, settings, options,
                     timings):  # fmt: skip
    """Fine-tunes (or resumes) the classifier; returns the best one and its metrics.

    With `targets` (the teacher's probabilities of `data["unlabelled"]`) those
    reviews join the labelled training reviews, with soft targets.
    """
    texts, labels = data["train"]
    if targets is not None:
        texts = [*texts, *data["unlabelled"][0]]
        labels = np.concatenate([labels.astype("float32"), targets.astype("float32")])
    train = batches(tokenizer, texts, labels, settings, True, options.seed)
    val_texts, val_labels = data["val"]
    model, groups = build_classifier(settings, tokenizer, language_models, len(train), options.seed)
    print(f"Classifier: {model.count_params():,} parameters; layer groups {groups}")
    accuracy = EpochMetric("val_accuracy", lambda m: score(m, val_texts, val_labels, verbose=0))
    clock = StageClock(
        "Classifier", int(np.sum(train.lengths)), settings.clf_epochs, stage, options.resume
    )
    callbacks, backup = training_callbacks(
        stage, monitor="val_accuracy", mode="max", metrics=[accuracy], datasets=[train],
        resume=options.resume,
    )  # fmt: skip
    unfreezing = []
    if settings.gradual_unfreezing:
        unfreezing = [GradualUnfreezing(groups, epochs_per_group=settings.epochs_per_group)]
    fit_resumable(
        model, train, backup=backup, epochs=settings.clf_epochs,
        callbacks=[clock, *unfreezing, *callbacks],
    )  # fmt: skip
    best = keras.saving.load_model(stage.file("best.keras"), compile=False)
    stage.record("best.keras")
    stage.record("log.csv")
    final = TextClassifier.from_config(best.get_config())  # no optimizer state: a small file
    final.set_weights(best.get_weights())
    final.trainable = True
    val_accuracy = score(final, val_texts, val_labels, verbose=0)
    print(f"Classifier: validation accuracy {val_accuracy:.2%}")
    timings["classifier"] = clock.summary()
    return final, {"val_accuracy": val_accuracy}


def score(model, texts, labels, verbose=1):
    """Accuracy of the classifier's raw-text pipeline (the test: with a progress bar)."""
    if verbose:
        print(f"Scoring {len(texts)} reviews")
    batches = model.preprocessor.batches(texts, 128)
    probabilities = batches.restore_order(model.predict(batches, verbose=verbose))[:, 0]
    return float(np.mean((probabilities > 0.5) == (labels == 1)))


# --- outputs --------------------------------------------------------------------


def write_outputs(run, language_models, classifier, settings, options, metrics, timings):
    files, dtypes = [], {}
    # A language model given by `language_model=` is the user's file: not written again.
    trained = language_models if settings.language_model is None else {}
    for direction, language_model in trained.items():
        name = f"{LM_NAMES[direction]}.keras"
        dtypes[f"{LM_METRICS[direction]}weights_dtype"] = language_model.save_stateless(
            run.file(name)
        )
        run.record(name)
        files.append(name)
    classifier_name = classifier_file_stem(settings)
    dtypes["classifier_weights_dtype"] = save_compact(
        classifier, run.file(f"{classifier_name}.keras")
    )
    run.record(f"{classifier_name}.keras")
    run.write_json(
        f"{classifier_name}.expected.json",
        sample_probabilities(load(run.file(f"{classifier_name}.keras"))),
    )
    files += [f"{classifier_name}.keras", f"{classifier_name}.expected.json"]
    run.write_json("metrics.json", metrics)
    run.write_json("timings.json", {**timings, **dtypes})
    command = command_line("imdb_pretrained")
    run.write_text("model_card.md", card(settings, options, metrics, timings, command))
    if options.publish:
        run.publish(
            [*files, "model_card.md"],
            "saved_models",
            rename={"model_card.md": f"{classifier_name}.md"},
        )


def card(settings, options, metrics, timings, command):
    backend = keras.backend.backend()
    classifier_name = classifier_file_stem(settings)
    language_models = " and ".join(
        f"`{settings.language_model or LM_NAMES[d] + '.keras'}` "
        f"({'last word first' if d == 'backward' else 'first word first'})"
        for d in directions(settings)
    )
    perplexities = "; ".join(
        f"{d} language model validation perplexity {metrics[f'{LM_METRICS[d]}val_perplexity']:.2f}"
        for d in directions(settings)
    )
    stages = ", ".join(
        f"{k}: {v['seconds'] / 3600:.2f} h ({v['tokens_per_second']} tokens/s)"
        if isinstance(v, dict) else f"{k}: {v} s"
        for k, v in timings.items()
    )  # fmt: skip
    return model_card(
        "IMDB sentiment from a pretrained review language model (ULMFiT)",
        f"`{classifier_name}.keras`: a {settings.num_layers}-layer LSTM classifier fine-tuned "
        f"from {language_models}, word language models pretrained on the IMDB reviews"
        + (
            " (both directions' pooled features concatenated)."
            if settings.direction == "both"
            else "."
        ),
        intended_use=(
            "Sentiment (negative/positive) of English movie reviews, for research and teaching: "
            f"`kzoo.models.load('{classifier_name}.keras').predict(['A wonderful film.'])`. The language "
            "model generates review-like text and is the starting point for other review tasks."
        ),
        limitations=(
            "English movie reviews only; words outside the "
            f"{metrics['vocabulary_size']:,}-word vocabulary become `[UNK]`; reviews are cut to "
            f"their last {settings.maxlen} tokens. Accuracy on other domains is not measured."
        ),
        data=(
            "IMDB Large Movie Review Dataset v1.0 (Maas et al., 2011): "
            + (
                f"the language model `{settings.language_model}` was pretrained earlier (see "
                "its card), validated here on "
                if settings.language_model is not None
                else f"the language model reads {metrics['lm_train_reviews']:,} reviews "
                "(unlabelled `train/unsup` and labelled training reviews), validated on "
            )
            + f"{metrics['lm_valid_reviews']:,} held-out unlabelled "
            f"reviews; the classifier trains on {metrics['train_reviews']:,} labelled reviews, "
            f"validated on {metrics['val_reviews']:,} (the last 10% of review ids of each class: "
            f"other movies), tested on {metrics['test_reviews']:,} test reviews."
            + (
                f" The classifier also trains on {metrics['unlabelled_reviews']:,} unlabelled "
                f"reviews, its targets the probabilities of the teacher `{settings.teacher}`."
                if settings.teacher is not None
                else ""
            )
            + "\n\n"
            "Licence: the IMDB dataset is provided for research use (Maas et al., 2011)."
        ),
        metrics=(
            f"Test accuracy {metrics['test_accuracy']:.4f}, validation accuracy "
            f"{metrics['val_accuracy']:.4f}; {perplexities}.\n\n"
            f"Command: `{command}`"
        ),
        training=(
            f"Backend {backend}, 2 CPU cores, seed {options.seed}. Stages: {stages}.\n\n"
            f"Settings: `{json.dumps(dataclasses.asdict(settings))}`"
        ),
    )


if __name__ == "__main__":
    main()
