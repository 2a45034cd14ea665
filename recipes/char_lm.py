"""Character-level LSTM language model on Tiny Shakespeare (or Nietzsche).

Trains `kzoo.models.LanguageModel` on next-character prediction with truncated
backpropagation through time: the corpus is cut into BATCH_SIZE contiguous
rows and the LSTM state is carried from one window to the next (stateful
model, states reset at each epoch). Prints the validation loss in nats and
bits per character and samples at several temperatures after every epoch,
then saves the model and a model card to saved_models/.

    KERAS_BACKEND=tensorflow python recipes/char_lm.py                     # full run
    KERAS_BACKEND=tensorflow python recipes/char_lm.py --time-budget-minutes 25
    KERAS_BACKEND=jax python recipes/char_lm.py --corpus nietzsche
    KERAS_BACKEND=torch python recipes/char_lm.py --quick                  # CI smoke test

Data: kzoo.datasets.text_corpora (set KZOO_DATA_DIR=/path/to/shared/data to
work offline). The last VALID_FRACTION of the text is the validation split.
"""

import argparse
import math
import os
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import keras  # noqa: E402  (after the path set-up; KERAS_BACKEND picks the backend)
import numpy as np  # noqa: E402

from kzoo.callbacks import TrainingBudget  # noqa: E402
from kzoo.datasets.text_corpora import load_text  # noqa: E402
from kzoo.models import LanguageModel  # noqa: E402
from kzoo.models.language_model import bptt_batches  # noqa: E402
from kzoo.utils import check_writable_folder, float_range, int_range, write_text  # noqa: E402

# === Settings (a full run) ===
CORPUS = "tinyshakespeare"
VALID_FRACTION = 0.1
EMBEDDING_DIM = 64
HIDDEN_UNITS = 512
NUM_LAYERS = 2
CELL = "lstm"
DROPOUT = 0.25
BATCH_SIZE = 64
SEQUENCE_LENGTH = 100
EPOCHS = 25
LEARNING_RATE = 2e-3  # Adam, cosine-decayed to 10% over EPOCHS
CLIPNORM = 5.0  # global gradient norm
LOG_EVERY = 50  # training steps between progress lines
VALID_BATCH_SIZE = 32  # parallel contiguous parts of the validation text
SAMPLE_TEMPERATURES = (0.5, 0.8, 1.0)
SAMPLE_LENGTH = 300
SAMPLE_PROMPT = "\n"
MAX_FILE_MB = 10.0  # larger float32 weights are stored as float16
SEED = 1

# --quick: a few steps of a tiny model on a slice of the corpus (CI).
QUICK = dict(
    max_chars=20_000,
    embedding_dim=8,
    hidden_units=16,
    batch_size=8,
    sequence_length=25,
    epochs=1,
    max_steps=6,
    sample_length=40,
    valid_chars=2_000,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=CORPUS, choices=["tinyshakespeare", "nietzsche"])
    # Flags that --quick also sets default to None: a value given on the
    # command line wins over both the full-run and the quick settings.
    positive = int_range(1)
    parser.add_argument("--embedding-dim", type=positive, default=None, help=f"{EMBEDDING_DIM}")
    parser.add_argument("--hidden-units", type=positive, default=None, help=f"{HIDDEN_UNITS}")
    parser.add_argument("--num-layers", type=positive, default=NUM_LAYERS)
    parser.add_argument("--cell", default=CELL, choices=["lstm", "gru"])
    parser.add_argument("--dropout", type=float_range(0, 1, max_inclusive=False), default=DROPOUT)
    parser.add_argument("--batch-size", type=positive, default=None, help=f"{BATCH_SIZE}")
    parser.add_argument("--sequence-length", type=positive, default=None, help=f"{SEQUENCE_LENGTH}")
    parser.add_argument("--epochs", type=positive, default=None, help=f"{EPOCHS}")
    parser.add_argument(
        "--learning-rate", type=float_range(0, min_inclusive=False), default=LEARNING_RATE
    )
    parser.add_argument(
        "--stateful",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="carry the LSTM state between consecutive windows (default: on)",
    )
    parser.add_argument(
        "--time-budget-minutes",
        type=float_range(0, min_inclusive=False),
        default=None,
        help="stop training after this much wall time, then evaluate and save",
    )
    parser.add_argument(
        "--max-steps", type=positive, default=None, help="stop after this many steps"
    )
    parser.add_argument(
        "--output-dir", default=None, help="default: saved_models/ (quick: a temp dir)"
    )
    parser.add_argument("--seed", type=int_range(0), default=SEED)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (CI)")
    args = parser.parse_args(argv)
    full = dict(
        embedding_dim=EMBEDDING_DIM,
        hidden_units=HIDDEN_UNITS,
        batch_size=BATCH_SIZE,
        sequence_length=SEQUENCE_LENGTH,
        epochs=EPOCHS,
    )
    for key, value in full.items():
        if getattr(args, key) is None:
            setattr(args, key, QUICK[key] if args.quick else value)
    if args.quick and args.max_steps is None:
        args.max_steps = QUICK["max_steps"]
    if args.output_dir is None:
        args.output_dir = (
            tempfile.mkdtemp(prefix="char_lm_quick_")
            if args.quick
            else os.path.join(REPO_ROOT, "saved_models")
        )
    try:  # before any data is loaded or any model trained
        check_writable_folder(os.path.join(args.output_dir, "char_lm.md"))
    except OSError as e:
        parser.error(f"argument --output-dir: {e}")
    return args


