"""Spanish -> English translation with kzoo.models.Seq2Seq on the Tatoeba pairs.

Data: kzoo.datasets.spa_eng.load_pairs (offline with KZOO_DATA_DIR), pairs
whose sides both have at most MAX_WORDS words. The model's preprocessor
(kzoo.models.Seq2SeqPreprocessor, saved inside the .keras file) lowercases and
splits off punctuation, and writes outputs back as cased sentences. A seeded
shuffle holds out TEST_SIZE pairs for corpus BLEU (sacrebleu, one reference per
sentence, on the lowercased tokens) and VALIDATION_SIZE pairs for the loss.

    KERAS_BACKEND=jax python recipes/translate.py                     # full run
    KERAS_BACKEND=jax python recipes/translate.py --time-budget-minutes 25
    KERAS_BACKEND=torch python recipes/translate.py --quick           # CI smoke

Writes to --output-dir (default saved_models/): translate_<name>.keras (with its
vocabularies inside: `kzoo.models.load(path).translate([...])` needs nothing
else), an attention heatmap (.png) and a model card (.md).
"""

import argparse
import os
import random
import sys
import time

import numpy as np

# --- settings ---------------------------------------------------------------
MAX_WORDS = 15  # longest sentence kept, in words, on both sides
SOURCE_VOCAB = 6000  # including pad, start, end, unk
TARGET_VOCAB = 5000
EMBEDDING_DIM = 128
UNITS = 256
ENCODER_LAYERS = 1
CELL_TYPE = "lstm"
ATTENTION = "luong"
DROPOUT = 0.2
TEACHER_FORCING_RATIO = 1.0
BATCH_SIZE = 128
EPOCHS = 10
LEARNING_RATE = 2e-3
TEST_SIZE = 2000  # held-out pairs for BLEU
VALIDATION_SIZE = 1000
BEAM_WIDTH = 4
MAX_TARGET_LEN = 32  # generated tokens + 1 (start token)
LENGTH_PENALTY = 0.6
BUCKETS = (10, 16, 24)  # padded token lengths, one compiled shape each
LOG_EVERY = 200  # batches between progress lines
MAX_FILE_MB = 10.0  # larger models are stored with float16 weights
SEED = 0
NAME = "spa_eng"

# --quick: a tiny model on few short pairs, for CI (< 40 s per backend).
QUICK = dict(
    NUM_PAIRS=2000,
    SOURCE_VOCAB=600,
    TARGET_VOCAB=500,
    EMBEDDING_DIM=16,
    UNITS=32,
    EPOCHS=1,
    TEST_SIZE=64,
    VALIDATION_SIZE=64,
    BEAM_WIDTH=2,
    MAX_TARGET_LEN=10,
    BUCKETS=(8,),
    NAME="quick",
)


def load_data(settings, quick):
    """Raw `(spanish, english)` pairs: train, validation, test."""
    from kzoo.datasets.spa_eng import load_pairs

    pairs = []
    for english, spanish in load_pairs():
        if len(english.split()) <= MAX_WORDS and len(spanish.split()) <= MAX_WORDS:
            pairs.append((spanish, english))
    if quick:
        pairs = pairs[: settings["NUM_PAIRS"]]
    random.Random(SEED).shuffle(pairs)
    test = pairs[: settings["TEST_SIZE"]]
    validation = pairs[settings["TEST_SIZE"] : settings["TEST_SIZE"] + settings["VALIDATION_SIZE"]]
    train = pairs[settings["TEST_SIZE"] + settings["VALIDATION_SIZE"] :]
    return train, validation, test


def make_batches(pairs, preprocessor, batch_size, buckets, shuffle=False):
    """`((source, decoder_in), target)` batches of similar length (kzoo.utils.bucketing).

    Source, decoder input and target of a batch share one padded length from
    `buckets` (one compiled shape per bucket); pairs longer than the last
    bucket are left out.
    """
    from kzoo.utils.bucketing import BucketedBatches

    sources = preprocessor.encode_source([s for s, _ in pairs])
    targets = preprocessor.encode_target([t for _, t in pairs])
    rows = [
        i for i in range(len(pairs)) if max(len(sources[i]), len(targets[i]) - 1) <= buckets[-1]
    ]
    return BucketedBatches(
        ([sources[i] for i in rows], [targets[i][:-1] for i in rows]),
        [targets[i][1:] for i in rows],
        batch_size=batch_size,
        bucket_boundaries=buckets,
        shuffle=shuffle,
        padding_value=preprocessor.pad_token_id,
        seed=SEED,
    )


