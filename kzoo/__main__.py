"""Command line: `python -m kzoo predict MODEL_OR_PRESET [INPUT ...]`, `python -m kzoo presets`.

`predict` loads a preset by name (`python -m kzoo presets` lists them) or a
`.keras` file by path, and runs the model's task on raw inputs, one result
per input:

    python -m kzoo predict imdb_bigru "A wonderful film." "Dull and far too long."
    python -m kzoo predict ner_crf "EU rejects German call to boycott British lamb ."
    python -m kzoo predict translate_spa_eng "¿Dónde está la estación?" --sampler beam
    python -m kzoo predict char_lm_tinyshakespeare "ROMEO:" --max-length 200 --sampler top_k --seed 0
    python -m kzoo predict forecast_airline airline.csv --column passengers --date-column month

The task comes from the model (its `task` attribute): `classify` prints the
probability, the label and the text; `tag` prints `token/TAG` pairs;
`translate` and `generate` print the output text; `forecast` reads the
series (and its dates) from CSV files and prints the forecast steps. With no
inputs, texts are read one per line from standard input (a CSV document for
`forecast`). `--json` prints one JSON document instead.

Texts are UTF-8. Command-line arguments and standard input are read as bytes
and decoded as the models decode bytes: a text that is not valid UTF-8 is
refused with an error naming the text and the byte offset, and nothing is
predicted. The Keras backend is chosen by `KERAS_BACKEND` as usual.

Exit codes: 0 success; 2 a wrong command line or input (missing, empty,
corrupt or wrong kind of model file, an unknown preset, an option the model's
task does not take, text that is not UTF-8, a CSV without the column); 1 any
other failure; 130 interrupted. Errors print one line on standard error;
`--debug` adds the traceback.
"""

import argparse
import csv
import io
import json
import os
import sys
import traceback

# Errors that mean "the command line or an input file is wrong", and their exit code.
USER_ERROR = 2
USER_ERRORS = (OSError, ValueError, TypeError)
TASKS = ("classify", "tag", "translate", "generate", "forecast")
# Options of `predict` that only some tasks take: dest -> (flag, tasks).
TASK_OPTIONS = {
    "sampler": ("--sampler", ("translate", "generate")),
    "num_beams": ("--num-beams", ("translate", "generate")),
    "length_penalty": ("--length-penalty", ("translate", "generate")),
    "max_length": ("--max-length", ("translate", "generate")),
    "temperature": ("--temperature", ("translate", "generate")),
    "top_k": ("--top-k", ("translate", "generate")),
    "top_p": ("--top-p", ("translate", "generate")),
    "seed": ("--seed", ("translate", "generate")),
    "column": ("--column", ("forecast",)),
    "date_column": ("--date-column", ("forecast",)),
}
DEFAULT_MAX_LENGTH = 100  # generate: total length of each output, prompt included
PREVIEW = 60


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


# --- inputs -------------------------------------------------------------------


def decode_texts(raw, source):
    """Decodes UTF-8 byte strings as the models decode bytes, naming `source(i)` on errors."""
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


def _stdin_bytes():
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text-only stdin (e.g. replaced by io.StringIO): already decoded
        return sys.stdin.read().encode("utf-8", "surrogateescape")
    return stream.read()


def _read_texts(inputs):
    if inputs:
        # argv arrives decoded with surrogateescape; os.fsencode gives back the bytes typed.
        return decode_texts(
            [os.fsencode(text) for text in inputs], lambda i: f"text argument {i + 1}"
        )
    lines = _stdin_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    return decode_texts(lines, lambda i: f"line {i + 1} of standard input")


def _read_csv(source, text, column, date_column, needs_dates):
    """`(values, dates or None)` of one CSV document (a header row, then rows)."""
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise CommandError(f"{source} has no data rows: a CSV file with a header row is expected.")
    header = [name.strip() for name in rows[0]]

    def index_of(name, flag):
        if name in header:
            return header.index(name)
        if name.lstrip("-").isdigit() and -len(header) <= int(name) < len(header):
            return int(name) % len(header)
        raise CommandError(f"{source} has no column {name!r} ({flag}); its columns are {header}.")

    value_index = index_of(column, "--column") if column is not None else len(header) - 1
    date_index = None
    if date_column is not None:
        date_index = index_of(date_column, "--date-column")
    elif needs_dates and len(header) > 1 and value_index != 0:
        date_index = 0  # the usual layout: date, value
    values = []
    for line, row in enumerate(rows[1:], start=2):
        try:
            values.append(float(row[value_index]))
        except (IndexError, ValueError):
            cell = row[value_index] if value_index < len(row) else "<missing>"
            raise CommandError(
                f"{source}, row {line}: column {header[value_index]!r} holds {cell!r}, not a "
                "number."
            ) from None
    dates = None
    if date_index is not None:
        dates = [row[date_index].strip() if date_index < len(row) else "" for row in rows[1:]]
    return values, dates