def load_corpus(args):
    text = load_text(args.corpus)
    if args.quick:
        text = text[: QUICK["max_chars"]]
    split = int(len(text) * (1 - VALID_FRACTION))
    train_text, valid_text = text[:split], text[split:]
    if args.quick:
        valid_text = valid_text[: QUICK["valid_chars"]]
    vocabulary = sorted(set(text))
    return train_text, valid_text, vocabulary


def main(argv=None):
    args = parse_args(argv)
    sample_length = QUICK["sample_length"] if args.quick else SAMPLE_LENGTH
    output_dir = args.output_dir
    keras.utils.set_random_seed(args.seed)
    start = time.time()
    seconds = None if args.time_budget_minutes is None else 60 * args.time_budget_minutes

    train_text, valid_text, vocabulary = load_corpus(args)
    model = LanguageModel(
        vocabulary=vocabulary,
        token_level="character",
        embedding_dim=args.embedding_dim,
        units=args.hidden_units,
        num_layers=args.num_layers,
        cell_type=args.cell,
        dropout=args.dropout,
        stateful=args.stateful,
        batch_size=args.batch_size,
        seed=args.seed,
        name=f"char_lm_{args.corpus}",
    )
    train_ids = np.asarray(model.encode(train_text), dtype="int32")
    valid_ids = np.asarray(model.encode(valid_text), dtype="int32")
    x, y = bptt_batches(train_ids, args.batch_size, args.sequence_length)
    steps_per_epoch = len(x) // args.batch_size
    total_steps = steps_per_epoch * args.epochs
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)
    schedule = keras.optimizers.schedules.CosineDecay(
        args.learning_rate, decay_steps=max(total_steps, 1), alpha=0.1
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule, global_clipnorm=CLIPNORM),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    print(
        f"backend={keras.backend.backend()} corpus={args.corpus} train={len(train_ids):,} "
        f"valid={len(valid_ids):,} chars, vocabulary={len(vocabulary)}, "
        f"parameters={model.count_params():,}, {steps_per_epoch} steps/epoch"
    )

    def validate():
        result = model.evaluate_stream(
            valid_ids, batch_size=min(VALID_BATCH_SIZE, len(valid_ids) - 1), sequence_length=256
        )
        return result

    def show_samples():
        for temperature in SAMPLE_TEMPERATURES:
            text = model.generate(
                SAMPLE_PROMPT,
                max_length=sample_length,
                sampler="random",
                temperature=temperature,
                seed=args.seed,
            )
            print(f"--- sample, temperature {temperature}:\n{text.strip()}\n")

    budget = TrainingBudget(seconds, total_steps)
    history = []
    step = 0
    for epoch in range(1, args.epochs + 1):
        model.reset_states()
        for first in range(0, steps_per_epoch, LOG_EVERY):
            steps = min(LOG_EVERY, steps_per_epoch - first, total_steps - step)
            rows = slice(first * args.batch_size, (first + steps) * args.batch_size)
            fit = model.fit(
                x[rows],
                y[rows],
                batch_size=args.batch_size,
                shuffle=False,
                epochs=1,
                verbose=0,
                callbacks=[budget],
            )
            step = budget.steps
            loss = fit.history["loss"][-1]
            print(
                f"epoch {epoch} step {step}/{total_steps} train loss {loss:.4f} nats "
                f"({loss / math.log(2):.3f} bpc) {time.time() - start:.0f}s",
                flush=True,
            )
            if budget.stopped:
                break
        valid = validate()
        history.append((epoch, step, valid["loss"], time.time() - start))
        print(
            f"epoch {epoch}: validation loss {valid['loss']:.4f} nats/char, "
            f"{valid['bits_per_token']:.4f} bits/char ({valid['tokens']:,} chars), "
            f"{time.time() - start:.0f}s"
        )
        show_samples()
        if budget.stopped:
            print(f"stopped: {budget.reason}")
            break

    train_seconds = time.time() - start
    path, dtype = _save(model, output_dir)
    card = _model_card(args, model, history, valid, train_seconds, step, path, dtype, sample_length)
    card_path = os.path.splitext(path)[0] + ".md"
    write_text(card_path, card)
    print(f"saved {path} ({os.path.getsize(path) / 1e6:.2f} MB) and {card_path}")
    return {"valid": valid, "seconds": train_seconds, "steps": step, "path": path}


