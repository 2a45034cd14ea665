"""Command line: `python -m kzoo predict MODEL "text" ["text" ...]` (or `kzoo predict ...`).

Prints one line per text: the positive-class probability, the label and the
beginning of the text. With no text arguments, reads one text per line from
standard input. The Keras backend is chosen by `KERAS_BACKEND` as usual.

Texts are UTF-8. Command-line arguments and standard input are read as bytes
and decoded exactly as `TextPipeline.predict` decodes bytes: a text that is
not valid UTF-8 is refused with an error naming the text and the byte offset,
and nothing is predicted.

Exit codes: 0 success; 2 a wrong command line or input (missing, empty,
corrupt or wrong kind of model file, a model for another task, text that is
not UTF-8); 1 any other failure; 130 interrupted. Errors print one line on
standard error; `--debug` adds the traceback.
"""

import argparse
import os
import sys
import traceback

# Errors that mean "the command line or an input file is wrong", and their exit code.
USER_ERROR = 2
USER_ERRORS = (OSError, ValueError, TypeError)


class CommandError(Exception):
    """A failure that the CLI reports in one line with the given exit code."""

    def __init__(self, message, code=USER_ERROR):
        super().__init__(message)
        self.code = code


def run_command(function, args, prog, debug=False, failures=()):
    """Runs `function(args)` and turns exceptions into one line on stderr and an exit code.

    User errors (`USER_ERRORS`, `CommandError`) exit with 2, the `failures`
    (e.g. a rejected export) with 1, anything else with 1 and a pointer to
    `--debug`; Ctrl-C exits with 130. With `debug`, the traceback is printed
    as well.
    """
    try:
        result = function(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            traceback.print_exc()
        message = str(error).strip() or type(error).__name__
        if isinstance(error, CommandError):
            code = error.code
        elif isinstance(error, failures):
            code = 1
        elif isinstance(error, USER_ERRORS):
            code = USER_ERROR
        else:
            code = 1
            message = f"{type(error).__name__}: {message}"
            if not debug:
                message += " (run with --debug for the traceback)"
        print(f"{prog}: error: {message}", file=sys.stderr)
        return code
    return 0 if result is None else result


def decode_texts(raw, source):
    """Decodes UTF-8 byte strings as `TextPipeline.predict` does, naming `source` on errors."""
    texts = []
    for i, data in enumerate(raw):
        try:
            texts.append(data.decode("utf-8"))
        except UnicodeDecodeError as error:
            bad = data[error.start : error.end].hex(" ")
            raise CommandError(
                f"{source(i)} is not valid UTF-8: byte(s) {bad} at byte offset {error.start} "
                f"({error.reason}). Re-encode the text as UTF-8."
            ) from None
    return texts


def _read_texts(args):
    if args.texts:
        # argv arrives decoded with surrogateescape; os.fsencode gives back the bytes typed.
        return decode_texts(
            [os.fsencode(text) for text in args.texts], lambda i: f"text argument {i + 1}"
        )
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text-only stdin (e.g. replaced by io.StringIO): already decoded
        return [line.rstrip("\r\n") for line in sys.stdin]
    lines = stream.read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    return decode_texts(lines, lambda i: f"line {i + 1} of standard input")


def _predict(args):
    if isinstance(args.batch_size, int) and args.batch_size < 1:
        raise CommandError(f"--batch-size must be a positive int. Received {args.batch_size}.")
    import kzoo.models

    model = kzoo.models.load(args.model)
    if not hasattr(model, "tokenizer"):
        raise CommandError(
            f"{args.model} holds a {type(model).__name__}, which takes token ids; "
            "`predict` needs a model saved with its vocabulary (kzoo.models.TextPipeline)."
        )
    texts = _read_texts(args)
    if not texts:
        return 0
    probabilities = model.predict(texts, batch_size=args.batch_size)
    for text, p in zip(texts, probabilities):
        preview = text if len(text) <= 60 else text[:57] + "..."
        if probabilities.ndim == 1:
            label = "positive" if p > 0.5 else "negative"
            print(f"{p:.4f}\t{label}\t{preview}")
        else:
            print(f"{int(p.argmax())}\t{' '.join(f'{q:.4f}' for q in p)}\t{preview}")
    return 0


def _parser():
    parser = argparse.ArgumentParser(prog=_prog(), description=__doc__.split("\n")[0])
    debug = {"action": "store_true", "default": argparse.SUPPRESS, "help": "print tracebacks"}
    parser.add_argument("--debug", **debug)
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser(
        "predict", help="classify raw texts with a saved model (e.g. saved_models/imdb_bigru.keras)"
    )
    predict.add_argument("model", help="path of a .keras file saved by a kzoo recipe")
    predict.add_argument("texts", nargs="*", help="texts to classify (default: lines of stdin)")
    predict.add_argument("--batch-size", type=int, default=64)
    predict.add_argument("--debug", **debug)
    return parser


def _prog():
    # The `kzoo` console script and `python -m kzoo` run the same main().
    return "kzoo" if os.path.basename(sys.argv[0] or "") == "kzoo" else "python -m kzoo"


def main(argv=None):
    args = _parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    return run_command(_predict, args, f"{_prog()} predict", debug=debug)


if __name__ == "__main__":
    sys.exit(main())
