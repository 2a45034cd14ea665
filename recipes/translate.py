"""Spanish -> English translation with an attention Seq2Seq on the Tatoeba pairs.

Trains `kzoo.models.Seq2Seq` (bidirectional LSTM encoder, Luong attention
decoder, teacher forcing) with `fit` on the spa-eng pairs whose sides both have
at most `max_words` words, measures the corpus BLEU of greedy translations of a
slice of the validation pairs after every epoch (sacrebleu, one reference, on
the lowercased tokens), keeps the model of the best epoch, and reports greedy
and beam-search BLEU on the held-out test pairs, with sample translations and
an attention heatmap. The model's preprocessor (saved inside the `.keras`
file) lowercases and splits off punctuation, and writes its outputs back as
cased sentences.

    KZOO_DATA_DIR=/work/shared/data KERAS_BACKEND=jax python recipes/translate.py  # full run
    KERAS_BACKEND=torch python recipes/translate.py --quick     # smoke run, about a minute
    python recipes/translate.py --publish                       # also copy to saved_models/

Needs `sacrebleu` and `matplotlib` (`pip install "kzoo[recipes]"`).
Writes into `runs/translate/<backend>[-quick]-seed<seed>/` (or `--output-dir`):
`model.keras` (the model of the best epoch with its vocabularies:
`kzoo.models.load(path).translate(["¿Dónde está Tom?"])`; float16 weights
above `max_file_mb`), `best.keras`, `attention.png`, `metrics.json` (final
scores and sample translations), `timings.json`, `log.csv` (per epoch),
`model_card.md`, and `backup/` (to resume an interrupted run: run the same
command again). `--publish` copies the model, card and heatmap to
`saved_models/translate_spa_eng{.keras,.md,_attention.png}`.
"""

import dataclasses
import random
import time

import keras
import numpy as np

from kzoo.datasets.spa_eng import load_pairs
from kzoo.models import Seq2Seq, Seq2SeqPreprocessor
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
from kzoo.utils.atomic_write import atomic_path
from kzoo.utils.bucketing import BucketedBatches
from kzoo.utils.optional import require

MODEL = {"model": True}  # metadata of the settings passed to Seq2Seq as they are


@dataclasses.dataclass(frozen=True)
class Settings:
    # Data.
    max_words: int = setting(15, "longest sentence kept, in words, on both sides", min=1)
    num_pairs: int | None = setting(
        None, "use only the first (shortest) pairs of the corpus (none: all)", min=10
    )
    source_vocab: int = setting(6000, "Spanish vocabulary (with 4 special tokens)", min=5)
    target_vocab: int = setting(5000, "English vocabulary (with 4 special tokens)", min=5)
    test_size: int = setting(2000, "held-out pairs for the test BLEU", min=1)
    validation_size: int = setting(1000, "held-out pairs for the validation loss", min=1)
    buckets: tuple[int, ...] = setting(
        (10, 16, 24), "padded token lengths (one compiled shape each; longer pairs left out)"
    )
    # The model (Seq2Seq arguments).
    embedding_dim: int = setting(128, "embedding size", min=1, **MODEL)
    units: int = setting(256, "encoder memory and decoder width (even)", min=2, **MODEL)
    encoder_layers: int = setting(1, "stacked encoder layers", min=1, **MODEL)
    cell_type: str = setting("lstm", "recurrent cell", choices=("lstm", "gru"), **MODEL)
    attention: str = setting("luong", "attention", choices=("luong", "bahdanau"), **MODEL)
    dropout: float = setting(0.2, "dropout on embeddings and attention", min=0, max=0.99, **MODEL)
    teacher_forcing_ratio: float = setting(
        1.0, "probability of feeding the true previous token", min=0, max=1, **MODEL
    )
    # Training and evaluation.
    epochs: int = setting(10, "most epochs", min=1)
    patience: int | None = setting(None, "epochs without a better BLEU before stopping", min=1)
    batch_size: int = setting(128, "pairs per batch", min=1)
    learning_rate: float = setting(2e-3, "Adam learning rate", min=0)
    clipnorm: float = setting(1.0, "gradient norm clipping", min=0)
    bleu_pairs: int = setting(300, "validation pairs translated for the BLEU of each epoch", min=1)
    bleu_every: int = setting(1, "compute the validation BLEU every this many epochs", min=1)
    beam_width: int | None = setting(
        4, "beam width of the test beam search (none: greedy search only)", min=1
    )
    length_penalty: float = setting(0.6, "GNMT length penalty alpha of the beam search", min=0)
    max_target_len: int = setting(32, "most generated tokens + 1 (the start token)", min=2)
    max_file_mb: float = setting(10.0, "larger models are stored with float16 weights", min=0)