def _save(model, output_dir):
    """Saves a stateless copy (any batch size) as <output_dir>/<name>.keras."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, f"{model.name}.keras")
    return path, model.save_stateless(path, max_megabytes=MAX_FILE_MB)


def _model_card(args, model, history, valid, seconds, steps, path, dtype, sample_length):
    curve = "\n".join(
        f"| {epoch} | {step} | {loss:.4f} | {loss / math.log(2):.4f} | {t:.0f} |"
        for epoch, step, loss, t in history
    )
    sample = model.generate(
        SAMPLE_PROMPT, max_length=sample_length, sampler="random", temperature=0.8, seed=0
    )
    command = "python recipes/char_lm.py " + " ".join(sys.argv[1:])
    return f"""# {model.name}

Character-level {args.num_layers}x{args.hidden_units} {args.cell.upper()} language model
(`kzoo.models.LanguageModel`) trained by `recipes/char_lm.py` on `{args.corpus}`
(last {VALID_FRACTION:.0%} of the text held out for validation).

- Command: `KERAS_BACKEND={keras.backend.backend()} {command}`
- Backend: {keras.backend.backend()}; wall time {seconds:.0f} s ({os.cpu_count()} CPU cores visible)
- Training: {steps} steps of {args.batch_size} x {args.sequence_length} characters,
  Adam (lr {args.learning_rate}, cosine decay), global clipnorm {CLIPNORM},
  dropout {args.dropout}, state carried between windows: {args.stateful}
- Parameters: {model.count_params():,}; file `{os.path.basename(path)}` ({dtype} weights)
- **Validation loss: {valid["loss"]:.4f} nats/char = {valid["bits_per_token"]:.4f} bits/char**
  ({valid["tokens"]:,} characters, {VALID_BATCH_SIZE} contiguous parts, state carried within each)

| epoch | step | validation nats/char | bits/char | seconds |
| ---: | ---: | ---: | ---: | ---: |
{curve}

Load and sample:

```python
import keras
import kzoo.models  # registers LanguageModel for loading

model = keras.saving.load_model("saved_models/{os.path.basename(path)}")
print(model.generate("ROMEO:", max_length=300, sampler="top_k", k=5, seed=0))
```

Sample (temperature 0.8, seed 0, prompt "\\n"):

```
{sample.strip()}
```
"""


if __name__ == "__main__":
    main()
