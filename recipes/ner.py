"""Recipe: BiLSTM-CRF named-entity recognition on CoNLL-2003 (English, IOB2).

Trains `kzoo.models.SequenceTagger` (word embeddings learned from scratch,
character CNN, casing features, BiLSTM, CRF) on the train split, keeps the
weights of the epoch with the best entity F1 on the validation split, and
reports entity-level precision / recall / F1 on the test split with the
CoNLL-2003 definition (exact span and type), overall and per type.

    KZOO_DATA_DIR=/work/shared/data KERAS_BACKEND=jax python recipes/ner.py \\
        --time-budget-minutes 25
    python recipes/ner.py --quick               # CI smoke run
    python recipes/ner.py --decoder softmax     # per-token softmax instead of the CRF
    KERAS_BACKEND=torch python recipes/ner.py --evaluate   # score the saved model

Artifacts in `--output-dir` (default `saved_models/`): `ner_<decoder>.keras`
(the model with its vocabularies: `load_model(...).predict(["EU rejects ..."])`
tags raw text), `ner_<decoder>_<backend>.json` (scores, timings),
`ner_<decoder>.md` (model card) and, from `--evaluate`,
`ner_<decoder>_eval_<backend>.json`.
"""

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # see recipes/forecast.py

if __package__ in (None, ""):  # run as a script: make `kzoo` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from kzoo.callbacks import TrainingBudget  # noqa: E402
from kzoo.datasets import conll2003  # noqa: E402
from kzoo.metrics.ner import entity_f1  # noqa: E402
from kzoo.models.saving import save_compact  # noqa: E402
from kzoo.models.sequence_tagger import SequenceTagger  # noqa: E402
from kzoo.utils import (  # noqa: E402
    check_writable_folder,
    float_range,
    int_range,
    write_json,
    write_text,
)

MODEL = dict(
    word_dim=100,
    char_encoder="cnn",
    char_dim=30,
    char_units=50,
    max_word_length=20,
    use_casing=True,
    casing_dim=8,
    lstm_units=100,
    num_layers=1,
    dropout=0.5,
    word_dropout=0.1,
    buckets=(8, 16, 32, 64, 128),
)
# patience: epochs without a better valid F1 before stopping (0 = never stop early).
TRAIN = dict(epochs=40, batch_size=32, learning_rate=2e-3, clipnorm=5.0, min_count=1, patience=8)
# Quick: a tiny model on short sentences, one bucket (one compiled shape).
QUICK_MODEL = dict(
    word_dim=16,
    char_dim=8,
    char_units=8,
    max_word_length=12,
    casing_dim=4,
    lstm_units=16,
    buckets=(32,),
)
QUICK = dict(train=256, valid=64, test=64, max_length=32, epochs=2, learning_rate=1e-2)
SAMPLE = "EU rejects German call to boycott British lamb ."
SEED = 1


def load_data(quick, max_train=None):
    splits = {name: conll2003.load_split(name) for name in conll2003.SPLITS}
    if max_train is not None:
        splits["train"] = splits["train"][:max_train]
    if quick:
        for name in splits:
            short = [s for s in splits[name] if len(s.tokens) <= QUICK["max_length"]]
            splits[name] = short[: QUICK[name]]
    return {name: ([s.tokens for s in ss], [s.tags for s in ss]) for name, ss in splits.items()}


def scores(tagger, tokens, tags, batch_size):
    start = time.perf_counter()
    predicted = tagger.predict(tokens, batch_size=batch_size)  # one tag list per sentence
    seconds = time.perf_counter() - start
    result = entity_f1(tags, predicted)
    result["tagging_seconds"] = round(seconds, 2)
    return result


def evaluate_saved(args):
    """Scores a saved tagger on valid and test with the current backend."""
    name = f"ner_{args.decoder}"
    start = time.perf_counter()
    tagger = keras.saving.load_model(os.path.join(args.output_dir, f"{name}.keras"))
    load_seconds = time.perf_counter() - start
    data = load_data(quick=False)
    metrics = {
        "backend": keras.backend.backend(),
        "model": f"{name}.keras",
        "load_seconds": round(load_seconds, 2),
        "valid": scores(tagger, *data["valid"], TRAIN["batch_size"]),
        "test": scores(tagger, *data["test"], TRAIN["batch_size"]),
        "sample": {"sentence": SAMPLE, "tags": tagger.predict([SAMPLE])[0]},
    }
    write_json(os.path.join(args.output_dir, f"{name}_eval_{metrics['backend']}.json"), metrics)
    test = metrics["test"]
    print(
        f"[ner {args.decoder} | {metrics['backend']}] saved model: test P {test['precision']:.4f} "
        f"R {test['recall']:.4f} F1 {test['f1']:.4f}; tagged {len(data['test'][0])} test "
        f"sentences in {test['tagging_seconds']} s",
        flush=True,
    )
    return metrics


