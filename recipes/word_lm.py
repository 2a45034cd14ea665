"""Word-level LSTM language model on Penn Treebank (Zaremba et al., 2014; AWD-LSTM pieces).

Trains `kzoo.models.LanguageModel` on Mikolov's PTB (10k words) with
truncated backpropagation through time: the training stream is read as
`batch_size` parallel rows and the LSTM state is carried from one window to
the next (`kzoo.recipes.language_modeling`). After each epoch it scores the
whole validation stream; the best epoch's model is scored on the test
stream. Perplexity = exp(mean cross-entropy over every token of a split,
`<eos>` included), each split scored as one stream with the state carried
(the first token's context is an `<eos>`, the end of the previous sentence).
A killed run continues where it stopped when the same command is run again.

    python recipes/word_lm.py                        # "small" (~30-60 min on 2 cores)
    python recipes/word_lm.py --tie-weights true     # the shipped word_lm_ptb_small
    python recipes/word_lm.py --config awd-small     # "small" with AWD-LSTM regularisation
    python recipes/word_lm.py --config medium        # Zaremba's medium (GPU users)
    python recipes/word_lm.py --quick                # smoke run, about a minute
    python recipes/word_lm.py --publish              # also copy into saved_models/

`--config` picks a column of CONFIGS; a setting given with its own flag or
`--set` wins over the column. Select the backend with KERAS_BACKEND; set
KZOO_DATA_DIR=/path/to/shared/data to work offline. Writes into
runs/word_lm/<backend>[-quick]-seed<seed>/: model.keras (stateless, any batch
size), best.keras, model_card.md, samples.md, metrics.json (validation and
test perplexity), timings.json (tokens/s), log.csv and backup/. `--publish`
copies the model and card to saved_models/word_lm_ptb_<config>.{keras,md}.

Zaremba et al. minimise the loss summed over the window with SGD at learning
rate 1 and clip the gradient norm at 5; Keras averages over the window, so the
same updates are learning rate 1 * T and clip norm 5 / T (T = window length):
the "small" column's 20 and 0.25, close to AWD-LSTM's 30 and 0.25.
"""

import dataclasses
import functools

import keras

from kzoo.datasets import ptb
from kzoo.models import LanguageModel
from kzoo.recipes import command_line, parse_settings, setting, start_run
from kzoo.recipes import language_modeling as lm

# Zaremba et al. (2014) Table 1 ("small": test perplexity 114.5 without
# dropout; "medium": 82.7; the shipped model is "small" with --tie-weights true),
# and "awd-small": the 2x200 tied network (the shipped 2,667,600 parameters) with
# the regularisation of Merity et al. (2018) (their PTB rates are for 3 layers
# of 1150 units; halved here for 200 units), their window of 70 tokens moved by
# a random offset each epoch, their learning rate 30 and clip norm 0.25.
CONFIGS = {
    "small": dict(units=200, tie_weights=False, dropout=0.0, batch_size=20, sequence_length=20,
                  random_offset=False, epochs=13, learning_rate=20.0, lr_decay=0.5,
                  decay_after=4, clipnorm=0.25, hidden_dropout=0.0, variational_dropout=False,
                  weight_drop=0.0, embedding_dropout=0.0,
                  activation_regularization=0.0, temporal_activation_regularization=0.0),
    "medium": dict(units=650, tie_weights=False, dropout=0.5, batch_size=20, sequence_length=35,
                   random_offset=False, epochs=39, learning_rate=35.0, lr_decay=0.8,
                   decay_after=6, clipnorm=5 / 35, hidden_dropout=0.5,
                   variational_dropout=False, weight_drop=0.0, embedding_dropout=0.0,
                   activation_regularization=0.0, temporal_activation_regularization=0.0),
    "awd-small": dict(units=200, tie_weights=True, dropout=0.2, batch_size=20,
                      sequence_length=70, random_offset=True, epochs=40, learning_rate=30.0,
                      lr_decay=0.8, decay_after=20, clipnorm=0.25, hidden_dropout=0.125,
                      variational_dropout=True, weight_drop=0.25,
                      embedding_dropout=0.05, activation_regularization=2.0,
                      temporal_activation_regularization=1.0),
}  # fmt: skip