QUICK = {
    "max_words": 5,
    "num_pairs": 12000,
    "source_vocab": 2000,
    "target_vocab": 1500,
    "test_size": 200,
    "validation_size": 200,
    "buckets": (8,),
    "embedding_dim": 64,
    "units": 128,
    "dropout": 0.1,
    "epochs": 4,
    "batch_size": 64,
    "learning_rate": 5e-3,
    "bleu_pairs": 200,
    "beam_width": 2,
    "max_target_len": 12,
}


def main(argv=None):
    settings, options = parse_settings(
        Settings, QUICK, argv=argv, recipe="translate", description=__doc__
    )
    sacrebleu = require("sacrebleu", "recipes", "BLEU scores")
    require("matplotlib", "recipes", "the attention heatmap")
    run = start_run(options)
    splits = load_data(settings, options.seed)
    model = build_model(settings, splits["train"], options.seed)
    train = make_batches(splits["train"], model.preprocessor, settings, options.seed)
    validation = make_batches(splits["validation"], model.preprocessor, settings)
    bleu_pairs = splits["validation"][: settings.bleu_pairs]
    val_bleu = EpochMetric(
        "val_bleu",
        lambda m: bleu(sacrebleu, m, bleu_pairs, settings)[0],
        every=settings.bleu_every,
    )
    callbacks, backup = training_callbacks(
        run,
        monitor="val_bleu",
        mode="max",
        patience=settings.patience,
        metrics=[val_bleu],
        datasets=[train],
        resume=options.resume,
    )
    started = time.perf_counter()
    fit_resumable(
        model,
        train,
        backup=backup,
        epochs=settings.epochs,
        callbacks=callbacks,
        validation_data=validation,
    )
    timings = {"train_seconds_this_process": round(time.perf_counter() - started, 1)}
    model.load_weights(run.file("best.keras"))
    best = next(c for c in callbacks if isinstance(c, BestModel))
    metrics, shown = evaluate(sacrebleu, model, splits, settings, timings)
    metrics.update(best_epoch=best.best_epoch + 1, best_val_bleu=best.best)
    metrics["epochs_run"] = count_epochs(run.file("log.csv"))
    plot_attention(model, *shown, run.file("attention.png"))
    write_outputs(argv, run, model, splits, settings, options, metrics, timings)
    print(run.summary())
    return metrics


def load_data(settings, seed):
    """Raw `(spanish, english)` pairs: `{"train", "validation", "test"}`."""
    pairs = []
    for english, spanish in progress(load_pairs(), label="Loading spa-eng", unit="pairs"):
        if (
            len(english.split()) <= settings.max_words
            and len(spanish.split()) <= settings.max_words
        ):
            pairs.append((spanish, english))
    # The corpus is ordered by length: the first pairs are the shortest.
    pairs = pairs[: settings.num_pairs]
    random.Random(seed).shuffle(pairs)
    test, rest = pairs[: settings.test_size], pairs[settings.test_size :]
    splits = {
        "test": test,
        "validation": rest[: settings.validation_size],
        "train": rest[settings.validation_size :],
    }
    print("Pairs: " + ", ".join(f"{name} {len(split)}" for name, split in splits.items()))
    return splits


def build_model(settings, train_pairs, seed):
    """The compiled Seq2Seq, with vocabularies from the training pairs."""
    preprocessor = Seq2SeqPreprocessor.from_pairs(
        train_pairs, settings.source_vocab, settings.target_vocab
    )
    model = Seq2Seq(preprocessor=preprocessor, seed=seed, **marked_settings(settings, "model"))
    # The loss is the task's default (MaskedSequenceLoss on the logits).
    model.compile(keras.optimizers.Adam(settings.learning_rate, clipnorm=settings.clipnorm))
    model.build()
    print(
        f"Vocabularies: Spanish {len(preprocessor.source_vocabulary)}, English "
        f"{len(preprocessor.target_vocabulary)}; {model.count_params():,} parameters"
    )
    return model


