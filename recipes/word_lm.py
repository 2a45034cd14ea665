"""Word-level LSTM language model on Penn Treebank (Zaremba et al., 2014).

Trains `kzoo.models.LanguageModel` on Mikolov's PTB (10k vocabulary) with
truncated backpropagation through time: the training stream is cut into
BATCH_SIZE contiguous rows and the LSTM state is carried from one window to
the next (stateful model, reset at each epoch). Reports validation and test
perplexity = exp(mean cross-entropy over every token of the split, <eos>
included), scoring each split as one stream with the state carried across it
(the first token's context is an <eos>, the end of the previous sentence).

    KERAS_BACKEND=tensorflow python recipes/word_lm.py                      # "small"
    KERAS_BACKEND=tensorflow python recipes/word_lm.py --time-budget-minutes 25
    KERAS_BACKEND=jax python recipes/word_lm.py --config medium             # GPU users
    KERAS_BACKEND=torch python recipes/word_lm.py --quick                   # CI smoke test

Data: kzoo.datasets.ptb (set KZOO_DATA_DIR=/path/to/shared/data to work
offline).

Zaremba et al. minimise the loss summed over the BPTT window with SGD at
learning rate 1 and clip the global gradient norm at 5. Keras averages the
loss over the window instead, so the same updates are SGD with learning rate
SGD_LR * T and clip norm MAX_GRAD_NORM / T (T = window length).
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

from kzoo.callbacks import TrainingBudget  # noqa: E402
from kzoo.datasets import ptb  # noqa: E402
from kzoo.models import LanguageModel  # noqa: E402
from kzoo.models.language_model import bptt_batches  # noqa: E402
from kzoo.utils import check_writable_folder, float_range, int_range, write_text  # noqa: E402

# === Settings: the configurations of Zaremba et al. (2014), Table 1 ===
CONFIGS = {
    # non-regularised 2x200 LSTM: test perplexity 114.5 in the paper
    "small": dict(
        hidden_units=200,
        dropout=0.0,
        batch_size=20,
        sequence_length=20,
        epochs=13,
        sgd_lr=1.0,
        lr_decay=0.5,
        decay_after=4,
        max_grad_norm=5.0,
    ),
    # 2x650 LSTM, dropout 0.5: test perplexity 82.7 in the paper (needs a GPU)
    "medium": dict(
        hidden_units=650,
        dropout=0.5,
        batch_size=20,
        sequence_length=35,
        epochs=39,
        sgd_lr=1.0,
        lr_decay=0.8,
        decay_after=6,
        max_grad_norm=5.0,
    ),
}
CONFIG = "small"
NUM_LAYERS = 2
LOG_EVERY = 200  # training steps between progress lines
EVAL_SEQUENCE_LENGTH = 500  # tokens per compiled call when scoring a stream
MAX_FILE_MB = 10.0  # larger float32 weights are stored as float16 (--save-dtype auto)
SAMPLE_LENGTH = 30
SAMPLE_PROMPTS = ("the company said", "in new york")
SEED = 1

# --quick: a few steps of a tiny model on slices of PTB (CI).
QUICK = dict(
    hidden_units=16,
    batch_size=4,
    sequence_length=10,
    epochs=1,
    max_steps=6,
    train_tokens=5_000,
    eval_tokens=1_000,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=CONFIG, choices=sorted(CONFIGS))
    parser.add_argument(
        "--epochs",
        type=int_range(1),
        default=None,
        help="default: the config's (or --quick's)",
    )
    parser.add_argument(
        "--dropout",
        type=float_range(0, 1, max_inclusive=False),
        default=None,
        help="default: the config's",
    )
    parser.add_argument("--tie-weights", action="store_true", help="share input/output embeddings")
    parser.add_argument(
        "--time-budget-minutes",
        type=float_range(0, min_inclusive=False),
        default=None,
        help="stop training after this much wall time, then evaluate and save",
    )
    parser.add_argument(
        "--max-steps", type=int_range(1), default=None, help="stop after this many steps"
    )
    parser.add_argument(
        "--save-dtype",
        default="auto",
        choices=["auto", "float32", "float16"],
        help=f"auto: float16 when float32 weights exceed {MAX_FILE_MB:g} MB",
    )
    parser.add_argument(
        "--output-dir", default=None, help="default: saved_models/ (quick: a temp dir)"
    )
    parser.add_argument("--seed", type=int_range(0), default=SEED)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (CI)")
    args = parser.parse_args(argv)
    if args.output_dir is None:
        args.output_dir = (
            tempfile.mkdtemp(prefix="word_lm_quick_")
            if args.quick
            else os.path.join(REPO_ROOT, "saved_models")
        )
    try:  # before any data is loaded or any model trained
        check_writable_folder(os.path.join(args.output_dir, "word_lm.md"))
    except OSError as e:
        parser.error(f"argument --output-dir: {e}")
    return args


def make_config(args):
    """The training configuration: --config, then --quick's, then explicit flags."""
    config = dict(CONFIGS[args.config])
    if args.quick:
        config.update({k: QUICK[k] for k in ("hidden_units", "batch_size", "sequence_length")})
        config["epochs"] = QUICK["epochs"]
        if args.max_steps is None:
            args.max_steps = QUICK["max_steps"]
    for key in ("epochs", "dropout"):  # given on the command line: wins, also over --quick
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    return config