def from_config(key, text):
    """A setting's metadata: its help lists each configuration's value (`None` takes it)."""
    values = ", ".join(
        f"{name} {str(v).lower() if isinstance(v, bool) else f'{v:g}'}"
        for name, v in ((name, column[key]) for name, column in CONFIGS.items())
    )
    return {"help": f"{text}; none: the --config's ({values})", "min": 0}


@dataclasses.dataclass(frozen=True)
class Settings:
    config: str = setting("small", "a column of CONFIGS", choices=tuple(CONFIGS))
    units: int | None = dataclasses.field(
        default=None, metadata=from_config("units", "units per layer and embedding size")
    )
    tie_weights: bool | None = dataclasses.field(
        default=None, metadata=from_config("tie_weights", "share the embedding and output matrices")
    )
    dropout: float | None = dataclasses.field(
        default=None, metadata=from_config("dropout", "on the embeddings and the output")
    )
    hidden_dropout: float | None = dataclasses.field(
        default=None, metadata=from_config("hidden_dropout", "between the LSTM layers")
    )
    variational_dropout: bool | None = dataclasses.field(
        default=None, metadata=from_config("variational_dropout", "one dropout mask per sequence")
    )
    weight_drop: float | None = dataclasses.field(
        default=None, metadata=from_config("weight_drop", "DropConnect on the recurrent kernels")
    )
    embedding_dropout: float | None = dataclasses.field(
        default=None, metadata=from_config("embedding_dropout", "drop whole word types")
    )
    activation_regularization: float | None = dataclasses.field(
        default=None, metadata=from_config("activation_regularization", "AR alpha")
    )
    temporal_activation_regularization: float | None = dataclasses.field(
        default=None, metadata=from_config("temporal_activation_regularization", "TAR beta")
    )
    batch_size: int | None = dataclasses.field(
        default=None, metadata=from_config("batch_size", "parallel rows of the stream")
    )
    sequence_length: int | None = dataclasses.field(
        default=None, metadata=from_config("sequence_length", "BPTT window (tokens)")
    )
    random_offset: bool | None = dataclasses.field(
        default=None,
        metadata=from_config("random_offset", "move the windows by a random offset each epoch"),
    )
    epochs: int | None = dataclasses.field(default=None, metadata=from_config("epochs", "epochs"))
    learning_rate: float | None = dataclasses.field(
        default=None, metadata=from_config("learning_rate", "SGD learning rate on the mean loss")
    )
    lr_decay: float | None = dataclasses.field(
        default=None,
        metadata=from_config("lr_decay", "learning-rate factor per epoch after decay_after"),
    )
    decay_after: int | None = dataclasses.field(
        default=None, metadata=from_config("decay_after", "epochs at the full learning rate")
    )
    clipnorm: float | None = dataclasses.field(
        default=None, metadata=from_config("clipnorm", "global gradient norm clip")
    )
    num_layers: int = setting(2, "stacked LSTM layers", min=1)
    softmax: str = setting(
        "full",
        "sampled: train on a sampled softmax (faster; exact scores in evaluation)",
        choices=("full", "sampled"),
    )
    num_sampled: int = setting(1024, "candidates per batch with softmax=sampled", min=1)
    patience: int = setting(3, "epochs without a better validation perplexity", min=1)
    train_tokens: int | None = setting(None, "use the first N training tokens (none: all)", min=100)
    eval_tokens: int | None = setting(
        None, "score the first N valid/test tokens (none: all)", min=2
    )
    save_dtype: str = setting(
        "auto", "auto: float16 above 10 MB", choices=("auto", "float32", "float16")
    )
    sample_length: int = setting(30, "words per sample", min=1)
    temperatures: tuple[float, ...] = setting((0.7, 1.0), "a sample at each temperature", min=0.01)


