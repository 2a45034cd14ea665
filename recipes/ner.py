"""Named-entity recognition on CoNLL-2003 (English, IOB2) with a BiLSTM-CRF.

Trains `kzoo.models.SequenceTagger` (word embeddings learned from scratch, a
character CNN, casing features, a BiLSTM and a CRF) on the train split with
`fit`, measures the entity F1 on the validation split after every epoch
(exact span and type, as the CoNLL-2003 evaluation; `kzoo.metrics.entity_f1`),
keeps the model of the best epoch, stops after `patience` epochs without a
better F1, and reports entity precision / recall / F1 on the test split,
overall and per type.

    KZOO_DATA_DIR=/work/shared/data KERAS_BACKEND=jax python recipes/ner.py  # full run
    KERAS_BACKEND=torch python recipes/ner.py --quick       # smoke run, about a minute
    python recipes/ner.py --decoder softmax                 # per-token softmax, no CRF
    python recipes/ner.py --publish                         # also copy to saved_models/

Writes into `runs/ner/<backend>[-quick]-seed<seed>/` (or `--output-dir`):
`model.keras` (the tagger of the best epoch with its vocabularies:
`kzoo.models.load(path).tag(["EU rejects German call."])` tags raw text),
`best.keras`, `metrics.json` (final scores), `timings.json`, `log.csv`
(per epoch), `model_card.md`, and `backup/` (to resume an interrupted run:
run the same command again). `--publish` copies the model and card to
`saved_models/ner_<decoder>.{keras,md}`.
"""

import dataclasses
import time

import keras

from kzoo.datasets import conll2003
from kzoo.metrics import entity_f1
from kzoo.models import SequenceTagger
from kzoo.models.saving import save_compact
from kzoo.recipes import (
    BestModel,
    EpochMetric,
    command_line,
    fit_resumable,
    marked_settings,
    parse_settings,
    progress,
    setting,
    start_run,
    training_callbacks,
)

MODEL = {"model": True}  # metadata of the settings passed to SequenceTagger as they are


@dataclasses.dataclass(frozen=True)
class Settings:
    # The tagger (SequenceTagger and its backbone), by their argument names.
    decoder: str = setting("crf", "tag decoder", choices=("crf", "softmax"), **MODEL)
    word_dim: int = setting(100, "word embedding size", min=1, **MODEL)
    char_encoder: str | None = setting(
        "cnn", "character encoder (none: no character features)", choices=("cnn", "lstm"), **MODEL
    )
    char_dim: int = setting(30, "character embedding size", min=1, **MODEL)
    char_units: int = setting(50, "character CNN filters / LSTM units", min=1, **MODEL)
    max_word_length: int = setting(20, "characters kept per token", min=1, **MODEL)
    use_casing: bool = setting(True, "casing features", **MODEL)
    casing_dim: int = setting(8, "casing embedding size", min=1, **MODEL)
    lstm_units: int = setting(100, "BiLSTM units per direction", min=1, **MODEL)
    num_layers: int = setting(1, "BiLSTM layers", min=1, **MODEL)
    dropout: float = setting(
        0.5, "dropout on features and BiLSTM outputs", min=0, max=0.99, **MODEL
    )
    word_dropout: float = setting(
        0.1, "probability of replacing a training word by the unknown id", min=0, max=0.99, **MODEL
    )
    buckets: tuple[int, ...] = setting(
        (8, 16, 32, 64, 128), "padded sentence lengths (one compiled shape each)", **MODEL
    )
    # Data and vocabulary.
    min_count: int = setting(1, "training count a word needs to be in the vocabulary", min=1)
    max_tokens: int | None = setting(None, "keep sentences of at most this many tokens", min=1)
    train_sentences: int | None = setting(None, "training sentences used (none: all)", min=1)
    valid_sentences: int | None = setting(None, "validation sentences used (none: all)", min=1)
    test_sentences: int | None = setting(None, "test sentences used (none: all)", min=1)
    # Training.
    epochs: int = setting(40, "most epochs", min=1)
    patience: int | None = setting(
        8, "epochs without a better validation F1 before stopping", min=1
    )
    batch_size: int = setting(32, "sentences per batch", min=1)
    learning_rate: float = setting(2e-3, "Adam learning rate", min=0)
    clipnorm: float = setting(5.0, "gradient norm clipping", min=0)


QUICK = {
    "word_dim": 32,
    "char_dim": 16,
    "char_units": 16,
    "max_word_length": 12,
    "casing_dim": 4,
    "lstm_units": 32,
    "word_dropout": 0.0,
    "buckets": (32,),
    "max_tokens": 32,
    "train_sentences": 2000,
    "valid_sentences": 300,
    "test_sentences": 300,
    "epochs": 5,
    "batch_size": 32,
    "learning_rate": 1e-2,
}
SAMPLE = "EU rejects German call to boycott British lamb ."