def main(argv=None):
    args = parse_args(argv)
    config = make_config(args)
    output_dir = args.output_dir
    keras.utils.set_random_seed(args.seed)
    start = time.time()
    seconds = None if args.time_budget_minutes is None else 60 * args.time_budget_minutes

    train_ids, valid_ids, test_ids, vocabulary = ptb.load_data()
    if args.quick:
        train_ids = train_ids[: QUICK["train_tokens"]]
        valid_ids = valid_ids[: QUICK["eval_tokens"]]
        test_ids = test_ids[: QUICK["eval_tokens"]]
    eos = vocabulary.index(ptb.EOS)

    units, window = config["hidden_units"], config["sequence_length"]
    model = LanguageModel(
        vocabulary=vocabulary,
        token_level="word",
        embedding_dim=units,
        units=units,
        num_layers=NUM_LAYERS,
        dropout=config["dropout"],
        tie_weights=args.tie_weights,
        stateful=True,
        batch_size=config["batch_size"],
        seed=args.seed,
        name=f"word_lm_ptb_{args.config}",
    )
    x, y = bptt_batches(train_ids, config["batch_size"], window)
    steps_per_epoch = len(x) // config["batch_size"]
    total_steps = steps_per_epoch * config["epochs"]
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)
    base_lr = config["sgd_lr"] * window
    model.compile(
        optimizer=keras.optimizers.SGD(base_lr, global_clipnorm=config["max_grad_norm"] / window),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    print(
        f"backend={keras.backend.backend()} config={args.config} tokens: train "
        f"{len(train_ids):,} valid {len(valid_ids):,} test {len(test_ids):,}; "
        f"vocabulary {len(vocabulary)}; parameters {model.count_params():,}; "
        f"{steps_per_epoch} steps/epoch"
    )

    def score(ids):
        return model.evaluate_stream(
            ids, batch_size=1, sequence_length=EVAL_SEQUENCE_LENGTH, start_token_id=eos
        )

    budget = TrainingBudget(seconds, total_steps)
    history = []
    step = 0
    valid = None
    for epoch in range(1, config["epochs"] + 1):
        lr = base_lr * config["lr_decay"] ** max(epoch - config["decay_after"], 0)
        model.optimizer.learning_rate.assign(lr)
        model.reset_states()
        for first in range(0, steps_per_epoch, LOG_EVERY):
            steps = min(LOG_EVERY, steps_per_epoch - first, total_steps - step)
            rows = slice(first * config["batch_size"], (first + steps) * config["batch_size"])
            fit = model.fit(
                x[rows],
                y[rows],
                batch_size=config["batch_size"],
                shuffle=False,
                epochs=1,
                verbose=0,
                callbacks=[budget],
            )
            step = budget.steps
            loss = fit.history["loss"][-1]
            print(
                f"epoch {epoch} step {step}/{total_steps} lr {lr / window:.3g} (per window sum) "
                f"train perplexity {math.exp(loss):.1f} {time.time() - start:.0f}s",
                flush=True,
            )
            if budget.stopped:
                break
        valid = score(valid_ids)
        history.append((epoch, step, valid["perplexity"], time.time() - start))
        print(
            f"epoch {epoch}: validation perplexity {valid['perplexity']:.2f} "
            f"({valid['tokens']:,} tokens) {time.time() - start:.0f}s",
            flush=True,
        )
        if budget.stopped:
            print(f"stopped: {budget.reason}")
            break
    train_seconds = time.time() - start

    test = score(test_ids)
    print(f"test perplexity {test['perplexity']:.2f} ({test['tokens']:,} tokens)")
    for prompt in SAMPLE_PROMPTS:
        text = model.generate(
            prompt, max_length=len(prompt.split()) + SAMPLE_LENGTH, sampler="top_k", k=10, seed=0
        )
        print(f"--- sample (top-k 10): {text}")

    path, dtype = _save(model, output_dir, args.save_dtype)
    loaded = keras.saving.load_model(path)
    saved_test = loaded.evaluate_stream(
        test_ids, batch_size=1, sequence_length=EVAL_SEQUENCE_LENGTH, start_token_id=eos
    )
    print(
        f"saved {path} ({os.path.getsize(path) / 1e6:.2f} MB, {dtype}); "
        f"test perplexity of the saved file {saved_test['perplexity']:.2f}"
    )
    card = _model_card(
        args, config, model, history, valid, test, saved_test, dtype, train_seconds, step, path
    )
    card_path = os.path.splitext(path)[0] + ".md"
    write_text(card_path, card)
    print(f"wrote {card_path}; total {time.time() - start:.0f}s")
    return {
        "valid": valid,
        "test": test,
        "saved_test": saved_test,
        "seconds": train_seconds,
        "steps": step,
        "path": path,
    }


def _save(model, output_dir, save_dtype):
    """Saves a stateless copy (any batch size) as <output_dir>/<name>.keras.

    With float16 storage the weights inside the file are rounded to float16;
    `keras.saving.load_model` casts them back into a float32 model.
    """
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, f"{model.name}.keras")
    return path, model.save_stateless(path, save_dtype, max_megabytes=MAX_FILE_MB)


