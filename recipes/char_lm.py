"""Character-level LSTM language model on Tiny Shakespeare (or Nietzsche).

Trains `kzoo.models.LanguageModel` on next-character prediction with
truncated backpropagation through time: the text is read as `batch_size`
parallel rows and the LSTM state is carried from one window to the next
(`kzoo.recipes.language_modeling`). After each epoch it scores the whole
validation text (the last `valid_fraction` of the corpus) in bits per
character; the best epoch's model is kept, sampled at several temperatures,
and saved with a model card. A killed run continues where it stopped when
the same command is run again.

    python recipes/char_lm.py                        # full run (~50 min on 2 cores)
    python recipes/char_lm.py --corpus nietzsche
    python recipes/char_lm.py --quick                # smoke run, about a minute
    python recipes/char_lm.py --publish              # also copy into saved_models/

Select the backend with KERAS_BACKEND (tensorflow, jax or torch); set
KZOO_DATA_DIR=/path/to/shared/data to work offline. Writes into
runs/char_lm/<backend>[-quick]-seed<seed>/: model.keras (stateless, any batch
size), best.keras, model_card.md, samples.md, metrics.json (validation
bits/char), timings.json (tokens/s), log.csv and backup/. `--publish` copies
the model and card to saved_models/char_lm_<corpus>.{keras,md}.
"""

import dataclasses
import functools
import math

import keras
import numpy as np

from kzoo.datasets.text_corpora import load_text
from kzoo.models import LanguageModel
from kzoo.models.language_model import LanguageModelPreprocessor
from kzoo.recipes import command_line, marked_settings, parse_settings, setting, start_run
from kzoo.recipes import language_modeling as lm


@dataclasses.dataclass(frozen=True)
class Settings:
    corpus: str = setting(
        "tinyshakespeare", "the text to learn", choices=("tinyshakespeare", "nietzsche")
    )
    max_chars: int | None = setting(None, "use the first N characters only (none: all)", min=100)
    valid_fraction: float = setting(0.1, "the last part of the text held out", min=0.01, max=0.5)
    embedding_dim: int = setting(64, "size of the character embeddings", model=True, min=1)
    units: int = setting(512, "units per layer", model=True, min=1)
    num_layers: int = setting(2, "stacked recurrent layers", model=True, min=1)
    cell_type: str = setting("lstm", "recurrent cell", model=True, choices=("lstm", "gru"))
    dropout: float = setting(
        0.25, "on the embeddings, between layers and the output", model=True, min=0.0, max=0.95
    )
    batch_size: int = setting(64, "parallel rows of the text", model=True, min=1)
    sequence_length: int = setting(100, "BPTT window (characters)", min=1)
    random_offset: bool = setting(False, "move the windows by a random offset each epoch")
    epochs: int = setting(25, "passes over the training text", min=1)
    learning_rate: float = setting(2e-3, "Adam, cosine-decayed to 10%", min=0.0)
    clipnorm: float = setting(5.0, "global gradient norm clip", min=0.0)
    patience: int = setting(3, "epochs without a better validation score", min=1)
    valid_batch_size: int = setting(32, "contiguous parts of the validation text", min=1)
    sample_length: int = setting(300, "characters per sample", min=1)
    temperatures: tuple[float, ...] = setting(
        (0.5, 0.8, 1.0), "a sample at each temperature", min=0.01
    )


QUICK = {
    "max_chars": 60_000,
    "embedding_dim": 16,
    "units": 128,
    "dropout": 0.0,
    "batch_size": 16,
    "sequence_length": 50,
    "epochs": 4,
    "learning_rate": 5e-3,
    "valid_batch_size": 4,
    "sample_length": 80,
}
PROMPT = "\n"


