"""Stateful truncated-BPTT training with `fit`, written once for the language-model recipes.

A recurrent language model trained by truncated backpropagation through time
reads a long token stream as `batch_size` parallel rows and carries its
recurrent state from one window of a row to the next (Zaremba et al.'s PTB
reader). With Keras's `fit` that takes four pieces, all here:

* `BPTTWindows`: the training data, a `keras.utils.PyDataset` whose batch `i`
  continues batch `i - 1` row by row (never shuffled), with `set_epoch` so
  that a resumed run sees the same windows; optionally the window boundaries
  move by a random offset drawn from `(seed, epoch)` each epoch, so that no
  token is always the first of its window (AWD-LSTM's variable BPTT length
  serves the same end).
* `ResetStates`: zeros the carried states when an epoch begins and before
  Keras evaluates, so that each epoch starts from the state a resumed run
  also starts from.
* `StreamScore`: an `EpochMetric` giving the exact validation perplexity (or
  bits per token) of the whole validation stream, state carried
  (`LanguageModel.evaluate_stream`).
* `TokenThroughput`: training tokens per second, for `timings.json`.

`fit_language_model` runs them with the recipe convention's callbacks
(`training_callbacks`: best model, early stopping, CSV log, resumable backup).
And what the recipes' outputs share: `sample_texts` (text sampled at several
temperatures), `model_card` (the five sections of every kzoo model card) and
`write_outputs` (model, metrics, timings, samples, card, `--publish`).
"""

import dataclasses
import json
import os
import time

import keras
import numpy as np

from kzoo.models.language_model.preprocessor import bptt_batches
from kzoo.recipes.callbacks import BestModel, EpochMetric, training_callbacks
from kzoo.recipes.training_backup import fit_resumable
from kzoo.utils import atomic_write
from kzoo.utils.validation import check_bool, check_choice, check_int, check_seed

CARD_SECTIONS = ("Intended use", "Limitations", "Data", "Metrics", "Training")


