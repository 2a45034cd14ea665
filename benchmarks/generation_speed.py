"""Speed of kzoo's generation loop: eager vs compiled (`torch.compile`) on PyTorch.

kzoo.generation runs its loop in `GenerationLoop.predict_on_batch`, which
Keras compiles like `predict`: `jax.jit` on JAX, `tf.function` on TensorFlow,
and eager under `torch.no_grad` on PyTorch unless `jit_compile=True` asks for
`torch.compile`. This script times both PyTorch modes on a character-level
`LanguageModel` (greedy and beam search), each in its own process with a time
limit (a compile that never finishes is reported as such), checks that they
generate the same tokens and prints compiled/eager.

    KERAS_BACKEND=torch python benchmarks/generation_speed.py
    KERAS_BACKEND=torch python benchmarks/generation_speed.py --quick

On JAX and TensorFlow it times the default (compiled) loop only.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--vocabulary-size", type=int, default=65)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--compile-timeout", type=float, default=600.0, help="seconds per measuring process"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.units, args.max_length, args.repeats, args.batch_size = 32, 16, 2, 2
    return args


def measure(args, mode):
    """Runs in a fresh process: times `repeats` calls of one loop per sampler."""
    import keras
    import numpy as np

    from kzoo.generation import GenerationLoop, get_sampler
    from kzoo.models import LanguageModel

    keras.utils.set_random_seed(0)
    model = LanguageModel(
        args.vocabulary_size,
        embedding_dim=args.units,
        units=args.units,
        num_layers=args.num_layers,
    )
    token_ids = np.random.randint(0, args.vocabulary_size, (args.batch_size, args.max_length))
    prompt_mask = np.zeros(token_ids.shape, bool)
    prompt_mask[:, :4] = True
    inputs = {"token_ids": token_ids.astype("int32"), "prompt_mask": prompt_mask}
    jit_compile = {"eager": False, "compiled": True, "default": "auto"}[mode]
    results = {}
    for name, sampler in (
        ("greedy", get_sampler("greedy")),
        ("beam", get_sampler("beam", num_beams=args.num_beams)),
    ):
        loop = GenerationLoop(model, sampler, jit_compile=jit_compile)
        start = time.perf_counter()
        tokens = loop.predict_on_batch(inputs)["token_ids"]
        first = time.perf_counter() - start
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            loop.predict_on_batch(inputs)
            times.append(time.perf_counter() - start)
        results[name] = {
            "first_call_s": first,
            "median_s": float(np.median(times)),
            "tokens": np.asarray(tokens).tolist(),
        }
    return results


def run_child(args, mode):
    command = [sys.executable, os.path.abspath(__file__), "--child", mode]
    for name in ("units", "num_layers", "vocabulary_size", "batch_size", "max_length"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    command += ["--num-beams", str(args.num_beams), "--repeats", str(args.repeats)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=args.compile_timeout, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return None, f"did not finish within {args.compile_timeout:.0f} s"
    if done.returncode != 0:
        return None, f"failed (exit {done.returncode}): {done.stderr.strip()[-400:]}"
    return json.loads(done.stdout.strip().splitlines()[-1]), None


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        sys.path.insert(0, ROOT)
        print(json.dumps(measure(args, args.child)))
        return None
    import keras

    backend = keras.backend.backend()
    modes = ("eager", "compiled") if backend == "torch" else ("default",)
    print(
        f"backend={backend} LanguageModel {args.num_layers}x{args.units} LSTM, "
        f"vocabulary {args.vocabulary_size}, batch {args.batch_size}, max_length "
        f"{args.max_length}, beam {args.num_beams}; median of {args.repeats} calls"
    )
    measured = {}
    for mode in modes:
        result, problem = run_child(args, mode)
        measured[mode] = result
        for sampler in ("greedy", "beam"):
            if result is None:
                print(f"{mode:9s} {sampler:7s} {problem}")
                continue
            r = result[sampler]
            print(
                f"{mode:9s} {sampler:7s} first call {r['first_call_s']:8.2f} s   "
                f"then {r['median_s'] * 1000:9.1f} ms per call"
            )
    if backend == "torch":
        eager, compiled = measured["eager"], measured["compiled"]
        for sampler in ("greedy", "beam"):
            if eager is None or compiled is None:
                print(f"ratio compiled/eager ({sampler}): not measured")
                continue
            same = eager[sampler]["tokens"] == compiled[sampler]["tokens"]
            ratio = compiled[sampler]["median_s"] / eager[sampler]["median_s"]
            first = compiled[sampler]["first_call_s"] / eager[sampler]["first_call_s"]
            print(
                f"ratio compiled/eager ({sampler}): {ratio:.2f} per call after the first, "
                f"{first:.1f} on the first call; same tokens: {same}"
            )
    return measured


if __name__ == "__main__":
    main()