def _model_card(args, config, model, history, valid, test, saved_test, dtype, seconds, steps, path):
    curve = "\n".join(
        f"| {epoch} | {step} | {ppl:.2f} | {t:.0f} |" for epoch, step, ppl, t in history
    )
    command = "python recipes/word_lm.py " + " ".join(sys.argv[1:])
    window = config["sequence_length"]
    return f"""# {model.name}

Word-level {NUM_LAYERS}x{config["hidden_units"]} LSTM language model
(`kzoo.models.LanguageModel`) trained by `recipes/word_lm.py` on Penn Treebank
(Mikolov's 10k-word version), configuration "{args.config}" of Zaremba et al. (2014).

- Command: `KERAS_BACKEND={keras.backend.backend()} {command}`
- Backend: {keras.backend.backend()}; training wall time {seconds:.0f} s ({os.cpu_count()} CPU cores visible)
- Training: {steps} steps of {config["batch_size"]} x {window} tokens
  ({steps * config["batch_size"] * window / 929_589:.2f} epochs), SGD with the paper's schedule (learning
  rate {config["sgd_lr"]} on the window-summed loss, x{config["lr_decay"]} per epoch after epoch
  {config["decay_after"]}, global clip norm {config["max_grad_norm"]}), dropout {config["dropout"]},
  tied embeddings: {args.tie_weights}, state carried between windows
- Parameters: {model.count_params():,}; file `{os.path.basename(path)}` stores {dtype} weights
  (loaded as a float32 model)
- **Validation perplexity: {valid["perplexity"]:.2f}** ({valid["tokens"]:,} tokens)
- **Test perplexity: {test["perplexity"]:.2f}** ({test["tokens"]:,} tokens, every test token
  including `<eos>`, one stream with the state carried); the saved {dtype} file gives
  {saved_test["perplexity"]:.2f}

| epoch | step | validation perplexity | seconds |
| ---: | ---: | ---: | ---: |
{curve}

Load and sample:

```python
import keras
import kzoo.models  # registers LanguageModel for loading

model = keras.saving.load_model("saved_models/{os.path.basename(path)}")
print(model.generate("the company said", max_length=30, sampler="top_p", p=0.9, seed=0))
```
"""


if __name__ == "__main__":
    main()