class BPTTWindows(keras.utils.PyDataset):
    """Consecutive windows of a token stream for a stateful model's `fit`.

    The stream is cut into `batch_size` contiguous rows (`bptt_batches`); batch
    `i` holds window `i` of every row, so row `b` of batch `i` continues row
    `b` of batch `i - 1` and a stateful model carries its state across them.
    The order is the point: give `fit` `shuffle=False`.

    With `random_offset=True` the stream starts `r` tokens later in each epoch,
    `r` drawn in `[0, sequence_length)` from `(seed, epoch)`: the windows cut
    the text at other places each epoch, and a resumed run draws the same `r`.
    The number of batches is the same every epoch (that of the shortest
    shifted stream).

    Args:
        token_ids: 1-D int array, the training stream.
        batch_size: positive int, the number of parallel rows (the stateful
            model's fixed batch size).
        sequence_length: positive int, the BPTT window.
        seed: int seed of the per-epoch offsets (needed with `random_offset`).
        random_offset: whether the windows move by a random offset each epoch.
        **kwargs: `keras.utils.PyDataset` arguments; keep the default
            `workers=1` so that no batch is read before its epoch begins.

    Example:

    >>> train = BPTTWindows(ids, batch_size=20, sequence_length=35, seed=1)
    >>> model.fit(train, epochs=10, shuffle=False, callbacks=[ResetStates()])
    """

    def __init__(
        self, token_ids, batch_size, sequence_length, seed=None, random_offset=False, **kwargs
    ):
        super().__init__(**kwargs)
        ids = np.asarray(token_ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(
                "`token_ids` must be a 1-D array of int token ids. Received: "
                f"dtype {ids.dtype}, shape {ids.shape}"
            )
        self.token_ids = ids
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.sequence_length = check_int(sequence_length, "sequence_length", minimum=1)
        self.random_offset = check_bool(random_offset, "random_offset")
        self.seed = check_seed(seed)
        if self.random_offset and self.seed is None:
            raise ValueError("`random_offset=True` needs an int `seed` (the offsets come from it).")
        shortest = ids[: len(ids) - (self.sequence_length - 1 if self.random_offset else 0)]
        # Raises a clear error when the stream is too short.
        x, _ = bptt_batches(shortest, self.batch_size, self.sequence_length)
        self.num_windows = len(x) // self.batch_size
        self.epoch = None
        self.set_epoch(0)

    def set_epoch(self, epoch):
        """Cuts the windows of `epoch` (its random offset, if any)."""
        epoch = check_int(epoch, "epoch", minimum=0)
        if epoch == self.epoch:
            return
        self.offset = 0
        if self.random_offset:
            rng = np.random.default_rng([self.seed, epoch])
            self.offset = int(rng.integers(self.sequence_length))
        x, y = bptt_batches(self.token_ids[self.offset :], self.batch_size, self.sequence_length)
        rows = self.num_windows * self.batch_size
        self.x, self.y, self.epoch = x[:rows], y[:rows], epoch

    @property
    def tokens_per_epoch(self):
        """Target tokens trained on in one epoch."""
        return self.num_windows * self.batch_size * self.sequence_length

    def __len__(self):
        return self.num_windows

    def __getitem__(self, index):
        if not 0 <= index < self.num_windows:
            raise IndexError(f"Batch {index} out of range: there are {self.num_windows}.")
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[rows], self.y[rows]


class ResetStates(keras.callbacks.Callback):
    """Zeros a stateful model's carried states as each epoch begins and before evaluation.

    Every epoch then starts from the same (zero) state, the one a run resumed
    at an epoch boundary starts from, and `fit(validation_data=...)` neither
    sees the training state nor leaves its own behind for the next epoch.
    The model needs a `reset_states()` method (`kzoo.models.LanguageModel`).
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.model.reset_states()

    def on_test_begin(self, logs=None):
        self.model.reset_states()


class StreamScore(EpochMetric):
    """The exact perplexity (or bits per token) of a held-out stream, each epoch.

    Scores every token of `token_ids` with `LanguageModel.evaluate_stream`
    (state carried across the stream, no dropout) and puts the chosen
    quantity into the logs as `name`, where `BestModel`, `EarlyStopping`,
    `ReduceLROnPlateau` and the CSV log see it. Lower is better (`mode="min"`).

    Args:
        token_ids: 1-D int array, e.g. the validation stream.
        name: the log key (default `"val_perplexity"`).
        quantity: `"perplexity"`, `"bits_per_token"` or `"loss"` (nats per token).
        batch_size: parallel contiguous parts of the stream (1 scores every token).
        sequence_length: tokens per compiled call (memory and speed only).
        start_token_id: optional context of the first token (PTB: `<eos>`).
        every: score at epochs 0, every, 2*every, ... and the last.

    Attributes:
        result: the whole `evaluate_stream` dict of the last scoring.

    Example:

    >>> score = StreamScore(valid_ids, start_token_id=eos)
    >>> callbacks, backup = training_callbacks(run, "val_perplexity", "min", metrics=[score])
    """

    QUANTITIES = ("perplexity", "bits_per_token", "loss")

    def __init__(
        self,
        token_ids,
        name="val_perplexity",
        quantity="perplexity",
        batch_size=1,
        sequence_length=256,
        start_token_id=None,
        every=1,
    ):
        self.quantity = check_choice(quantity, self.QUANTITIES, "quantity")
        self.token_ids = np.asarray(token_ids)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.sequence_length = check_int(sequence_length, "sequence_length", minimum=1)
        self.start_token_id = start_token_id
        self.result = None
        super().__init__(name, self._score, every=every)

    def evaluate(self, model):
        """The whole `evaluate_stream` dict of `model` on the stream (also kept as `result`)."""
        self.result = model.evaluate_stream(
            self.token_ids,
            batch_size=self.batch_size,
            sequence_length=self.sequence_length,
            start_token_id=self.start_token_id,
        )
        return self.result

    def _score(self, model):
        return self.evaluate(model)[self.quantity]


class TokenThroughput(keras.callbacks.Callback):
    """Measures training tokens per second, epoch by epoch, across resumed runs.

    An epoch's time runs from its start to its end before the callbacks after
    this one (put it first, so validation scoring is not counted); the first
    epoch of a process includes the compilation. With `path`, every epoch's
    measurement is also written to that JSON file (atomically) and, with
    `resume`, the file's earlier epochs are read back, so a run that spans
    several processes reports all its epochs (an epoch trained again after a
    kill counts once, with its last time).

    Args:
        tokens_per_batch: target tokens in one training batch
            (`batch_size * sequence_length`).
        path: optional JSON file that keeps the measurements.
        resume: whether the measurements already in `path` are continued.

    Attributes:
        epochs: list of `(epoch, seconds, tokens)`, sorted by epoch.
    """

    def __init__(self, tokens_per_batch, path=None, resume=False):
        super().__init__()
        self.tokens_per_batch = check_int(tokens_per_batch, "tokens_per_batch", minimum=1)
        self.path = path
        self._by_epoch = {}
        if path is not None and resume and os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                stored = json.load(f)["epochs"]
            self._by_epoch = {int(e): (int(e), float(s), int(t)) for e, s, t in stored}

    @property
    def epochs(self):
        return [self._by_epoch[e] for e in sorted(self._by_epoch)]

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._batches = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        self._by_epoch[epoch] = (epoch, seconds, self._batches * self.tokens_per_batch)
        if self.path is not None:
            atomic_write.write_json(self.path, {"epochs": [list(e) for e in self.epochs]})

    def summary(self):
        """`{"train_seconds", "train_tokens", "tokens_per_second", ...}` of the measured epochs."""
        epochs = self.epochs
        seconds = sum(s for _, s, _ in epochs)
        tokens = sum(t for _, _, t in epochs)
        summary = {
            "epochs_trained": len(epochs),
            "train_seconds": round(seconds, 2),
            "train_tokens": tokens,
            "tokens_per_second": round(tokens / seconds, 1) if seconds else None,
        }
        if len(epochs) > 1:  # without the first epoch's compilation
            rest = epochs[1:]
            summary["tokens_per_second_after_first_epoch"] = round(
                sum(t for _, _, t in rest) / sum(s for _, s, _ in rest), 1
            )
        return summary


def fit_language_model(model, train, run, score, epochs, patience, resume, callbacks=()):
    """Trains a stateful language model with `fit`, resumably; loads its best epoch.

    The recipe convention's training step for truncated BPTT: the callbacks of
    `training_callbacks` (monitoring `score`, lower is better) and `fit` on
    the windows with the states reset each epoch, resumed from the run's
    backup when there is one (`fit_resumable`); at the end the model holds
    the weights of its best epoch (`best.keras`).

    Args:
        model: a compiled stateful `kzoo.models.LanguageModel` whose batch
            size is `train.batch_size`.
        train: the `BPTTWindows` of the training stream.
        run: the `kzoo.recipes.RunFolder`.
        score: the `StreamScore` that picks the best epoch.
        epochs: the number of epochs.
        patience: epochs without a better score before stopping.
        resume: whether a backup in the run folder is continued.
        callbacks: more callbacks for `fit` (e.g. a learning-rate schedule
            from the epoch); they run before the score is computed and must
            keep no state across epochs of their own.

    Returns:
        `(best, throughput)`: the `BestModel` callback (`best.best_epoch`,
        0-based) and the `TokenThroughput` of the run's epochs (kept in
        `throughput.json`, so a resumed run reports the earlier processes' too).
    """
    throughput = TokenThroughput(
        train.batch_size * train.sequence_length, path=run.file("throughput.json"), resume=resume
    )
    kept, backup = training_callbacks(
        run,
        monitor=score.name,
        mode="min",
        patience=patience,
        metrics=[score],
        datasets=[train],
        resume=resume,
    )
    fit_resumable(
        model,
        train,
        backup=backup,
        epochs=epochs,
        callbacks=[throughput, ResetStates(), *callbacks, *kept],
    )
    best = next(c for c in kept if isinstance(c, BestModel))
    if best.best_epoch is None:
        raise RuntimeError(
            f"No epoch gave a finite {score.name} (the loss diverged?), so there is no best "
            "model to load. Lower the learning rate or the gradient clip norm."
        )
    model.load_weights(best.path)
    return best, throughput


def write_outputs(
    run, model, metrics, throughput, samples, card, publish_as, save_dtype="auto", score_file=None
):
    """Writes a language-model run's files into `run`; with `publish_as`, copies two of them.

    Writes `model.keras` (a stateless copy, any batch size; float16 weights
    above 10 MB with `save_dtype="auto"`), `metrics.json`, `timings.json`
    (tokens/s), `samples.md` and `model_card.md`, and lists `best.keras` and
    `log.csv`.

    Args:
        run: the `kzoo.recipes.RunFolder`.
        model: the trained `kzoo.models.LanguageModel`.
        metrics: the final metrics (a dict, deterministic for a seed).
        throughput: the `TokenThroughput` of the training.
        samples: Markdown text of the samples (`format_samples`).
        card: function `(metrics, dtype) -> text` of the model card, called
            last, with the stored weights dtype.
        publish_as: None, or the stem of the published names:
            `saved_models/<stem>.keras` and `saved_models/<stem>.md`.
        save_dtype: `"auto"`, `"float32"` or `"float16"`.
        score_file: optional function `(path, dtype) -> dict` of metrics of
            the saved file (e.g. the test perplexity with float16 weights),
            added to `metrics`.

    Returns:
        The metrics written.
    """
    dtype = model.save_stateless(run.file("model.keras"), save_dtype)
    run.record("model.keras")
    if score_file is not None:
        metrics = {**metrics, **score_file(run.file("model.keras"), dtype)}
    run.write_json("metrics.json", metrics)
    run.write_json("timings.json", throughput.summary())
    run.write_text("samples.md", samples + "\n")
    run.write_text("model_card.md", card(metrics, dtype))
    for name in ("best.keras", "log.csv"):
        run.record(name)
    if publish_as is not None:
        run.publish(
            ["model.keras", "model_card.md"],
            "saved_models",
            rename={"model.keras": f"{publish_as}.keras", "model_card.md": f"{publish_as}.md"},
        )
    return metrics


def sample_texts(model, prompt, temperatures, max_length, seed):
    """Text sampled from `model` at each temperature: a list of `(temperature, text)`.

    Args:
        model: a `kzoo.models.LanguageModel` with a vocabulary.
        prompt: the text to continue.
        temperatures: floats > 0 (below 1: safer, above: more varied).
        max_length: tokens in each result, the prompt's included.
        seed: int seed of the sampler (the same seed gives the same text).
    """
    return [
        (
            float(t),
            model.generate(
                prompt, max_length=max_length, sampler="random", temperature=t, seed=seed
            ),
        )
        for t in temperatures
    ]


def format_samples(samples, prompt):
    """The samples of `sample_texts` as Markdown, one fenced block per temperature."""
    blocks = [
        f"Temperature {t:g} (prompt {prompt!r}):\n\n```\n{text.strip()}\n```" for t, text in samples
    ]
    return "\n\n".join(blocks)


def training_section(settings, model, dtype, throughput):
    """The `## Training` section of a card: settings, backend, hardware, time, parameters."""
    timings = throughput.summary()
    return (
        f"- Settings: `{dataclasses.asdict(settings)}`\n"
        f"- Backend: {keras.backend.backend()}; hardware: {os.cpu_count()} CPU cores; "
        f"training time measured over {timings['epochs_trained']} epoch(s) (all processes of "
        f"the run): {timings['train_seconds']:.0f} s, {timings['tokens_per_second']} tokens/s\n"
        f"- Parameters: {model.count_params():,}; weights stored as {dtype}"
    )


def model_card(title, summary, **sections):
    """A model card in Markdown with kzoo's five sections, in their order.

    Args:
        title: the model's name (the `#` heading).
        summary: a paragraph under the title (what the model is).
        **sections: the body of each section, keyed `intended_use`,
            `limitations`, `data` (with a line starting `Licence:`), `metrics`
            (with the command that produced them) and `training`; all five are
            required, no others are accepted.

    Returns:
        The card's text.
    """
    keys = [s.lower().replace(" ", "_") for s in CARD_SECTIONS]
    missing = [k for k in keys if not sections.get(k)]
    unknown = sorted(set(sections) - set(keys))
    if missing or unknown:
        raise ValueError(
            f"A model card needs exactly the sections {keys}. Missing or empty: {missing}; "
            f"unknown: {unknown}."
        )
    if "Licence:" not in sections["data"]:
        raise ValueError("The `data` section of a model card needs a line starting 'Licence:'.")
    parts = [f"# {title}", summary.strip()]
    for heading, key in zip(CARD_SECTIONS, keys):
        parts.append(f"## {heading}\n\n{sections[key].strip()}")
    return "\n\n".join(parts) + "\n"
