"""Command line: `python -m kzoo predict MODEL "text" ["text" ...]`.

Prints one line per text: the positive-class probability, the label and the
beginning of the text. With no text arguments, reads one text per line from
standard input. The Keras backend is chosen by `KERAS_BACKEND` as usual.
"""

import argparse
import sys


def _predict(args):
    import kzoo.models

    texts = args.texts
    if not texts:
        texts = [line.rstrip("\n") for line in sys.stdin]
    model = kzoo.models.load(args.model)
    if not hasattr(model, "tokenizer"):
        raise ValueError(
            f"{args.model} holds a {type(model).__name__}, which takes token ids; "
            "`predict` needs a model saved with its vocabulary (kzoo.models.TextPipeline)."
        )
    probabilities = model.predict(texts, batch_size=args.batch_size)
    for text, p in zip(texts, probabilities):
        preview = text if len(text) <= 60 else text[:57] + "..."
        if probabilities.ndim == 1:
            label = "positive" if p > 0.5 else "negative"
            print(f"{p:.4f}\t{label}\t{preview}")
        else:
            print(f"{int(p.argmax())}\t{' '.join(f'{q:.4f}' for q in p)}\t{preview}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m kzoo", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser(
        "predict", help="classify raw texts with a saved model (e.g. saved_models/imdb_bigru.keras)"
    )
    predict.add_argument("model", help="path of a .keras file saved by a kzoo recipe")
    predict.add_argument("texts", nargs="*", help="texts to classify (default: lines of stdin)")
    predict.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    try:
        _predict(args)
    except (OSError, ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
