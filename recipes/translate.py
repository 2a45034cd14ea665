"""Spanish -> English translation with kzoo.models.Seq2Seq on the Tatoeba pairs.

Data: kzoo.datasets.spa_eng.load_pairs (offline with KZOO_DATA_DIR), pairs
whose sides both have at most MAX_WORDS words, lowercased, punctuation split
off. A seeded shuffle holds out TEST_SIZE pairs for corpus BLEU (sacrebleu,
one reference per sentence) and VALIDATION_SIZE pairs for the loss.

    KERAS_BACKEND=jax python recipes/translate.py                     # full run
    KERAS_BACKEND=jax python recipes/translate.py --time-budget-minutes 25
    KERAS_BACKEND=torch python recipes/translate.py --quick           # CI smoke

Writes to --output-dir (default saved_models/): translate_<name>.keras, its
vocabularies (.json), an attention heatmap (.png) and a model card (.md).
"""

import argparse
import collections
import json
import os
import random
import re
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

PAD, START, END, UNK = 0, 1, 2, 3
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]


def tokenize(text):
    return re.findall(r"\w+|[^\w\s]", text.lower())


def build_vocab(sentences, size):
    counts = collections.Counter(t for s in sentences for t in s)
    words = [w for w, _ in counts.most_common(size - len(SPECIALS))]
    return SPECIALS + words


def encode(tokens, index, add_start_end):
    ids = [index.get(t, UNK) for t in tokens]
    return [START, *ids, END] if add_start_end else ids


def pad(rows, length):
    out = np.full((len(rows), length), PAD, dtype="int32")
    for i, row in enumerate(rows):
        out[i, : len(row)] = row[:length]
    return out


def bucket_length(n, buckets):
    for b in buckets:
        if n <= b:
            return b
    return buckets[-1]


def load_data(settings, quick):
    from kzoo.datasets.spa_eng import load_pairs

    pairs = []
    for english, spanish in load_pairs():
        if len(english.split()) <= MAX_WORDS and len(spanish.split()) <= MAX_WORDS:
            pairs.append((tokenize(spanish), tokenize(english)))
    if quick:
        pairs = pairs[: settings["NUM_PAIRS"]]
    random.Random(SEED).shuffle(pairs)
    test = pairs[: settings["TEST_SIZE"]]
    validation = pairs[settings["TEST_SIZE"] : settings["TEST_SIZE"] + settings["VALIDATION_SIZE"]]
    train = pairs[settings["TEST_SIZE"] + settings["VALIDATION_SIZE"] :]
    return train, validation, test


def make_batches(pairs, src_index, tgt_index, batch_size, buckets, rng):
    """Batches of similar length, each padded to a bucket length."""
    by_bucket = collections.defaultdict(list)
    for src, tgt in pairs:
        s = encode(src, src_index, False)
        t = encode(tgt, tgt_index, True)
        # One length for both sides keeps one compiled shape per bucket.
        key = bucket_length(max(len(s), len(t) - 1), buckets)
        if len(s) <= key and len(t) <= key + 1:
            by_bucket[key].append((s, t))
    batches = []
    for length, rows in by_bucket.items():
        rng.shuffle(rows)
        for i in range(0, len(rows), batch_size):
            chunk = rows[i : i + batch_size]
            source = pad([s for s, _ in chunk], length)
            target = pad([t for _, t in chunk], length + 1)
            batches.append((source, target[:, :-1], target[:, 1:]))
    rng.shuffle(batches)
    return batches


def ids_to_words(ids, vocab):
    return [vocab[i] for i in ids]


def plot_attention(model, sources, tokens, src_vocab, tgt_vocab, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(sources), figsize=(5 * len(sources), 5))
    for ax, source, output in zip(np.atleast_1d(axes), sources, tokens):
        words = model.strip(output)
        decoder_inputs = np.array([[START, *words]], dtype="int32")
        weights = model.attention_weights(source[None], decoder_inputs)[0]
        src_len = int((source != PAD).sum())
        out_words = ids_to_words(words, tgt_vocab) + ["</s>"]
        weights = weights[: len(out_words), :src_len]
        ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(src_len))
        ax.set_xticklabels(ids_to_words(source[:src_len], src_vocab), rotation=60)
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
        type=int_range(len(SPECIALS) + 1),  # the special tokens and at least one word
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