def make_batches(pairs, preprocessor, settings, seed=None):
    """`((source, decoder_in), target)` batches of similar length (kzoo.utils.bucketing).

    Source, decoder input and target of a batch share one padded length from
    `settings.buckets` (one compiled shape per bucket); pairs longer than the
    last bucket are left out. With a `seed`, the batches are shuffled from
    `(seed, epoch)` (training); without, they keep their order.
    """
    sources = preprocessor.encode_source([s for s, _ in pairs])
    targets = preprocessor.encode_target([t for _, t in pairs])
    longest = settings.buckets[-1]
    rows = [i for i in range(len(pairs)) if max(len(sources[i]), len(targets[i]) - 1) <= longest]
    return BucketedBatches(
        ([sources[i] for i in rows], [targets[i][:-1] for i in rows]),
        [targets[i][1:] for i in rows],
        batch_size=settings.batch_size,
        bucket_boundaries=settings.buckets,
        shuffle=seed is not None,
        padding_value=preprocessor.pad_token_id,
        seed=seed,
    )


def translate_ids(model, pairs, settings, label=None, **search):
    """Padded source ids and the best output ids `(n, max_target_len)` of each pair."""
    pre = model.preprocessor
    sources = pre.pad(pre.encode_source([s for s, _ in pairs]), settings.buckets[-1])
    chunk = 250
    starts = range(0, len(sources), chunk)
    if label is not None:
        starts = progress(starts, label=label, unit="batches")
    outputs = [
        model.generate(
            sources[start : start + chunk],
            max_length=settings.max_target_len,
            batch_size=chunk,
            **search,
        )[0][:, 0]
        for start in starts
    ]
    return sources, np.concatenate(outputs)


def bleu(sacrebleu, model, pairs, settings, label=None, **search):
    """Corpus BLEU (sacrebleu, lowercased tokens) of the model's translations; and the ids."""
    pre = model.preprocessor
    sources, outputs = translate_ids(model, pairs, settings, label, **search)
    hypotheses = [" ".join(pre.target_tokens(ids)) for ids in outputs]
    references = [" ".join(pre.tokenize(english)) for _, english in pairs]
    # force: both sides are tokenized on purpose (sacrebleu warns otherwise).
    score = sacrebleu.corpus_bleu(hypotheses, [references], force=True).score
    return score, sources, outputs


def evaluate(sacrebleu, model, splits, settings, timings):
    """Final metrics of the best model (test BLEU greedy and beam, validation loss,
    sample translations), and three sources with their translations, for the heatmap."""
    test = splits["test"]
    metrics = {"pairs": {name: len(pairs) for name, pairs in splits.items()}}
    started = time.perf_counter()
    greedy, sources, outputs = bleu(
        sacrebleu, model, test, settings, label="Translating the test pairs (greedy)"
    )
    timings["test_greedy_seconds"] = round(time.perf_counter() - started, 1)
    metrics["test_bleu_greedy"] = greedy
    if settings.beam_width is not None:
        started = time.perf_counter()
        metrics["test_bleu_beam"], _, _ = bleu(
            sacrebleu,
            model,
            test,
            settings,
            label=f"Translating the test pairs (beam search, width {settings.beam_width})",
            sampler="beam",
            num_beams=settings.beam_width,
            length_penalty=settings.length_penalty,
        )
        timings["test_beam_seconds"] = round(time.perf_counter() - started, 1)
    validation = make_batches(splits["validation"], model.preprocessor, settings)
    metrics["validation_loss"] = float(
        model.evaluate(validation, verbose=0, return_dict=True)["loss"]
    )
    metrics["examples"] = [
        {"es": es, "en": en, "mt": model.preprocessor.decode(ids)}
        for (es, en), ids in zip(test[:8], outputs[:8])
    ]
    print(f"Test BLEU on {len(test)} pairs: {bleu_text(metrics, settings)}")
    for example in metrics["examples"]:
        print("  es: {es}\n  en: {en}\n  mt: {mt}".format(**example))
    return metrics, (sources[:3], outputs[:3])


def bleu_text(metrics, settings):
    text = f"greedy {metrics['test_bleu_greedy']:.2f}"
    if "test_bleu_beam" in metrics:
        text += (
            f", beam {settings.beam_width} (alpha {settings.length_penalty}) "
            f"{metrics['test_bleu_beam']:.2f}"
        )
    return text


def count_epochs(log):
    with open(log, encoding="utf-8") as f:
        return len(f.read().splitlines()) - 1