def main(argv=None):
    args = parse_args(argv)
    if args.evaluate:
        return evaluate_saved(args)
    start = time.perf_counter()
    budget = TrainingBudget(
        None if args.time_budget_minutes is None else 60 * args.time_budget_minutes
    )
    data = load_data(args.quick, args.max_train_sentences)
    train_tokens, train_tags = data["train"]
    model_args = {**MODEL, **(QUICK_MODEL if args.quick else {})}
    if args.word_dropout is not None:
        model_args["word_dropout"] = args.word_dropout
    if args.lstm_units is not None:
        model_args["lstm_units"] = args.lstm_units
    min_count = TRAIN["min_count"] if args.min_count is None else args.min_count
    patience = TRAIN["patience"] if args.patience is None else args.patience
    words, chars = SequenceTagger.build_vocabularies(train_tokens, min_count=min_count)
    keras.utils.set_random_seed(SEED)
    tagger = SequenceTagger(
        words,
        conll2003.TAGS,
        chars,
        decoder=args.decoder,
        seed=SEED,
        name=f"ner_{args.decoder}",
        **model_args,
    )
    learning_rate = QUICK["learning_rate"] if args.quick else TRAIN["learning_rate"]
    tagger.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=TRAIN["clipnorm"]))
    batch_size = TRAIN["batch_size"]
    train_data = tagger.batches(train_tokens, train_tags, batch_size, shuffle=True, seed=SEED)
    if args.epochs is not None:  # an explicit --epochs wins, also over --quick
        epochs = args.epochs
    else:
        epochs = QUICK["epochs"] if args.quick else TRAIN["epochs"]
    history = []
    best_f1, best_weights, best_epoch = -1.0, None, 0
    train_seconds = 0.0
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        fit = tagger.fit(train_data, epochs=1, verbose=0, callbacks=[budget])
        train_seconds += time.perf_counter() - epoch_start
        valid = scores(tagger, *data["valid"], batch_size)
        record = {
            "epoch": epoch,
            "loss": float(fit.history["loss"][-1]),
            "valid_f1": valid["f1"],
            "epoch_seconds": round(time.perf_counter() - epoch_start, 1),
            "partial": budget.stopped,
        }
        history.append(record)
        print(json.dumps(record), flush=True)
        if valid["f1"] > best_f1:
            best_f1, best_epoch = valid["f1"], epoch
            best_weights = tagger.get_weights()
        if budget.stopped or (patience and epoch - best_epoch >= patience):
            break
    tagger.set_weights(best_weights)

    valid = scores(tagger, *data["valid"], batch_size)
    test = scores(tagger, *data["test"], batch_size)
    metrics = {
        "backend": keras.backend.backend(),
        "decoder": args.decoder,
        "quick": args.quick,
        "sentences": {name: len(data[name][0]) for name in data},
        "vocabulary": {"words": len(words), "chars": len(chars)},
        "parameters": tagger.count_params(),
        "settings": {
            "model": model_args,
            "min_count": min_count,
            "patience": patience,
            "learning_rate": learning_rate,
        },
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "stopped_by_time_budget": budget.stopped,
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
        "history": history,
        "valid": valid,
        "test": test,
        "sample": {"sentence": SAMPLE, "tags": tagger.predict([SAMPLE])[0]},
    }
    save(tagger, metrics, args)
    print(
        f"[ner {args.decoder} | {metrics['backend']}] test P {test['precision']:.4f} "
        f"R {test['recall']:.4f} F1 {test['f1']:.4f} (valid F1 {valid['f1']:.4f}, best epoch "
        f"{best_epoch} of {len(history)}, training {train_seconds:.0f} s)",
        flush=True,
    )
    for entity_type, s in test["per_type"].items():
        print(f"  {entity_type:5s} P {s['precision']:.4f} R {s['recall']:.4f} F1 {s['f1']:.4f}")
    return metrics


def save(tagger, metrics, args):
    out = args.output_dir
    os.makedirs(out, exist_ok=True)
    name = f"ner_{args.decoder}"
    save_compact(tagger, os.path.join(out, f"{name}.keras"), "float32")
    write_json(os.path.join(out, f"{name}_{metrics['backend']}.json"), metrics)
    write_text(os.path.join(out, f"{name}.md"), model_card(name, tagger.get_config(), metrics))