def main(argv=None):
    settings, options = parse_settings(
        Settings, QUICK, argv=argv, recipe="ner", description=__doc__
    )
    run = start_run(options)
    data = load_data(settings)
    tagger = build_tagger(settings, data["train"][0], options.seed)
    train = tagger.batches(*data["train"], settings.batch_size, shuffle=True, seed=options.seed)
    f1 = EpochMetric("val_entity_f1", lambda model: scores(model, *data["valid"])["f1"])
    callbacks, backup = training_callbacks(
        run,
        monitor="val_entity_f1",
        mode="max",
        patience=settings.patience,
        metrics=[f1],
        datasets=[train],
        resume=options.resume,
    )
    started = time.perf_counter()
    fit_resumable(tagger, train, backup=backup, epochs=settings.epochs, callbacks=callbacks)
    train_seconds = time.perf_counter() - started
    tagger.load_weights(run.file("best.keras"))
    metrics, timings = evaluate(tagger, data, run)
    metrics["best_epoch"] = best_epoch(callbacks)
    timings["train_seconds_this_process"] = round(train_seconds, 1)
    write_outputs(argv, run, tagger, settings, options, metrics, timings)
    print(run.summary())
    return metrics


def load_data(settings):
    """`{split: (token lists, tag lists)}`, cut to the sizes in `settings`."""
    limits = {
        "train": settings.train_sentences,
        "valid": settings.valid_sentences,
        "test": settings.test_sentences,
    }
    data = {}
    for split in progress(conll2003.SPLITS, label="Loading CoNLL-2003", unit="splits"):
        sentences = conll2003.load_split(split)
        if settings.max_tokens is not None:
            sentences = [s for s in sentences if len(s.tokens) <= settings.max_tokens]
        sentences = sentences[: limits[split]]
        data[split] = ([s.tokens for s in sentences], [s.tags for s in sentences])
    sizes = ", ".join(f"{split} {len(tokens)}" for split, (tokens, _) in data.items())
    print(f"Sentences: {sizes}")
    return data


def build_tagger(settings, train_tokens, seed):
    """The compiled tagger, its vocabularies from the training sentences."""
    words, chars = SequenceTagger.build_vocabularies(train_tokens, min_count=settings.min_count)
    arguments = marked_settings(settings, "model")
    tagger = SequenceTagger(
        words, conll2003.TAGS, chars, seed=seed, name=f"ner_{settings.decoder}", **arguments
    )
    tagger.compile(keras.optimizers.Adam(settings.learning_rate, clipnorm=settings.clipnorm))
    print(
        f"Vocabulary: {len(words)} words, {len(chars)} characters; {tagger.count_params():,} parameters"
    )
    return tagger


def scores(tagger, tokens, tags, label=None):
    """Entity precision / recall / F1 (overall and per type) of the tagger's tags."""
    chunk = 256
    starts = range(0, len(tokens), chunk)
    if label is not None:
        starts = progress(starts, label=label, unit="batches")
    predicted = []
    for start in starts:
        predicted += tagger.predict(tokens[start : start + chunk], batch_size=64)
    return entity_f1(tags, predicted)


def best_epoch(callbacks):
    """The 1-based epoch of the best model (`BestModel.best_epoch` is 0-based)."""
    (best,) = [c for c in callbacks if isinstance(c, BestModel)]
    return best.best_epoch + 1


def evaluate(tagger, data, run):
    """Final scores of the best model (metrics.json) and their timings."""
    metrics, timings = {}, {}
    for split in ("valid", "test"):
        started = time.perf_counter()
        metrics[split] = scores(tagger, *data[split], label=f"Tagging the {split} sentences")
        timings[f"{split}_tagging_seconds"] = round(time.perf_counter() - started, 2)
    metrics["sentences"] = {split: len(tokens) for split, (tokens, _) in data.items()}
    metrics["epochs_run"] = len(run_log_rows(run))
    metrics["sample"] = {"sentence": SAMPLE, "tags": tagger.predict([SAMPLE])[0]}
    test = metrics["test"]
    print(
        f"Test entity scores: precision {test['precision']:.4f}, recall {test['recall']:.4f}, "
        f"F1 {test['f1']:.4f} (validation F1 {metrics['valid']['f1']:.4f})"
    )
    for entity_type, s in test["per_type"].items():
        print(f"  {entity_type:5s} P {s['precision']:.4f} R {s['recall']:.4f} F1 {s['f1']:.4f}")
    print(
        "Sample:", " ".join(f"{w}/{t}" for w, t in zip(SAMPLE.split(), metrics["sample"]["tags"]))
    )
    return metrics, timings