def plot_attention(model, sources, tokens, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pre = model.preprocessor
    figure, axes = plt.subplots(1, len(sources), figsize=(5 * len(sources), 5))
    for ax, source, output in zip(np.atleast_1d(axes), sources, tokens):
        words = pre.target_tokens(output)
        decoder_inputs = np.asarray(output[None, : len(words) + 1], dtype="int32")
        weights = model.attention_weights(source[None], decoder_inputs)[0]
        src_len = int((source != pre.pad_token_id).sum())
        out_words = words + [pre.end_token]
        weights = weights[: len(out_words), :src_len]
        ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(src_len))
        ax.set_xticklabels([pre.source_vocabulary[i] for i in source[:src_len]], rotation=60)
        ax.set_yticks(range(len(out_words)))
        ax.set_yticklabels(out_words)
        ax.set_xlabel("Spanish (source)")
        ax.set_ylabel("English (output)")
    from kzoo.utils import atomic_path

    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=80)
    plt.close(figure)


def parse_args(argv=None):
    from kzoo.utils import check_writable_folder, float_range, int_range

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    # Values given here win over the settings above and over --quick's.
    parser.add_argument("--epochs", type=int_range(1), default=None)
    parser.add_argument(
        "--time-budget-minutes",
        type=float_range(0, min_inclusive=False),
        default=None,
        help="stop training after this long, then evaluate and save",
    )
    parser.add_argument("--units", type=int_range(1), default=None, help=f"default {UNITS}")
    parser.add_argument(
        "--embedding-dim", type=int_range(1), default=None, help=f"default {EMBEDDING_DIM}"
    )
    parser.add_argument(
        "--vocab",
        type=int_range(5),  # the 4 special tokens and at least one word
        nargs=2,
        default=None,
        metavar=("SOURCE", "TARGET"),
        help=f"vocabulary sizes (default {SOURCE_VOCAB} {TARGET_VOCAB})",
    )
    parser.add_argument("--output-dir", default="saved_models")
    parser.add_argument(
        "--eval-size",
        type=int_range(1),
        default=None,
        help="test pairs for BLEU (default: all TEST_SIZE)",
    )
    parser.add_argument(
        "--evaluate",
        action="store_true",
        help="no training: score the saved model in --output-dir on this backend",
    )
    args = parser.parse_args(argv)
    try:  # before any data is loaded or any model trained
        check_writable_folder(os.path.join(args.output_dir, "translate.md"))
    except OSError as e:
        parser.error(f"argument --output-dir: {e}")
    return args


def make_settings(args):
    settings = {k: v for k, v in globals().items() if k.isupper()}
    if args.quick:
        settings.update(QUICK)
    if args.epochs is not None:
        settings["EPOCHS"] = args.epochs
    if args.units is not None:
        settings["UNITS"] = args.units
    if args.embedding_dim is not None:
        settings["EMBEDDING_DIM"] = args.embedding_dim
    if args.vocab is not None:
        settings["SOURCE_VOCAB"], settings["TARGET_VOCAB"] = args.vocab
    return settings


def evaluate_bleu(model, pairs, settings):
    """Greedy and beam corpus BLEU (sacrebleu, lowercased tokens) of `model` on `pairs`."""
    import sacrebleu

    pre = model.preprocessor
    sources = pre.pad(pre.encode_source([s for s, _ in pairs]), settings["BUCKETS"][-1])
    references = [" ".join(pre.tokenize(t)) for _, t in pairs]
    results = {"pairs": len(pairs)}
    start = time.time()
    greedy, _ = model.generate(sources, max_length=settings["MAX_TARGET_LEN"], batch_size=256)
    greedy = greedy[:, 0]
    hyps = {"greedy": [" ".join(pre.target_tokens(g)) for g in greedy]}
    results["greedy_seconds"] = time.time() - start
    start = time.time()
    beams, _ = model.generate(
        sources,
        max_length=settings["MAX_TARGET_LEN"],
        sampler="beam",
        num_beams=settings["BEAM_WIDTH"],
        length_penalty=LENGTH_PENALTY,
        batch_size=256,
    )
    hyps["beam"] = [" ".join(pre.target_tokens(b)) for b in beams[:, 0]]
    results["beam_seconds"] = time.time() - start
    for name, lines in hyps.items():
        # force: both sides are tokenized on purpose (sacrebleu warns otherwise).
        results[f"bleu_{name}"] = sacrebleu.corpus_bleu(lines, [references], force=True).score
    print(
        f"BLEU on {len(pairs)} held-out pairs: greedy {results['bleu_greedy']:.2f}, "
        f"beam{settings['BEAM_WIDTH']} (alpha {LENGTH_PENALTY}) {results['bleu_beam']:.2f}",
        flush=True,
    )
    shown = min(8, len(pairs))
    examples = [(*pairs[i], pre.decode(beams[i, 0])) for i in range(shown)]
    for example in examples:
        print("  es: {}\n  en: {}\n  mt: {}".format(*example))
    return results, examples, sources, greedy


