"""Speed of kzoo recurrent layers against the Keras built-ins on one backend.

For the backend named by `KERAS_BACKEND`, every group below builds small
models `[Masking] -> recurrent layer -> Dense(1)` that differ only in the
recurrent layer, warms them up, then times them round-robin in one process
(one call of each per round) and reports the median over the rounds:

* `lstm`, `gru`: `kzoo.layers.LSTM/GRU` vs `keras.layers.LSTM/GRU` (and a
  native `torch.nn.LSTM/GRU` model on the torch backend), unmasked and
  masked (right-padded batch with lengths drawn from [T/2, T]), for each
  `--units`, inference (`predict_on_batch`) and a training step
  (`train_on_batch`, Adam, MSE).
* `bidi`: the same for `Bidirectional(LSTM)`.
* `generic`: a user-written cell (not a kzoo cell, so no fused kernel) in
  `kzoo.layers.RNN` vs `keras.layers.RNN`.
* `rss`: peak resident memory of one kzoo LSTM training step for several
  sequence lengths, each in a fresh subprocess (/proc/self VmHWM, reset before the step).

Ratios are speed ratios `time(baseline) / time(kzoo)`: above 1 means kzoo is
faster. `masked/unmasked` is `time(kzoo, masked) / time(kzoo, unmasked)`.
GFLOP/s counts only the recurrent matrix products (forward `2*B*T*G*H*(D+H)`
with G gates; a training step counted as 3x forward), so it is a rough
utilisation figure, not a profile.
On torch, inference is also timed as a direct model call under
`torch.no_grad()` (`kzoo_call_ms`), the way torch code embedding the model
runs it, next to the native `torch.nn` model.

Usage:

    KERAS_BACKEND=jax python benchmarks/rnn_speed.py            # full run
    KERAS_BACKEND=torch python benchmarks/rnn_speed.py --quick  # CI smoke run
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

SECTIONS = ("lstm", "gru", "bidi", "generic", "rss")
GATES = {"lstm": 4, "gru": 3, "generic": 2}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 rounds (CI)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--time", type=int, default=200)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--units", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--modes", nargs="+", default=["inference", "train"])
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall: time.perf_counter (default); cpu: process CPU time of all threads, "
        "steadier on a shared machine but not a latency",
    )
    parser.add_argument(
        "--rss-times", type=int, nargs="+", default=[125, 250, 500, 1000], help="T values for rss"
    )
    parser.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.time, args.features, args.units = 4, 12, 8, [16]
        args.rounds, args.warmup = 2, 1
        args.rss_times = [20, 40]
    return args


def make_data(args, rng):
    """Inputs, targets and a right-padded copy of the inputs (zeros = padding)."""
    b, t, d = args.batch, args.time, args.features
    x = rng.standard_normal((b, t, d)).astype("float32")
    y = rng.standard_normal((b, 1)).astype("float32")
    lengths = rng.integers(max(1, t // 2), t + 1, size=b)
    lengths[0] = t  # the longest row spans the whole batch
    x_padded = x * (np.arange(t)[None, :] < lengths[:, None])[..., None]
    return x, y, x_padded


def keras_model(layer_fn, args, masked):
    import keras

    inputs = keras.Input((args.time, args.features))
    h = keras.layers.Masking(0.0)(inputs) if masked else inputs
    outputs = keras.layers.Dense(1)(layer_fn()(h))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return model


def keras_callables(model, x, y):
    return {
        "inference": lambda: model.predict_on_batch(x),
        "train": lambda: model.train_on_batch(x, y),
    }


def torch_model_call(model, x):
    """The Keras model called on a torch tensor without autograd, as torch
    code embedding it would: no `predict_on_batch` (NumPy conversion and
    Keras's per-call setup, about 1-2 ms)."""
    import torch

    x_t = torch.from_numpy(x)

    def call():
        with torch.no_grad():
            return model(x_t, training=False)

    return call


def torch_callables(cell, units, args, x, y, masked, bidirectional=False):
    """A native torch.nn model doing what the Keras models do."""
    import torch

    rnn_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    rnn = rnn_class(args.features, units, batch_first=True, bidirectional=bidirectional)
    head = torch.nn.Linear(units * (2 if bidirectional else 1), 1)
    params = list(rnn.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-3)
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)

    def forward():
        inputs = x_t
        if masked:  # as Masking(0.0): lengths from the non-zero steps
            lengths = (x_t != 0).any(-1).sum(1).cpu()
            inputs = torch.nn.utils.rnn.pack_padded_sequence(
                x_t, lengths, batch_first=True, enforce_sorted=False
            )
        _, state = rnn(inputs)
        h_n = state[0] if cell == "lstm" else state
        last = torch.cat([h_n[0], h_n[1]], -1) if bidirectional else h_n[-1]
        return head(last)

    def infer():
        with torch.no_grad():
            return forward()

    def train():
        optimizer.zero_grad()
        loss = torch.mean((forward() - y_t) ** 2)
        loss.backward()
        optimizer.step()
        return loss

    return {"inference": infer, "train": train}