def _read_series(inputs, column, date_column, needs_dates):
    documents = []
    for path in inputs or ["-"]:
        if path == "-":
            data, source = _stdin_bytes(), "standard input"
        else:
            with open(path, "rb") as f:
                data, source = f.read(), path
        (text,) = decode_texts([data], lambda i, source=source: source)
        documents.append((source, *_read_csv(source, text, column, date_column, needs_dates)))
    return documents


# --- tasks --------------------------------------------------------------------


def _preview(text):
    text = " ".join(text.split("\n")) if "\n" in text else text
    return text if len(text) <= PREVIEW else text[: PREVIEW - 3] + "..."


def _task_of(model, name):
    task = getattr(model, "task", None)
    if task is None and hasattr(model, "tokenizer") and hasattr(model, "predict"):
        task = "classify"  # a TextPipeline: raw texts in, probabilities out
    takes_ids = task is None and any("int" in str(x.dtype) for x in _symbolic_inputs(model))
    if task != "forecast" and (takes_ids or (task and getattr(model, "preprocessor", 0) is None)):
        raise CommandError(
            f"{name} holds a {type(model).__name__}, which takes token ids; `predict` needs "
            "a model saved with its vocabulary (a task with its preprocessor)."
        )
    if task not in TASKS:
        raise CommandError(
            f"{name} holds a {type(model).__name__}, which is not a kzoo task model "
            f"({', '.join(TASKS)}); `predict` cannot run it."
        )
    return task


def _symbolic_inputs(model):
    try:
        return list(model.inputs or [])
    except (AttributeError, ValueError):  # a subclassed model without a graph
        return []


def _check_options(args, task):
    for dest, (flag, tasks) in TASK_OPTIONS.items():
        if getattr(args, dest) is not None and task not in tasks:
            raise CommandError(
                f"{flag} applies to {' and '.join(tasks)} models; {args.model} is a {task} model."
            )


# Sampler options of translate/generate: flag dest -> `get_sampler` option name.
SAMPLER_OPTIONS = {
    "temperature": "temperature",
    "top_k": "k",
    "top_p": "p",
    "num_beams": "num_beams",
    "length_penalty": "length_penalty",
}


def _sampler_arguments(args):
    """`(sampler, options)` for translate/generate; a sampler implied by its options."""
    options = {
        name: getattr(args, dest)
        for dest, name in SAMPLER_OPTIONS.items()
        if getattr(args, dest) is not None
    }
    sampler = args.sampler
    if sampler is None:
        if args.num_beams is not None or args.length_penalty is not None:
            sampler = "beam"
        elif args.top_p is not None:
            sampler = "top_p"
        elif args.top_k is not None:
            sampler = "top_k"
        elif args.temperature is not None:
            sampler = "random"
        else:
            sampler = "greedy"
    return sampler, options


def _classify(model, texts, args):
    import numpy as np

    probabilities = np.asarray(model.predict(texts, batch_size=args.batch_size))
    if probabilities.ndim == 1:
        probabilities = probabilities[:, None]
    binary = probabilities.shape[-1] == 1
    names = getattr(model, "class_names", None)
    names = list(names) if names else (["negative", "positive"] if binary else None)
    results, lines = [], []
    for text, p in zip(texts, probabilities):
        if binary:
            index, shown = int(p[0] > 0.5), float(p[0])
            result = {"text": text, "probability": shown}
        else:
            index = int(p.argmax())
            shown = float(p[index])
            result = {"text": text, "probabilities": [float(q) for q in p]}
        label = names[index] if names and index < len(names) else str(index)
        result["label"] = label
        results.append(result)
        lines.append(f"{shown:.4f}\t{label}\t{_preview(text)}")
    return results, lines


def _tag(model, texts, args):
    tagged = model.tag(texts, batch_size=args.batch_size)
    results, lines = [], []
    for text, pairs in zip(texts, tagged):
        results.append(
            {"text": text, "tokens": [t for t, _ in pairs], "tags": [tag for _, tag in pairs]}
        )
        lines.append(" ".join(f"{token}/{tag}" for token, tag in pairs))
    return results, lines


def _translate(model, texts, args):
    sampler, options = _sampler_arguments(args)
    translations = model.translate(
        texts,
        sampler=sampler,
        max_length=args.max_length,
        seed=args.seed,
        batch_size=args.batch_size,
        **options,
    )
    results = [{"text": t, "translation": out} for t, out in zip(texts, translations)]
    return results, list(translations)


def _generate(model, prompts, args):
    sampler, options = _sampler_arguments(args)
    max_length = DEFAULT_MAX_LENGTH if args.max_length is None else args.max_length
    outputs = model.generate(
        list(prompts), max_length=max_length, sampler=sampler, seed=args.seed, **options
    )
    results = [{"prompt": p, "text": out} for p, out in zip(prompts, outputs)]
    lines = [out if isinstance(out, str) else "\n".join(out) for out in outputs]
    return results, lines