def model_card(name, cfg, metrics):
    """The Markdown model card of a trained tagger."""
    test = metrics["test"]
    settings = metrics.get("settings", {})
    lines = [
        f"# {name}",
        "",
        f"`kzoo.models.SequenceTagger` (decoder `{cfg['decoder']}`; word embeddings "
        f"{cfg['word_dim']}-d learned from scratch, no pretrained vectors; character "
        f"{cfg['char_encoder']} ({cfg['char_units']} units); casing features; "
        f"{cfg['num_layers']} x BiLSTM({cfg['lstm_units']}); dropout {cfg['dropout']}; "
        f"unknown-word dropout {cfg.get('word_dropout', 0.0)}; "
        f"{metrics['parameters']:,} parameters) trained by `recipes/ner.py"
        f"{' --quick' if metrics['quick'] else ''}` on the {metrics['backend']} backend.",
        "",
        f"Data: CoNLL-2003 English, IOB2; sentences train/valid/test "
        f"{metrics['sentences']['train']}/{metrics['sentences']['valid']}/"
        f"{metrics['sentences']['test']}. Vocabularies from train: "
        f"{metrics['vocabulary']['words']} words (seen at least "
        f"{settings.get('min_count', '?')} times), {metrics['vocabulary']['chars']} characters.",
        f"Training: {metrics['epochs_run']} epochs in {metrics['train_seconds']} s"
        f"{' (stopped by the time budget)' if metrics['stopped_by_time_budget'] else ''}; "
        f"weights of epoch {metrics['best_epoch']} (best validation F1).",
        "",
        "Entity-level scores (exact span and type, micro-averaged; CoNLL-2003 definition):",
        "",
        "| split / type | precision | recall | F1 | support |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for split in ("valid", "test"):
        s = metrics[split]
        lines.append(
            f"| {split} (all) | {100 * s['precision']:.2f} | {100 * s['recall']:.2f} | "
            f"{100 * s['f1']:.2f} | {s['support']} |"
        )
    for entity_type, s in test["per_type"].items():
        lines.append(
            f"| test {entity_type} | {100 * s['precision']:.2f} | {100 * s['recall']:.2f} | "
            f"{100 * s['f1']:.2f} | {s['support']} |"
        )
    lines += [
        "",
        "Usage (any backend, TensorFlow not needed): `import kzoo.models; "
        f"tagger = kzoo.models.load('saved_models/{name}.keras'); "
        f"tagger.tag(['{SAMPLE}'])` gives one `(token, tag)` pair per token, the tags "
        f"`{metrics['sample']['tags']}` (`tagger.predict` gives the tags only).",
        "",
        "The CoNLL-2003 text is Reuters news (research use only).",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decoder", choices=["crf", "softmax"], default="crf")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run for CI")
    parser.add_argument(
        "--epochs", type=int_range(1), default=None, help="maximum epochs (also with --quick)"
    )
    parser.add_argument(
        "--time-budget-minutes",
        type=float_range(0, min_inclusive=False),
        default=None,
        help="stop training cleanly (after the current batch) once this much time has passed",
    )
    parser.add_argument(
        "--word-dropout",
        type=float_range(0, 1, max_inclusive=False),
        default=None,
        help="probability of replacing a training word by the unknown id (default: MODEL)",
    )
    parser.add_argument(
        "--lstm-units", type=int_range(1), default=None, help="BiLSTM units per direction"
    )
    parser.add_argument(
        "--min-count",
        type=int_range(1),
        default=None,
        help="minimum training count of a word in the vocabulary",
    )
    parser.add_argument(
        "--patience",
        type=int_range(0),
        default=None,
        help="stop after this many epochs without a better valid F1 (0: never)",
    )
    parser.add_argument(
        "--evaluate",
        action="store_true",
        help="only score the saved model in --output-dir on valid and test (any backend)",
    )
    parser.add_argument(
        "--max-train-sentences",
        type=int_range(1),
        default=None,
        help="train on the first N training sentences only (debugging)",
    )
    parser.add_argument(
        "--output-dir",
        default=None,
        help="artifacts folder (default saved_models/, or a temporary folder with --quick)",
    )
    args = parser.parse_args(argv)
    if args.output_dir is None:
        args.output_dir = tempfile.mkdtemp(prefix="kzoo_ner_") if args.quick else "saved_models"
    try:  # before any data is loaded or any model trained
        check_writable_folder(os.path.join(args.output_dir, "ner.md"))
    except OSError as e:
        parser.error(f"argument --output-dir: {e}")
    return args


if __name__ == "__main__":
    main()