def user_cell_class():
    """A minimal gated unit written by a user with keras.ops only (no fast path).

    f = sigma(x W_f + h U_f + b_f); g = tanh(x W_g + (f * h) U_g + b_g);
    h' = (1 - f) * h + f * g
    """
    import keras
    from keras import ops

    class MinimalGatedCell(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = [units]
            self.output_size = units

        def build(self, input_shape):
            d, h = input_shape[-1], self.units
            self.kernel = self.add_weight(name="kernel", shape=(d, 2 * h))
            self.recurrent_f = self.add_weight(name="recurrent_f", shape=(h, h))
            self.recurrent_g = self.add_weight(name="recurrent_g", shape=(h, h))
            self.bias = self.add_weight(name="bias", shape=(2 * h,), initializer="zeros")

        def get_initial_state(self, batch_size=None):
            return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]

        def call(self, inputs, states, training=False):
            h = states[0]
            x_f, x_g = ops.split(ops.matmul(inputs, self.kernel) + self.bias, 2, axis=-1)
            f = ops.sigmoid(x_f + ops.matmul(h, self.recurrent_f))
            g = ops.tanh(x_g + ops.matmul(f * h, self.recurrent_g))
            h = (1.0 - f) * h + f * g
            return h, [h]

    return MinimalGatedCell


def sync_result(result):
    """Waits for asynchronous backends (JAX dispatch, torch is synchronous)."""
    leaves = result if isinstance(result, (list, tuple)) else [result]
    for leaf in leaves:
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
    return result