def _forecast(model, inputs, args):
    import numpy as np

    calendar = getattr(getattr(model, "preprocessor", None), "calendar", None)
    documents = _read_series(inputs, args.column, args.date_column, needs_dates=bool(calendar))
    results, lines = [], []
    for source, values, dates in documents:
        kwargs = {"dates": dates} if calendar and dates is not None else {}
        forecast = np.asarray(model.forecast(values, batch_size=args.batch_size, **kwargs))
        future = None
        if dates is not None:
            from kzoo.models.forecaster import next_dates

            try:
                future = [str(d) for d in next_dates(dates, len(forecast))]
            except ValueError:
                future = None  # dates in another format: steps are numbered instead
        steps = future or [f"+{h + 1}" for h in range(len(forecast))]
        results.append({"input": source, "steps": steps, "forecast": [float(v) for v in forecast]})
        if len(documents) > 1:
            lines.append(f"# {source}")
        lines.extend(f"{step}\t{value:.6g}" for step, value in zip(steps, forecast))
    return results, lines


RUNNERS = {
    "classify": _classify,
    "tag": _tag,
    "translate": _translate,
    "generate": _generate,
    "forecast": _forecast,
}


def _predict(args):
    if args.batch_size < 1:
        raise CommandError(f"--batch-size must be a positive int. Received {args.batch_size}.")
    import kzoo.models

    model = kzoo.models.load(args.model, compile=False)
    task = _task_of(model, args.model)
    _check_options(args, task)
    inputs = args.inputs if task == "forecast" else _read_texts(args.inputs)
    if task != "forecast" and not inputs:
        return 0
    results, lines = RUNNERS[task](model, inputs, args)
    if args.json:
        document = {"model": args.model, "task": task, "results": results}
        print(json.dumps(document, ensure_ascii=False, indent=1))
    else:
        for line in lines:
            print(line)
    return 0


def _presets(args):
    import kzoo.models
    from kzoo.models import presets

    rows = []
    for name in presets.list_presets():
        preset = presets.get_preset(name)
        task_class = getattr(kzoo.models, preset.task_class, None)
        rows.append(
            {
                "name": name,
                "task": getattr(task_class, "task", None),
                "class": preset.task_class,
                "metrics": preset.metrics,
                "description": preset.description,
                "file": preset.file,
                "card": preset.card,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        metrics = ", ".join(f"{k} {v:g}" for k, v in row["metrics"].items())
        print(f"{row['name']:<{width}}  {row['task'] or '?':<9}  {row['description']}  [{metrics}]")
    return 0


def _parser():
    parser = argparse.ArgumentParser(prog=_prog(), description=__doc__.split("\n")[0])
    debug = {"action": "store_true", "default": argparse.SUPPRESS, "help": "print tracebacks"}
    parser.add_argument("--debug", **debug)
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser(
        "predict",
        help="run a model's task on raw inputs",
        description="Run a preset or a saved kzoo model on raw inputs (texts or CSV files).",
    )
    predict.add_argument("model", help="preset name (see `presets`) or path of a .keras file")
    predict.add_argument(
        "inputs",
        nargs="*",
        help="texts (classify, tag, translate, generate) or CSV files (forecast); "
        "default: standard input",
    )
    predict.add_argument("--json", action="store_true", help="print one JSON document")
    predict.add_argument("--batch-size", type=int, default=64)
    predict.add_argument("--debug", **debug)
    decoding = predict.add_argument_group("translate and generate")
    decoding.add_argument("--sampler", help="greedy, beam, random, top_k or top_p")
    decoding.add_argument("--num-beams", type=int, help="beam width (implies --sampler beam)")
    decoding.add_argument("--length-penalty", type=float, help="beam search GNMT alpha")
    decoding.add_argument(
        "--max-length",
        type=int,
        help=f"most tokens generated (generate: total length, default {DEFAULT_MAX_LENGTH})",
    )
    decoding.add_argument("--temperature", type=float)
    decoding.add_argument("--top-k", type=int, help="implies --sampler top_k")
    decoding.add_argument("--top-p", type=float, help="implies --sampler top_p")
    decoding.add_argument("--seed", type=int, help="seed of the random samplers")
    series = predict.add_argument_group("forecast")
    series.add_argument("--column", help="name or index of the value column (default: last)")
    series.add_argument(
        "--date-column",
        help="name or index of the date column (default: the first column, for models "
        "trained with calendar covariates)",
    )
    listing = commands.add_parser("presets", help="list the shipped models (presets)")
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    listing.add_argument("--debug", **debug)
    return parser


def _prog():
    # The `kzoo` console script and `python -m kzoo` run the same main().
    return "kzoo" if os.path.basename(sys.argv[0] or "") == "kzoo" else "python -m kzoo"


def main(argv=None):
    args = _parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    function = _predict if args.command == "predict" else _presets
    return run_command(function, args, f"{_prog()} {args.command}", debug=debug)


if __name__ == "__main__":
    sys.exit(main())