def plot_attention(model, sources, outputs, path):
    """Heatmaps of the attention weights of three translations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pre = model.preprocessor
    # One teacher-forced pass for all three: a row's weights do not depend on
    # the tokens after it, so the padding after each end token changes nothing.
    all_weights = model.attention_weights(sources, np.asarray(outputs, dtype="int32"))
    figure, axes = plt.subplots(1, len(sources), figsize=(5 * len(sources), 5))
    for ax, source, output, weights in zip(np.atleast_1d(axes), sources, outputs, all_weights):
        words = pre.target_tokens(output) + [pre.end_token]
        source_length = int((source != pre.pad_token_id).sum())
        ax.imshow(weights[: len(words), :source_length], cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(source_length))
        ax.set_xticklabels([pre.source_vocabulary[i] for i in source[:source_length]], rotation=60)
        ax.set_yticks(range(len(words)))
        ax.set_yticklabels(words)
        ax.set_xlabel("Spanish (source)")
        ax.set_ylabel("English (output)")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=80, format="png")
    plt.close(figure)


def write_outputs(argv, run, model, splits, settings, options, metrics, timings):
    run.write_json("metrics.json", metrics)
    run.write_json("timings.json", timings)
    storage = save_compact(model, run.file("model.keras"), max_megabytes=settings.max_file_mb)
    for name in ("model.keras", "best.keras", "attention.png", "log.csv"):
        run.record(name)
    card = model_card(argv, model, splits, settings, options, metrics, timings, storage)
    run.write_text("model_card.md", card)
    if options.publish:
        run.publish(
            ["model.keras", "model_card.md", "attention.png"],
            "saved_models",
            rename={
                "model.keras": "translate_spa_eng.keras",
                "model_card.md": "translate_spa_eng.md",
                "attention.png": "translate_spa_eng_attention.png",
            },
        )


def model_card(argv, model, splits, settings, options, metrics, timings, storage):
    """The model card, in the five sections every kzoo card has."""
    backend = keras.backend.backend()
    pairs = metrics["pairs"]
    command = command_line("translate", argv)
    settings_text = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(settings).items())
    smoke = (
        " This is a smoke-run model (`--quick`): it shows that training works."
        if options.quick
        else ""
    )
    return "\n".join(
        [
            "# translate_spa_eng: Spanish -> English Seq2Seq",
            "",
            f"`kzoo.models.Seq2Seq`: bidirectional {model.cell_type.upper()} encoder, "
            f"{model.attention} attention decoder, embedding {model.embedding_dim}, units "
            f"{model.units}; {model.count_params():,} parameters ({storage} weights in the file).",
            "",
            "## Intended use",
            "",
            "Translating short, everyday Spanish sentences (phrase-book style) into English: "
            "`kzoo.models.load('translate_spa_eng.keras').translate(['¿Dónde está Tom?'])` on "
            "any backend, without TensorFlow." + smoke,
            "",
            "## Limitations",
            "",
            f"Trained on sentences of at most {settings.max_words} words from Tatoeba: longer or "
            "technical text, names and words outside the vocabulary (shown as `<unk>`) translate "
            "poorly. One reference per sentence; the model has no notion of context.",
            "",
            "## Data",
            "",
            "Tatoeba Spanish-English pairs (manythings.org/anki `spa.txt`, 2018-04-07), pairs of "
            f"<= {settings.max_words} words on both sides; seeded shuffle (seed {options.seed}) "
            f"into train {pairs['train']}, validation {pairs['validation']}, test {pairs['test']}; "
            "lowercased, punctuation split (the model's preprocessor, saved in the file).",
            "",
            "Licence: CC BY 2.0 FR (Tatoeba, via manythings.org/anki; attribution: tatoeba.org "
            "and manythings.org).",
            "",
            "## Metrics",
            "",
            f"Corpus BLEU (sacrebleu, 1 reference, lowercased tokenized text) on the {pairs['test']} "
            f"test pairs: {bleu_text(metrics, settings)}; validation BLEU "
            f"(greedy, {settings.bleu_pairs} pairs) {metrics['best_val_bleu']:.2f} at epoch "
            f"{metrics['best_epoch']} (the model kept); validation loss "
            f"{metrics['validation_loss']:.3f}. Command: `{command}`.",
            "",
            "Examples (source / reference / greedy output):",
            "",
            *[f"- {e['es']} / {e['en']} / {e['mt']}" for e in metrics["examples"]],
            "",
            "Attention heatmap: `translate_spa_eng_attention.png`.",
            "",
            "## Training",
            "",
            f"{metrics['epochs_run']} epoch(s), Adam, teacher forcing, on the {backend} backend "
            f"(Keras {keras.__version__}), 2 CPU cores; training took "
            f"{timings['train_seconds_this_process']} s in the last process (a resumed run "
            f"counts only its own part). Settings: {settings_text}.",
            "",
        ]
    )


if __name__ == "__main__":
    main()