QUICK = {
    "units": 64,
    "batch_size": 16,
    "sequence_length": 20,
    "epochs": 3,
    "train_tokens": 24_000,
    "eval_tokens": 2_000,
    "sample_length": 15,
}
PROMPT = "the company said"


def main(argv=None):
    settings, options = parse_settings(
        Settings, QUICK, argv=argv, recipe="word_lm", description=__doc__
    )
    run = start_run(options)
    settings = resolve(settings)
    train_ids, valid_ids, test_ids, vocabulary = load_splits(settings)
    eos = vocabulary.index(ptb.EOS)
    model = build_model(settings, vocabulary, options.seed)
    compile_model(model, settings)
    train = lm.BPTTWindows(
        train_ids,
        settings.batch_size,
        settings.sequence_length,
        seed=options.seed,
        random_offset=settings.random_offset,
    )
    print(
        f"PTB, config {settings.config!r}: {len(train_ids):,} training tokens, vocabulary "
        f"{len(vocabulary)}, {model.count_params():,} parameters, {len(train)} steps per epoch"
    )
    validation = lm.StreamScore(valid_ids, sequence_length=500, start_token_id=eos)
    best, throughput = lm.fit_language_model(
        model,
        train,
        run,
        validation,
        settings.epochs,
        settings.patience,
        options.resume,
        callbacks=[learning_rate_schedule(settings)],
    )
    metrics = evaluate(model, validation, test_ids, eos, best)
    samples = lm.sample_texts(
        model,
        PROMPT,
        settings.temperatures,
        len(PROMPT.split()) + settings.sample_length,
        options.seed,
    )
    samples = lm.format_samples(samples, PROMPT)
    print(samples)
    metrics = lm.write_outputs(
        run,
        model,
        metrics,
        throughput,
        samples,
        card=functools.partial(model_card, model, settings, samples, throughput, argv),
        publish_as=f"word_lm_ptb_{settings.config.replace('-', '_')}" if options.publish else None,
        save_dtype=settings.save_dtype,
        score_file=lambda path, dtype: score_float16_file(path, dtype, test_ids, eos),
    )
    print(
        f"Perplexity: validation {metrics['valid_perplexity']:.2f}, test "
        f"{metrics['test_perplexity']:.2f} (uniform: {metrics['uniform_perplexity']:.0f}), "
        f"best epoch {metrics['best_epoch']}"
    )
    print(run.summary())
    return metrics


def resolve(settings):
    """The settings with every `None` replaced by the `--config` column's value."""
    column = CONFIGS[settings.config]
    return dataclasses.replace(
        settings, **{k: v for k, v in column.items() if getattr(settings, k) is None}
    )


def load_splits(settings):
    train_ids, valid_ids, test_ids, vocabulary = ptb.load_data()
    if settings.train_tokens is not None:
        train_ids = train_ids[: settings.train_tokens]
    if settings.eval_tokens is not None:
        valid_ids, test_ids = valid_ids[: settings.eval_tokens], test_ids[: settings.eval_tokens]
    return train_ids, valid_ids, test_ids, vocabulary


def build_model(settings, vocabulary, seed):
    # AWD-LSTM's arguments are passed only when used, so that the other
    # configurations build models with the config of the shipped file.
    awd = {
        "variational_dropout": settings.variational_dropout,
        "recurrent_weight_dropout": settings.weight_drop,
        "embedding_dropout": settings.embedding_dropout,
        "activation_regularization": settings.activation_regularization,
        "temporal_activation_regularization": settings.temporal_activation_regularization,
    }
    awd = {k: v for k, v in awd.items() if v}
    if settings.hidden_dropout != settings.dropout:
        awd["hidden_dropout"] = settings.hidden_dropout
    if settings.softmax == "sampled":
        awd.update(softmax="sampled", num_sampled=settings.num_sampled)
    return LanguageModel(
        vocabulary=vocabulary,
        token_level="word",
        embedding_dim=settings.units,
        units=settings.units,
        num_layers=settings.num_layers,
        dropout=settings.dropout,
        tie_weights=settings.tie_weights,
        stateful=True,
        batch_size=settings.batch_size,
        seed=seed,
        name=f"word_lm_ptb_{settings.config.replace('-', '_')}",
        **awd,
    )


