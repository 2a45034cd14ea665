"""Training tokens/s of a word-level LSTM language model: exact vs sampled softmax.

One tied-embedding LSTM language model (30k words, 256 units, batches of 32
sequences of 70 tokens by default) is trained with `train_on_batch` twice in
the same process on the current backend: once with the exact softmax
(logits over the whole vocabulary, sparse categorical cross-entropy) and
once with `kzoo.layers.SampledSoftmax` (log-uniform candidates). Prints the
training tokens/s of both and their ratio.

    KERAS_BACKEND=jax python benchmarks/softmax_speed.py
    KERAS_BACKEND=torch python benchmarks/softmax_speed.py --steps 3 --quick

Token ids are drawn from the log-uniform (Zipf-like) distribution the
sampler assumes; the speed does not depend on the values.
"""

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocabulary-size", type=int, default=30000)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=70)
    parser.add_argument("--num-sampled", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (compilation)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.vocabulary_size, args.units, args.num_sampled = 500, 16, 32
        args.batch_size, args.sequence_length, args.steps, args.warmup = 4, 10, 2, 1
    return args


def build(args, sampled):
    import keras

    import kzoo
    from kzoo.models import TiedEmbedding

    ids = keras.Input((args.sequence_length,), dtype="int32", name="ids")
    embedding = TiedEmbedding(args.vocabulary_size, args.units, name="embedding")
    hidden = kzoo.layers.LSTM(args.units, return_sequences=True, name="lstm")(embedding(ids))
    if not sampled:
        model = keras.Model(ids, embedding(hidden, reverse=True))
        model.compile(
            keras.optimizers.Adam(1e-3),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        return model
    targets = keras.Input((args.sequence_length,), dtype="int32", name="targets")
    loss = kzoo.layers.SampledSoftmax(embedding, num_sampled=args.num_sampled, seed=0)
    model = keras.Model([ids, targets], loss(hidden, targets))
    model.compile(keras.optimizers.Adam(1e-3))
    return model


def tokens_per_second(args, sampled, x, y):
    model = build(args, sampled)
    inputs, targets = ([x, y], None) if sampled else (x, y)
    for _ in range(args.warmup):
        model.train_on_batch(inputs, targets)
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = model.train_on_batch(inputs, targets)
    elapsed = time.perf_counter() - start
    loss = float(np.asarray(loss[0] if isinstance(loss, (list, tuple)) else loss))
    if not np.isfinite(loss):
        raise RuntimeError(f"non-finite training loss {loss}")
    return args.steps * args.batch_size * args.sequence_length / elapsed


def main(argv=None):
    args = parse_args(argv)
    import keras

    rng = np.random.default_rng(0)
    shape = (args.batch_size, args.sequence_length + 1)
    u = rng.uniform(size=shape)
    stream = np.floor(np.exp(u * np.log(args.vocabulary_size + 1.0))) - 1.0
    stream = np.clip(stream, 0, args.vocabulary_size - 1).astype("int32")
    x, y = stream[:, :-1], stream[:, 1:]
    exact = tokens_per_second(args, False, x, y)
    sampled = tokens_per_second(args, True, x, y)
    print(
        f"backend={keras.backend.backend()} vocabulary={args.vocabulary_size} "
        f"units={args.units} batch={args.batch_size}x{args.sequence_length} "
        f"num_sampled={args.num_sampled} steps={args.steps}"
    )
    print(f"exact softmax:   {exact:10.0f} training tokens/s")
    print(f"sampled softmax: {sampled:10.0f} training tokens/s")
    print(f"sampled / exact: {sampled / exact:10.2f}")


if __name__ == "__main__":
    main()