def write_scores(stem, results):
    """Writes `<stem>_eval_<backend>.json`."""
    path = f"{stem}_eval_{results['backend']}.json"
    from kzoo.utils import write_json

    write_json(path, results, indent=1)
    return path


def evaluate_saved(args, settings):
    """Scores the saved model (vocabularies inside) on this backend's decoding."""
    import keras

    from kzoo.models import load

    stem = os.path.join(args.output_dir, f"translate_{settings['NAME']}")
    model = load(stem + ".keras")
    _, _, test = load_data(settings, args.quick)
    eval_pairs = test[: args.eval_size] if args.eval_size else test
    results, _, _, _ = evaluate_bleu(model, eval_pairs, settings)
    results["backend"] = keras.backend.backend()
    results["model"] = os.path.basename(stem) + ".keras"
    print(f"wrote {write_scores(stem, results)}")
    return results


def train(model, batches, val_batches, settings, budget):
    """Teacher-forced training on bucketed batches.

    Returns:
        `(epochs done, validation loss after the last one)`.
    """
    epochs_done, val_loss = 0.0, float("nan")
    for epoch in range(settings["EPOCHS"]):
        batches.set_epoch(epoch)
        losses = []
        for x, y in batches:
            losses.append(float(model.train_on_batch(x, y, return_dict=True)["loss"]))
            if len(losses) % LOG_EVERY == 0:
                print(
                    f"  epoch {epoch + 1} batch {len(losses)}/{len(batches)}: train loss "
                    f"{np.mean(losses[-LOG_EVERY:]):.3f}, {budget.elapsed():.0f} s",
                    flush=True,
                )
            if budget.expired():
                break
        val_loss = float(
            np.mean([model.test_on_batch(x, y, return_dict=True)["loss"] for x, y in val_batches])
        )
        epochs_done = epoch + len(losses) / len(batches)
        print(
            f"epoch {epoch + 1}: train loss {np.mean(losses):.3f} "
            f"({len(losses)}/{len(batches)} batches), validation loss {val_loss:.3f}, "
            f"{budget.elapsed():.0f} s",
            flush=True,
        )
        if budget.stopped:
            print(f"stopped: {budget.reason}", flush=True)
            break
    return epochs_done, val_loss