def round_robin(callables, rounds, warmup, clock=time.perf_counter):
    """Median seconds per callable, timed one call each per round."""
    for fn in callables.values():
        for _ in range(warmup):
            sync_result(fn())
    times = {name: [] for name in callables}
    for _ in range(rounds):
        for name, fn in callables.items():
            start = clock()
            sync_result(fn())
            times[name].append(clock() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def flops(args, gates, units, mode, directions=1):
    forward = 2 * args.batch * args.time * gates * units * (args.features + units) * directions
    return forward * (3 if mode == "train" else 1)


def layer_factories(section, units, backend):
    import keras

    import kzoo

    if section in ("lstm", "gru"):
        name = section.upper()
        return {
            "kzoo": lambda: getattr(kzoo.layers, name)(units),
            "keras": lambda: getattr(keras.layers, name)(units),
        }
    if section == "bidi":
        return {
            "kzoo": lambda: kzoo.layers.Bidirectional(kzoo.layers.LSTM(units)),
            "keras": lambda: keras.layers.Bidirectional(keras.layers.LSTM(units)),
        }
    cell = user_cell_class()
    return {
        "kzoo": lambda: kzoo.layers.RNN(cell(units)),
        "keras": lambda: keras.layers.RNN(cell(units)),
    }


def run_group(section, units, mode, args, data, backend):
    """Times kzoo, keras (and torch) unmasked and masked, round-robin."""
    x, y, x_padded = data
    callables = {}
    for masked in (False, True):
        inputs = x_padded if masked else x
        tag = "masked" if masked else "unmasked"
        for impl, factory in layer_factories(section, units, backend).items():
            model = keras_model(factory, args, masked)
            callables[(impl, tag)] = keras_callables(model, inputs, y)[mode]
            if impl == "kzoo" and backend == "torch" and mode == "inference":
                callables[("kzoo_call", tag)] = torch_model_call(model, inputs)
        if backend == "torch" and section != "generic":
            cell = "gru" if section == "gru" else "lstm"
            callables[("torch.nn", tag)] = torch_callables(
                cell, units, args, inputs, y, masked, bidirectional=section == "bidi"
            )[mode]
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    medians = round_robin(callables, args.rounds, args.warmup, clock)
    gates = GATES.get(section, 4)
    work = flops(args, gates, units, mode, directions=2 if section == "bidi" else 1)
    rows = []
    for tag in ("unmasked", "masked"):
        kzoo_s = medians[("kzoo", tag)]
        row = {
            "section": section,
            "units": units,
            "mode": mode,
            "mask": tag,
            "kzoo_ms": kzoo_s * 1e3,
            "kzoo_gflops": work / kzoo_s / 1e9,
        }
        for impl in ("keras", "torch.nn"):
            if (impl, tag) in medians:
                row[f"{impl}_ms"] = medians[(impl, tag)] * 1e3
                row[f"vs_{impl}"] = medians[(impl, tag)] / kzoo_s
        if ("kzoo_call", tag) in medians:
            call_s = medians[("kzoo_call", tag)]
            row["kzoo_call_ms"] = call_s * 1e3
            if ("torch.nn", tag) in medians:
                row["call_vs_torch.nn"] = medians[("torch.nn", tag)] / call_s
        row["masked/unmasked"] = medians[("kzoo", "masked")] / medians[("kzoo", "unmasked")]
        rows.append(row)
    return rows


def print_table(rows, backend):
    columns = [
        ("section", "{}"),
        ("units", "{}"),
        ("mode", "{}"),
        ("mask", "{}"),
        ("kzoo_ms", "{:.1f}"),
        ("keras_ms", "{:.1f}"),
        ("vs_keras", "{:.2f}x"),
    ]
    if backend == "torch":
        columns += [("torch.nn_ms", "{:.1f}"), ("vs_torch.nn", "{:.2f}x")]
        if any("kzoo_call_ms" in row for row in rows):
            columns += [("kzoo_call_ms", "{:.1f}"), ("call_vs_torch.nn", "{:.2f}x")]
    columns += [("masked/unmasked", "{:.2f}"), ("kzoo_gflops", "{:.1f}")]
    header = "| " + " | ".join(name for name, _ in columns) + " |"
    print(header)
    print("|" + "---|" * len(columns))
    for row in rows:
        cells = []
        for name, fmt in columns:
            value = row.get(name)
            if name == "masked/unmasked" and row["mask"] != "masked":
                value = None
            cells.append("" if value is None else fmt.format(value))
        print("| " + " | ".join(cells) + " |")
    sys.stdout.flush()


def _status_mib(field):
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_child(steps, args):
    """Peak RSS of one kzoo LSTM training step of length `steps`, in MiB.

    The imports alone peak higher than a short step, so the process peak
    hides the step. After a first (compiling) step the kernel's peak-RSS
    counter is reset through /proc/self/clear_refs, a second step runs, and
    the child prints the RSS before that step and its peak during it.
    """
    import keras

    import kzoo

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, steps, args.features)).astype("float32")
    y = rng.standard_normal((args.batch, 1)).astype("float32")
    inputs = keras.Input((steps, args.features))
    outputs = keras.layers.Dense(1)(kzoo.layers.LSTM(max(args.units))(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    model.train_on_batch(x, y)
    before = _status_mib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    model.train_on_batch(x, y)
    print(f"RSS {before:.1f} {_status_mib('VmHWM'):.1f}")


def run_rss(args):
    print(
        f"\nPeak RSS of one kzoo LSTM({max(args.units)}) training step (after a compiling "
        f"step), B={args.batch}, D={args.features}, one fresh process per T:\n"
    )
    print(
        "| T | RSS before the step (MiB) | peak during the step (MiB) | step peak - before (MiB) |"
    )
    print("|---|---|---|---|")
    script = os.path.abspath(__file__)
    for steps in args.rss_times:
        command = [sys.executable, script, "--rss-child", str(steps)]
        command += ["--batch", str(args.batch), "--features", str(args.features)]
        command += ["--units", str(max(args.units))]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        line = [ln for ln in done.stdout.splitlines() if ln.startswith("RSS ")][-1]
        before, peak = (float(v) for v in line.split()[1:])
        print(f"| {steps} | {before:.1f} | {peak:.1f} | {peak - before:.1f} |")
        sys.stdout.flush()


def main(argv=None):
    args = parse_args(argv)
    if args.rss_child is not None:
        rss_child(args.rss_child, args)
        return
    import keras

    backend = keras.backend.backend()
    cpu = platform.processor() or platform.machine()
    print(
        f"backend={backend} keras={keras.__version__} B={args.batch} T={args.time} "
        f"D={args.features} units={args.units} rounds={args.rounds} cpu={cpu} "
        f"threads={os.cpu_count()}"
    )
    rng = np.random.default_rng(0)
    data = make_data(args, rng)
    for section in args.sections:
        if section == "rss":
            run_rss(args)
            continue
        units_list = args.units if section in ("lstm", "gru") else [min(args.units)]
        rows = []
        for units in units_list:
            for mode in args.modes:
                rows += run_group(section, units, mode, args, data, backend)
        print(f"\n### {section} ({backend})\n")
        print_table(rows, backend)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