def main(argv=None):
    settings, options = parse_settings(
        Settings, QUICK, argv=argv, recipe="char_lm", description=__doc__
    )
    run = start_run(options)
    train_ids, valid_ids, vocabulary = load_corpus(settings)
    model = build_model(settings, vocabulary, options.seed)
    train = lm.BPTTWindows(
        train_ids,
        settings.batch_size,
        settings.sequence_length,
        seed=options.seed,
        random_offset=settings.random_offset,
    )
    schedule = keras.optimizers.schedules.CosineDecay(
        settings.learning_rate, decay_steps=len(train) * settings.epochs, alpha=0.1
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule, global_clipnorm=settings.clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    print(
        f"{settings.corpus}: {len(train_ids):,} training and {len(valid_ids):,} validation "
        f"characters, vocabulary {len(vocabulary)}, {model.count_params():,} parameters, "
        f"{len(train)} steps per epoch"
    )
    validation = validation_score(valid_ids, settings)
    best, throughput = lm.fit_language_model(
        model, train, run, validation, settings.epochs, settings.patience, options.resume
    )
    metrics = evaluate(model, validation, best)
    samples = lm.sample_texts(
        model, PROMPT, settings.temperatures, settings.sample_length, options.seed
    )
    samples = lm.format_samples(samples, PROMPT)
    print(samples)
    card = functools.partial(model_card, model, settings, samples, throughput, argv)
    publish_as = f"char_lm_{settings.corpus}" if options.publish else None
    lm.write_outputs(run, model, metrics, throughput, samples, card, publish_as)
    print(
        f"Validation: {metrics['valid_bits_per_char']:.4f} bits/char "
        f"(uniform: {metrics['uniform_bits_per_char']:.2f}), best epoch {metrics['best_epoch']}"
    )
    print(run.summary())
    return metrics


def load_corpus(settings):
    """`(train_ids, valid_ids, vocabulary)`: the text split at `1 - valid_fraction`."""
    text = load_text(settings.corpus)
    if settings.max_chars is not None:
        text = text[: settings.max_chars]
    vocabulary = sorted(set(text))
    ids = np.asarray(LanguageModelPreprocessor(vocabulary).encode(text), dtype="int32")
    split = int(len(ids) * (1 - settings.valid_fraction))
    return ids[:split], ids[split:], vocabulary


def build_model(settings, vocabulary, seed):
    return LanguageModel(
        vocabulary=vocabulary,
        token_level="character",
        stateful=True,
        seed=seed,
        name=f"char_lm_{settings.corpus}",
        **marked_settings(settings, "model"),
    )


def validation_score(valid_ids, settings):
    return lm.StreamScore(
        valid_ids,
        name="val_bits_per_char",
        quantity="bits_per_token",
        batch_size=min(settings.valid_batch_size, len(valid_ids) - 1),
    )


def evaluate(model, validation, best):
    """The final metrics: the best model's score on the whole validation text."""
    result = validation.evaluate(model)
    return {
        "valid_bits_per_char": result["bits_per_token"],
        "valid_nats_per_char": result["loss"],
        "valid_characters": result["tokens"],
        "best_epoch": best.best_epoch + 1,
        "vocabulary_size": model.vocabulary_size,
        "uniform_bits_per_char": math.log2(model.vocabulary_size),
    }


def model_card(model, settings, samples, throughput, argv, metrics, dtype):
    command = command_line("char_lm", argv)
    return lm.model_card(
        model.name,
        f"Character-level {settings.num_layers}x{settings.units} {settings.cell_type.upper()} "
        f"language model (`kzoo.models.LanguageModel`) trained by `recipes/char_lm.py` "
        f"on {settings.corpus}.",
        intended_use="Generating text in the style of the corpus, and as a small, "
        "reproducible example of stateful truncated-BPTT training in Keras.",
        limitations="A character model with a short memory: it spells and formats like "
        "the corpus but does not keep a plot or a meaning. The validation text (the end of "
        "the corpus) also chose the best epoch, so its score is slightly optimistic.",
        data=f"`{settings.corpus}` from `kzoo.datasets.text_corpora`; the last "
        f"{settings.valid_fraction:.0%} of the text is the validation split.\n\n"
        "Licence: public domain (Shakespeare's plays; the Nietzsche translations are Project "
        "Gutenberg texts).",
        metrics=f"- Validation: **{metrics['valid_bits_per_char']:.4f} bits/char** "
        f"({metrics['valid_nats_per_char']:.4f} nats/char, {metrics['valid_characters']:,} "
        f"characters in {settings.valid_batch_size} contiguous parts, state carried within "
        f"each); uniform: {metrics['uniform_bits_per_char']:.2f} bits/char\n"
        f"- Best epoch: {metrics['best_epoch']}\n- Command: `{command}`\n\n"
        f"Samples:\n\n{samples}",
        training=lm.training_section(settings, model, dtype, throughput),
    )


if __name__ == "__main__":
    main()