def compile_model(model, settings):
    model.compile(
        optimizer=keras.optimizers.SGD(settings.learning_rate, global_clipnorm=settings.clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )


def learning_rate_schedule(settings):
    """The learning rate times `lr_decay` per epoch after `decay_after`, from the epoch."""

    def rate(epoch):  # from 0; Zaremba's epochs count from 1
        return settings.learning_rate * settings.lr_decay ** max(
            epoch + 1 - settings.decay_after, 0
        )

    return keras.callbacks.LearningRateScheduler(rate)


def evaluate(model, validation, test_ids, eos, best):
    """The best model's validation and test perplexity (every token, state carried)."""
    valid = validation.evaluate(model)
    test = model.evaluate_stream(test_ids, sequence_length=500, start_token_id=eos)
    return {
        "valid_perplexity": valid["perplexity"],
        "test_perplexity": test["perplexity"],
        "valid_tokens": valid["tokens"],
        "test_tokens": test["tokens"],
        "best_epoch": best.best_epoch + 1,
        "uniform_perplexity": float(model.vocabulary_size),
    }


def score_float16_file(path, dtype, test_ids, eos):
    """What storing float16 weights costs: the saved file's test perplexity (float16 only)."""
    if dtype != "float16":
        return {}
    saved = keras.saving.load_model(path, compile=False)
    test = saved.evaluate_stream(test_ids, sequence_length=500, start_token_id=eos)
    return {"saved_file_test_perplexity": test["perplexity"]}


def model_card(model, settings, samples, throughput, argv, metrics, dtype):
    command = command_line("word_lm", argv)
    saved = metrics.get("saved_file_test_perplexity")
    saved = f"; the saved float16 file gives {saved:.2f}" if saved is not None else ""
    return lm.model_card(
        model.name,
        f"Word-level {settings.num_layers}x{settings.units} LSTM language model "
        f"(`kzoo.models.LanguageModel`) trained by `recipes/word_lm.py` on Penn Treebank, "
        f"configuration {settings.config!r}.",
        intended_use="Scoring and generating lower-cased, tokenised newswire text in PTB's "
        "10k-word vocabulary, and a reproducible benchmark of recurrent language modelling.",
        limitations="PTB's vocabulary only (other words are `<unk>`, numbers `N`), no "
        "punctuation or case; 1989 Wall Street Journal text and its biases; a small model "
        "far from the state of the art (Zaremba et al.'s small: 114.5 test perplexity).",
        data="Mikolov's preprocessed Penn Treebank (`kzoo.datasets.ptb`): 929,589 training, "
        "73,760 validation and 82,430 test tokens with `<eos>`; the standard splits.\n\n"
        "Licence: the Penn Treebank is LDC-licensed (LDC99T42); Mikolov's preprocessed "
        "version is redistributed for research use.",
        metrics=f"- Validation perplexity: **{metrics['valid_perplexity']:.2f}** "
        f"({metrics['valid_tokens']:,} tokens)\n- Test perplexity: "
        f"**{metrics['test_perplexity']:.2f}** ({metrics['test_tokens']:,} tokens, every token "
        f"including `<eos>`, one stream with the state carried){saved}\n"
        f"- Best epoch: {metrics['best_epoch']}\n- Command: `{command}`\n\n"
        f"Samples:\n\n{samples}",
        training=lm.training_section(settings, model, dtype, throughput),
    )


if __name__ == "__main__":
    main()