def run_log_rows(run):
    with open(run.file("log.csv"), encoding="utf-8") as f:
        return f.read().splitlines()[1:]


def write_outputs(argv, run, tagger, settings, options, metrics, timings):
    name = f"ner_{settings.decoder}"
    run.write_json("metrics.json", metrics)
    run.write_json("timings.json", timings)
    save_compact(tagger, run.file("model.keras"), "float32")
    for recorded in ("model.keras", "best.keras", "log.csv"):
        run.record(recorded)
    run.write_text(
        "model_card.md", model_card(argv, name, tagger, settings, options, metrics, timings)
    )
    if options.publish:
        run.publish(
            ["model.keras", "model_card.md"],
            "saved_models",
            rename={"model.keras": f"{name}.keras", "model_card.md": f"{name}.md"},
        )


def model_card(argv, name, tagger, settings, options, metrics, timings):
    """The model card, in the five sections every kzoo card has."""
    config = tagger.get_config()
    sentences = metrics["sentences"]
    backend = keras.backend.backend()
    command = command_line("ner", argv)
    rows = [
        f"| {split} (all) | {100 * metrics[split]['precision']:.2f} | "
        f"{100 * metrics[split]['recall']:.2f} | {100 * metrics[split]['f1']:.2f} | "
        f"{metrics[split]['support']} |"
        for split in ("valid", "test")
    ]
    rows += [
        f"| test {t} | {100 * s['precision']:.2f} | {100 * s['recall']:.2f} | "
        f"{100 * s['f1']:.2f} | {s['support']} |"
        for t, s in metrics["test"]["per_type"].items()
    ]
    settings_text = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(settings).items())
    return "\n".join(
        [
            f"# {name}",
            "",
            f"`kzoo.models.SequenceTagger` (decoder `{config['decoder']}`, "
            f"{config['num_layers']} x BiLSTM({config['lstm_units']}), character encoder "
            f"{config['char_encoder']}, casing features {config['use_casing']}; "
            f"{tagger.count_params():,} parameters) "
            "trained by `recipes/ner.py`.",
            "",
            "## Intended use",
            "",
            "Tagging person, organisation, location and miscellaneous names in English news "
            f"text: `kzoo.models.load('{name}.keras').tag(['{SAMPLE}'])` gives one "
            f"`(token, tag)` pair per token (here `{metrics['sample']['tags']}`), on any "
            "backend, without TensorFlow."
            + (
                " This is a smoke-run model (`--quick`): it shows that training works."
                if options.quick
                else ""
            ),
            "",
            "## Limitations",
            "",
            "Trained on Reuters news of 1996-1997 only: expect lower scores on other genres, "
            "later names and other languages. Word embeddings are learned from scratch (no "
            "pretrained vectors), so rare names rely on the character and casing features. "
            "Tokenization is whitespace with punctuation split off, as in CoNLL-2003.",
            "",
            "## Data",
            "",
            "CoNLL-2003 English NER (Tjong Kim Sang & De Meulder 2003), IOB2 tags; train = "
            "eng.train, validation = eng.testa, test = eng.testb; sentences used: "
            f"train {sentences['train']}, validation {sentences['valid']}, test {sentences['test']}. "
            f"Vocabularies from the training split: {len(tagger.word_vocabulary)} words, "
            f"{len(tagger.char_vocabulary or [])} characters.",
            "",
            "Licence: the text is Reuters news from the RCV1 corpus, under the Reuters research "
            "agreement (research use only); the annotations were released for research by the "
            "shared task.",
            "",
            "## Metrics",
            "",
            "Entity-level scores (exact span and type, micro-averaged; the CoNLL-2003 "
            f"definition), model of epoch {metrics['best_epoch']} (best validation F1), "
            f"command `{command}`:",
            "",
            "| split / type | precision | recall | F1 | support |",
            "| --- | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            "## Training",
            "",
            f"{metrics['epochs_run']} epoch(s) (at most {settings.epochs}, patience "
            f"{settings.patience}), Adam, on the {backend} backend (Keras {keras.__version__}), "
            f"2 CPU cores; training took {timings['train_seconds_this_process']} s in the last "
            "process (a resumed run counts only its own part). Settings: "
            f"{settings_text}; seed {options.seed}.",
            "",
        ]
    )


if __name__ == "__main__":
    main()