def evaluate_bleu(model, pairs, src_index, tgt_vocab, settings):
    """Greedy and beam corpus BLEU (sacrebleu) of `model` on `pairs`."""
    import sacrebleu

    sources = pad([encode(s, src_index, False) for s, _ in pairs], settings["BUCKETS"][-1])
    references = [" ".join(t) for _, t in pairs]
    results = {"pairs": len(pairs)}
    start = time.time()
    greedy = model.generate(sources, max_length=settings["MAX_TARGET_LEN"], batch_size=256)
    hyps = {"greedy": [" ".join(ids_to_words(model.strip(g), tgt_vocab)) for g in greedy]}
    results["greedy_seconds"] = time.time() - start
    start = time.time()
    beams, _ = model.generate(
        sources,
        max_length=settings["MAX_TARGET_LEN"],
        beam_width=settings["BEAM_WIDTH"],
        length_penalty=LENGTH_PENALTY,
        batch_size=256,
    )
    hyps["beam"] = [" ".join(ids_to_words(model.strip(b[0]), tgt_vocab)) for b in beams]
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
    examples = [(" ".join(pairs[i][0]), references[i], hyps["beam"][i]) for i in range(shown)]
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
    """Scores the saved model and vocabulary on this backend's decoding."""
    import keras

    stem = os.path.join(args.output_dir, f"translate_{settings['NAME']}")
    model = keras.saving.load_model(stem + ".keras", compile=False)
    with open(stem + "_vocab.json") as f:
        vocab = json.load(f)
    src_index = {w: i for i, w in enumerate(vocab["source"])}
    _, _, test = load_data(settings, args.quick)
    eval_pairs = test[: args.eval_size] if args.eval_size else test
    results, _, _, _ = evaluate_bleu(model, eval_pairs, src_index, vocab["target"], settings)
    results["backend"] = keras.backend.backend()
    results["model"] = os.path.basename(stem) + ".keras"
    print(f"wrote {write_scores(stem, results)}")
    return results


def train(model, train_pairs, val_batches, src_index, tgt_index, settings, budget, rng):
    """Teacher-forced training on bucketed batches.

    Returns:
        `(epochs done, validation loss after the last one)`.
    """
    epochs_done, val_loss = 0.0, float("nan")
    for epoch in range(settings["EPOCHS"]):
        batches = make_batches(
            train_pairs, src_index, tgt_index, BATCH_SIZE, settings["BUCKETS"], rng
        )
        losses = []
        for source, decoder_in, target in batches:
            losses.append(float(model.train_on_batch((source, decoder_in), target)))
            if len(losses) % LOG_EVERY == 0:
                print(
                    f"  epoch {epoch + 1} batch {len(losses)}/{len(batches)}: train loss "
                    f"{np.mean(losses[-LOG_EVERY:]):.3f}, {budget.elapsed():.0f} s",
                    flush=True,
                )
            if budget.expired():
                break
        val_loss = float(np.mean([model.test_on_batch((s, d), t) for s, d, t in val_batches]))
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
    from kzoo.models import MaskedSequenceLoss, Seq2Seq
    from kzoo.models.saving import save_compact
    from kzoo.utils import write_json, write_text

    settings = make_settings(args)
    if args.evaluate:
        return evaluate_saved(args, settings)
    keras.utils.set_random_seed(SEED)
    started = time.time()

    train_pairs, validation, test = load_data(settings, args.quick)
    src_vocab = build_vocab([s for s, _ in train_pairs], settings["SOURCE_VOCAB"])
    tgt_vocab = build_vocab([t for _, t in train_pairs], settings["TARGET_VOCAB"])
    src_index = {w: i for i, w in enumerate(src_vocab)}
    tgt_index = {w: i for i, w in enumerate(tgt_vocab)}
    print(
        f"pairs: train {len(train_pairs)}, validation {len(validation)}, test {len(test)}; "
        f"vocab: spa {len(src_vocab)}, eng {len(tgt_vocab)}",
        flush=True,
    )

    model = Seq2Seq(
        len(src_vocab),
        len(tgt_vocab),
        embedding_dim=settings["EMBEDDING_DIM"],
        units=settings["UNITS"],
        encoder_layers=ENCODER_LAYERS,
        cell_type=CELL_TYPE,
        attention=ATTENTION,
        dropout=DROPOUT,
        teacher_forcing_ratio=TEACHER_FORCING_RATIO,
        pad_token_id=PAD,
        start_token_id=START,
        end_token_id=END,
        seed=SEED,
    )
    model.compile(
        keras.optimizers.Adam(LEARNING_RATE, clipnorm=1.0),
        loss=MaskedSequenceLoss(PAD),
    )
    model.build()
    rng = random.Random(SEED)
    val_batches = make_batches(validation, src_index, tgt_index, 256, settings["BUCKETS"], rng)
    minutes = args.time_budget_minutes
    budget = TrainingBudget(None if minutes is None else 60 * minutes)
    epochs_done, val_loss = train(
        model, train_pairs, val_batches, src_index, tgt_index, settings, budget, rng
    )
    train_seconds = budget.elapsed()

    eval_pairs = test[: args.eval_size] if args.eval_size else test
    results, examples, sources, greedy = evaluate_bleu(
        model, eval_pairs, src_index, tgt_vocab, settings
    )

    # --- artifacts --------------------------------------------------------------
    os.makedirs(args.output_dir, exist_ok=True)
    stem = os.path.join(args.output_dir, f"translate_{settings['NAME']}")
    storage = save_compact(model, stem + ".keras", max_megabytes=MAX_FILE_MB)
    write_json(stem + "_vocab.json", {"source": src_vocab, "target": tgt_vocab}, indent=None)
    plot_attention(model, sources[:3], greedy[:3], src_vocab, tgt_vocab, stem + "_attention.png")
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
        f"(seeded shuffle, seed {SEED}); lowercased, punctuation split.",
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
        "Examples (source / reference / beam output):",
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