def main(argv=None):
    args = parse_args(argv)

    import keras

    from kzoo.callbacks import TrainingBudget
    from kzoo.models import Seq2Seq, Seq2SeqPreprocessor
    from kzoo.models.saving import save_compact
    from kzoo.utils import write_text

    settings = make_settings(args)
    if args.evaluate:
        return evaluate_saved(args, settings)
    keras.utils.set_random_seed(SEED)
    started = time.time()

    train_pairs, validation, test = load_data(settings, args.quick)
    preprocessor = Seq2SeqPreprocessor.from_pairs(
        train_pairs, settings["SOURCE_VOCAB"], settings["TARGET_VOCAB"]
    )
    src_vocab, tgt_vocab = preprocessor.source_vocabulary, preprocessor.target_vocabulary
    print(
        f"pairs: train {len(train_pairs)}, validation {len(validation)}, test {len(test)}; "
        f"vocab: spa {len(src_vocab)}, eng {len(tgt_vocab)}",
        flush=True,
    )

    model = Seq2Seq(
        preprocessor=preprocessor,
        embedding_dim=settings["EMBEDDING_DIM"],
        units=settings["UNITS"],
        encoder_layers=ENCODER_LAYERS,
        cell_type=CELL_TYPE,
        attention=ATTENTION,
        dropout=DROPOUT,
        teacher_forcing_ratio=TEACHER_FORCING_RATIO,
        seed=SEED,
    )
    # The loss is the task's default (MaskedSequenceLoss on the logits).
    model.compile(keras.optimizers.Adam(LEARNING_RATE, clipnorm=1.0))
    model.build()
    batches = make_batches(train_pairs, preprocessor, BATCH_SIZE, settings["BUCKETS"], shuffle=True)
    val_batches = make_batches(validation, preprocessor, 256, settings["BUCKETS"])
    minutes = args.time_budget_minutes
    budget = TrainingBudget(None if minutes is None else 60 * minutes)
    epochs_done, val_loss = train(model, batches, val_batches, settings, budget)
    train_seconds = budget.elapsed()

    eval_pairs = test[: args.eval_size] if args.eval_size else test
    results, examples, sources, greedy = evaluate_bleu(model, eval_pairs, settings)

    # --- artifacts --------------------------------------------------------------
    os.makedirs(args.output_dir, exist_ok=True)
    stem = os.path.join(args.output_dir, f"translate_{settings['NAME']}")
    storage = save_compact(model, stem + ".keras", max_megabytes=MAX_FILE_MB)
    plot_attention(model, sources[:3], greedy[:3], stem + "_attention.png")
    size_mb = os.path.getsize(stem + ".keras") / 2**20
    backend = keras.backend.backend()
    results.update(backend=backend, validation_loss=val_loss, train_seconds=train_seconds)
    results.update(epochs=epochs_done, storage_dtype=storage)
    write_scores(stem, results)
    command = " ".join(argv if argv is not None else sys.argv[1:])
    card = [
        f"# translate_{settings['NAME']}: Spanish -> English Seq2Seq",
        "",
        f"- Backend: {backend}; Keras {keras.__version__}; command: "
        f"`KERAS_BACKEND={backend} python recipes/translate.py {command}`",
        f"- Data: Tatoeba spa-eng (manythings.org/anki, CC-BY 2.0 FR), pairs of <= {MAX_WORDS} "
        f"words; train {len(train_pairs)}, validation {len(validation)}, test {len(test)} "
        f"(seeded shuffle, seed {SEED}); lowercased, punctuation split (the model's "
        "preprocessor, saved in the file, with a casing table for its outputs).",
        f"- Model: {model.count_params():,} parameters, {size_mb:.1f} MB ({storage} weights in "
        f"the file); embedding {settings['EMBEDDING_DIM']}, units {settings['UNITS']}, "
        f"bidirectional {CELL_TYPE} encoder, {ATTENTION} attention; vocab spa "
        f"{len(src_vocab)}, eng {len(tgt_vocab)}.",
        f"- Training: {epochs_done:.2f} epochs in {train_seconds:.0f} s"
        f"{' (stopped by the time budget)' if budget.stopped else ''}, batch {BATCH_SIZE}, "
        f"Adam {LEARNING_RATE}, teacher forcing ratio {TEACHER_FORCING_RATIO}; final "
        f"validation loss {val_loss:.3f}.",
        f"- Corpus BLEU (sacrebleu, 1 reference, lowercased tokenized text) on "
        f"{len(eval_pairs)} held-out pairs: greedy {results['bleu_greedy']:.2f}, beam "
        f"{settings['BEAM_WIDTH']} alpha {LENGTH_PENALTY}: {results['bleu_beam']:.2f}.",
        f"- Decoding time for {len(eval_pairs)} sentences: greedy "
        f"{results['greedy_seconds']:.1f} s, beam {results['beam_seconds']:.1f} s "
        "(including compilation).",
        "",
        "Examples (source / reference / beam output, `translate` style):",
        "",
        *[f"- {s} / {r} / {h}" for s, r, h in examples],
        "",
        f"Attention heatmap: `translate_{settings['NAME']}_attention.png`.",
        "",
    ]
    write_text(stem + ".md", "\n".join(card))
    print(f"saved {stem}.keras ({size_mb:.1f} MB); total {time.time() - started:.0f} s")
    return results


if __name__ == "__main__":
    main()
