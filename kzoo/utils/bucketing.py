"""Batches of variable-length sequences grouped by length, padded per batch.

Padding every sequence to the longest one wastes most of the recurrent steps
on text (IMDB reviews run from 10 to 2,500 tokens). `BucketedBatches` groups
sequences of similar length and pads each batch only to its own length,
rounded up to a few *bucket* lengths so that a compiled step function (JAX,
`tf.function`) is traced for a handful of shapes, not one per batch.

It is a `keras.utils.PyDataset`, so `fit`, `evaluate` and `predict` take it
on every backend; it needs only NumPy (no TensorFlow). Everything random
(shuffling) derives from `seed` and the epoch number, so a run is repeatable
and an epoch's batches do not depend on how many epochs came before.
"""

import keras
import numpy as np

from kzoo.utils.validation import check_bool, check_int, check_seed


def bucket_length(length, bucket_width=None, bucket_boundaries=None, max_length=None):
    """The padded length of a sequence of `length` steps.

    Args:
        length: int >= 0, the sequence's own length (0 counts as 1: an empty
            sequence still needs one, all-padding, step).
        bucket_width: round up to a multiple of this.
        bucket_boundaries: increasing lengths; the smallest one that fits, and
            beyond the last one the next multiple of the last one.
        max_length: the padded length never exceeds this; a longer `length`
            is an error.

    With neither `bucket_width` nor `bucket_boundaries`, the length itself.

    Example:

    >>> bucket_length(11, bucket_boundaries=(10, 16, 24))
    16
    >>> bucket_length(50, bucket_boundaries=(10, 16, 24))
    72
    >>> bucket_length(11, bucket_width=8)
    16
    """
    length = max(int(length), 1)
    if max_length is not None and length > max_length:
        raise ValueError(
            f"A sequence has {length} steps, more than max_length={max_length}. Cut the "
            "sequences first or raise `max_length`."
        )
    if bucket_boundaries:
        padded = next((b for b in bucket_boundaries if length <= b), None)
        if padded is None:
            top = bucket_boundaries[-1]
            padded = -(-length // top) * top
    elif bucket_width:
        padded = -(-length // bucket_width) * bucket_width
    else:
        padded = length
    return padded if max_length is None else min(padded, max_length)


def pad_rows(rows, length, value=0, dtype="int32", num_rows=None):
    """Right-pads arrays along their first axis into one `(num_rows, length, ...)` array.

    Args:
        rows: list of arrays with equal trailing shapes (e.g. `(time,)` ids or
            `(time, characters)` character ids); none longer than `length`.
        length: the padded length.
        value: the padding value.
        dtype: the dtype of the result.
        num_rows: the number of rows of the result (default `len(rows)`);
            extra rows are all padding.
    """
    trailing = np.shape(rows[0])[1:] if len(rows) else ()
    num_rows = len(rows) if num_rows is None else num_rows
    out = np.full((num_rows, length, *trailing), value, dtype=dtype)
    for out_row, row in zip(out, rows):
        out_row[: len(row)] = row
    return out


class _Sequences:
    """A leaf of padded sequences: one array per row, padded per batch."""

    def __init__(self, rows, name):
        arrays, trailing, kinds = [], None, set()
        for i, row in enumerate(rows):
            array = np.asarray(row)
            if array.ndim == 0:
                raise ValueError(
                    f"`{name}[{i}]` must be a sequence (at least 1-D). Received {row!r}."
                )
            if trailing is None:
                trailing = array.shape[1:]
            elif array.shape[1:] != trailing:
                raise ValueError(
                    f"Every row of `{name}` must have the same shape after the time axis. "
                    f"`{name}[0]` has {trailing}, `{name}[{i}]` has {array.shape[1:]}."
                )
            if array.size:
                kinds.add(array.dtype.kind)
            arrays.append(array)
        if not kinds <= set("biuf"):
            raise TypeError(
                f"`{name}` must hold numbers (e.g. int ids). Received rows of dtype "
                f"{sorted(kinds)} (NumPy kinds)."
            )
        self.dtype = "float32" if "f" in kinds else ("bool" if kinds == {"b"} else "int32")
        self.rows = arrays
        self.lengths = np.array([len(a) for a in arrays], dtype="int64")

    def __len__(self):
        return len(self.rows)

    def batch(self, members, length, num_rows, value):
        return pad_rows([self.rows[i] for i in members], length, value, self.dtype, num_rows)


class _PerRow:
    """A leaf of one value per row (labels, weights): gathered, not padded."""

    lengths = None

    def __init__(self, values):
        self.values = values

    def __len__(self):
        return len(self.values)

    def batch(self, members, length, num_rows, value):
        out = self.values[members]
        if num_rows > len(members):
            extra = np.zeros((num_rows - len(members), *out.shape[1:]), out.dtype)
            out = np.concatenate([out, extra])
        return out


def _leaf(values, name):
    if isinstance(values, np.ndarray) and values.dtype != object:
        if values.ndim == 0:
            raise ValueError(f"`{name}` must have one entry per row. Received a scalar array.")
        return _PerRow(values)
    if isinstance(values, (list, np.ndarray)):
        if len(values) and all(np.ndim(v) == 0 for v in values):
            return _PerRow(np.asarray(list(values)))
        return _Sequences(values, name)
    raise TypeError(
        f"`{name}` must be a list of sequences or a NumPy array. Received an object of type "
        f"{type(values).__name__}."
    )


def _structure(values, name):
    """`values` as `(kind, {key: leaf})`, kind one of None, "leaf", "tuple", "dict"."""
    if values is None:
        return None, {}
    if isinstance(values, dict):
        return "dict", {key: _leaf(v, f"{name}[{key!r}]") for key, v in values.items()}
    if isinstance(values, tuple):
        return "tuple", {i: _leaf(v, f"{name}[{i}]") for i, v in enumerate(values)}
    return "leaf", {None: _leaf(values, name)}


def _rebuild(kind, arrays):
    if kind == "dict":
        return arrays
    if kind == "tuple":
        return tuple(arrays.values())
    return arrays[None]


class BucketedBatches(keras.utils.PyDataset):
    """Batches of sequences of similar length, each padded to its bucket length.

    Each row's padded length is `bucket_length(n)` of its length `n` (the
    longest of its sequences, inputs and per-token targets alike), see
    `bucket_length`. Two ways to group rows:

    - `sort_window=None` (default): *buckets*. Rows of one padded length form
      a bucket and every batch comes from one bucket (as
      `tf.data.experimental.bucket_by_sequence_length`).
    - `sort_window=k`: *sorted windows*. The (shuffled) rows are cut into
      windows of `k` rows, each window is sorted by length and cut into
      consecutive batches, each padded to its longest row's padded length.
      The number of batches is the same every epoch.

    With `shuffle=True` the rows (within buckets or windows) and the batch
    order are reshuffled every epoch, from `seed` and the epoch number. A new
    epoch starts when batch 0 is asked for after every batch of the current
    one was (so `fit`'s repeated passes, and TensorFlow's prefetching of the
    next pass, each see one complete epoch); `set_epoch(e)` jumps to epoch
    `e`, e.g. to resume training.

    A leaf of `x`, `y` or `sample_weight` is either *sequences* (a list, or a
    1-D object array, of array-likes whose first axis is time, e.g. id lists,
    `(time, characters)` arrays or per-token tags) padded along time with
    `padding_value` (sample weights with 0), or *one value per row* (a NumPy
    array, or a list of scalars, such as labels), gathered as is. Integer
    sequences come out as int32, floating ones as float32.

    Args:
        x: sequences, or a tuple or dict of leaves (several model inputs that
            share a row's padded length, e.g. `(source_ids, decoder_ids)` or
            `{"words": ..., "chars": ...}`).
        y: optional targets: a leaf, tuple or dict of leaves as `x`.
        sample_weight: optional weights: a leaf, tuple or dict of leaves.
        batch_size: rows per batch.
        bucket_width: padded lengths are multiples of this.
        bucket_boundaries: increasing padded lengths; rows longer than the
            last one are padded to a multiple of it. Exclusive with
            `bucket_width`. With neither, each batch is padded to its longest
            row.
        max_length: the largest padded length; a longer row is an error.
        sort_window: `None` for buckets, or the rows per sorted window (e.g.
            `100 * batch_size`), see above.
        shuffle: reshuffle rows and batches every epoch.
        drop_remainder: drop incomplete batches, so every batch has
            `batch_size` rows.
        pad_batches: fill incomplete batches with all-padding rows up to
            `batch_size` (labels 0, sample weights 0), so each padded length
            gives one shape. Use `restore_order`/`map_batches` to drop them
            again from predictions.
        padding_value: the value of padded steps of `x` and `y` (id 0 in
            kzoo's vocabularies).
        seed: int seed of the shuffling (default: a random one, fixed for
            this object's life).
        **kwargs: `keras.utils.PyDataset` arguments (`workers`,
            `use_multiprocessing`, `max_queue_size`).

    A batch is `(x,)`, `(x, y)` or `(x, y, sample_weight)` with `x` (and
    `y`) in the structure given (a tuple, dict or one array). The first two
    batches have different padded lengths whenever the data allow it: Keras's
    TensorFlow trainer fixes its input signature from them, and then keeps
    the time axis dynamic.

    Example:

    >>> ids = [[5, 8, 2], [7], [3, 3, 9, 4, 1], [6, 2]]
    >>> batches = BucketedBatches(ids, np.array([1, 0, 1, 0]), batch_size=2, bucket_width=4)
    >>> [x.shape for x, y in batches]  # rows 0, 1, 3 padded to 4; row 2 to 8
    [(2, 4), (1, 8), (1, 4)]
    >>> model.fit(batches, epochs=3)
    >>> probabilities = batches.restore_order(model.predict(batches))  # input order
    """

    def __init__(
        self,
        x,
        y=None,
        sample_weight=None,
        batch_size=32,
        bucket_width=None,
        bucket_boundaries=None,
        max_length=None,
        sort_window=None,
        shuffle=False,
        drop_remainder=False,
        pad_batches=False,
        padding_value=0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.bucket_width = check_int(bucket_width, "bucket_width", minimum=1, allow_none=True)
        if bucket_boundaries is not None:
            if bucket_width is not None:
                raise ValueError(
                    "Pass `bucket_width` or `bucket_boundaries`, not both. Received: "
                    f"bucket_width={bucket_width!r}, bucket_boundaries={bucket_boundaries!r}"
                )
            bucket_boundaries = tuple(bucket_boundaries)
            if (
                not bucket_boundaries
                or any(
                    isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1
                    for b in bucket_boundaries
                )
                or any(a >= b for a, b in zip(bucket_boundaries, bucket_boundaries[1:]))
            ):
                raise ValueError(
                    "`bucket_boundaries` must be a non-empty increasing sequence of positive "
                    f"ints. Received: bucket_boundaries={bucket_boundaries!r}"
                )
            bucket_boundaries = tuple(int(b) for b in bucket_boundaries)
        self.bucket_boundaries = bucket_boundaries
        self.max_length = check_int(max_length, "max_length", minimum=1, allow_none=True)
        self.sort_window = check_int(sort_window, "sort_window", minimum=1, allow_none=True)
        self.shuffle = check_bool(shuffle, "shuffle")
        self.drop_remainder = check_bool(drop_remainder, "drop_remainder")
        self.pad_batches = check_bool(pad_batches, "pad_batches")
        self.padding_value = padding_value
        seed = check_seed(seed)
        self.seed = int(np.random.SeedSequence().entropy % 2**32) if seed is None else seed

        self._x_kind, self._x = _structure(x, "x")
        if self._x_kind is None:
            raise ValueError("`x` must be given: a list of sequences, or a tuple or dict of them.")
        self._y_kind, self._y = _structure(y, "y")
        self._w_kind, self._w = _structure(sample_weight, "sample_weight")
        leaves = [(f"x{'' if k is None else f'[{k!r}]'}", v) for k, v in self._x.items()]
        leaves += [(f"y{'' if k is None else f'[{k!r}]'}", v) for k, v in self._y.items()]
        leaves += [
            (f"sample_weight{'' if k is None else f'[{k!r}]'}", v) for k, v in self._w.items()
        ]
        sizes = {name: len(leaf) for name, leaf in leaves}
        if len(set(sizes.values())) > 1:
            raise ValueError(
                f"Every leaf of x, y and sample_weight needs one row each. Rows: {sizes}"
            )
        sequence_lengths = [leaf.lengths for _, leaf in leaves if leaf.lengths is not None]
        if not sequence_lengths:
            raise ValueError(
                "`x` (or `y`) must hold variable-length sequences: a list of id sequences, "
                "not only fixed-size NumPy arrays (which need no bucketing)."
            )
        self.num_rows = next(iter(sizes.values()))
        self.lengths = np.max(sequence_lengths, axis=0)
        if self.max_length is not None and np.any(self.lengths > self.max_length):
            row = int(np.argmax(self.lengths > self.max_length))
            raise ValueError(
                f"Row {row} has {self.lengths[row]} steps, more than max_length="
                f"{self.max_length}. Cut the sequences first or raise `max_length`."
            )
        self.padded_lengths = np.array([self.bucket_length(n) for n in self.lengths], "int64")
        self.epoch = 0
        self._served = set()  # batch indices asked for in this epoch
        self._layout()

    def bucket_length(self, length):
        """The padded length of a row of `length` steps (see the module's `bucket_length`)."""
        return bucket_length(length, self.bucket_width, self.bucket_boundaries, self.max_length)

    def _layout(self):
        """Sets `self.batches`, the row indices of every batch, for `self.epoch`."""
        rng = np.random.default_rng([self.seed, self.epoch]) if self.shuffle else None
        order = rng.permutation(self.num_rows) if rng is not None else np.arange(self.num_rows)
        size = self.batch_size
        batches = []
        if self.sort_window is None:
            # Stable: rows keep their (shuffled) order within a bucket.
            order = order[np.argsort(self.padded_lengths[order], kind="stable")]
            cuts = np.flatnonzero(np.diff(self.padded_lengths[order])) + 1
            for bucket in np.split(order, cuts):
                batches += [bucket[i : i + size] for i in range(0, len(bucket), size)]
        else:
            for start in range(0, self.num_rows, self.sort_window):
                window = order[start : start + self.sort_window]
                window = window[np.argsort(self.lengths[window], kind="stable")]
                batches += [window[i : i + size] for i in range(0, len(window), size)]
        if self.drop_remainder:
            batches = [b for b in batches if len(b) == size]
        if rng is not None:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        # Keras's TensorFlow trainer takes its input signature from the first
        # two batches: with two lengths there, the time axis stays dynamic.
        lengths = [self._batch_length(b) for b in batches]
        other = next((i for i, n in enumerate(lengths) if n != lengths[0]), None)
        if other is not None and other != 1:
            batches[1], batches[other] = batches[other], batches[1]
        self.batches = batches

    def _batch_length(self, members):
        return int(self.padded_lengths[members].max())

    def __len__(self):
        return len(self.batches)

    def _batch(self, index, kind, leaves, value):
        members = self.batches[index]
        length = self._batch_length(members)
        num_rows = self.batch_size if self.pad_batches else len(members)
        arrays = {k: leaf.batch(members, length, num_rows, value) for k, leaf in leaves.items()}
        return _rebuild(kind, arrays)

    def __getitem__(self, index):
        index = range(len(self.batches))[index]  # IndexError past the end
        if index == 0 and self.batches and len(self._served) == len(self.batches):
            # A new pass over the data: the next epoch's layout.
            self.set_epoch(self.epoch + 1)
        self._served.add(index)
        x = self._batch(index, self._x_kind, self._x, self.padding_value)
        if self._y_kind is None:
            return (x,)
        y = self._batch(index, self._y_kind, self._y, self.padding_value)
        if self._w_kind is None:
            return x, y
        return x, y, self._batch(index, self._w_kind, self._w, 0)

    def set_epoch(self, epoch):
        """Lays out the batches of epoch `epoch` (0-based), e.g. to resume a run."""
        self.epoch = check_int(epoch, "epoch", minimum=0)
        if self.shuffle:
            self._layout()
        self._served = set()

    def positions(self):
        """The input row of every output row, in batch order; -1 for padding rows."""
        rows = []
        for members in self.batches:
            rows.append(members)
            if self.pad_batches:
                rows.append(np.full(self.batch_size - len(members), -1, dtype=members.dtype))
        return np.concatenate(rows) if rows else np.zeros((0,), "int64")

    def _check_complete(self):
        if self.drop_remainder and sum(len(b) for b in self.batches) < self.num_rows:
            raise ValueError(
                "This BucketedBatches drops incomplete batches (drop_remainder=True), so some "
                "rows have no output to put back in order. Use drop_remainder=False to predict."
            )

    def restore_order(self, outputs):
        """Rows of `predict(batches)` outputs back in input order, padding rows dropped.

        Args:
            outputs: what `model.predict(batches)` returns: an array (or a
                dict/list/tuple of arrays) whose rows are those of all batches
                in batch order.

        Returns:
            The same structure with `num_rows` rows each, row `i` belonging to
            input row `i`.
        """
        self._check_complete()
        positions = self.positions()
        keep = positions >= 0

        def restore(array):
            array = np.asarray(array)
            if array.shape[:1] != positions.shape:
                raise ValueError(
                    f"Expected outputs with {len(positions)} rows (the rows of all batches of "
                    f"this BucketedBatches), got shape {array.shape}."
                )
            result = np.empty((self.num_rows, *array.shape[1:]), dtype=array.dtype)
            result[positions[keep]] = array[keep]
            return result

        return keras.tree.map_structure(restore, outputs)

    def map_batches(self, function, trim=False):
        """Runs `function(x)` on every batch and returns its outputs in input order.

        Args:
            function: called with each batch's `x` (e.g.
                `model.predict_on_batch`); returns an array whose first axis
                has the batch's rows.
            trim: for per-step outputs `(rows, time, ...)`: return a list
                with one array per input row, cut to that row's own length.

        Returns:
            A `(num_rows, ...)` array (all batches' outputs must then have the
            same shape after the first axis), or a list of arrays with
            `trim=True`.
        """
        self._check_complete()
        results = [None] * self.num_rows
        for index, members in enumerate(self.batches):
            inputs = self._batch(index, self._x_kind, self._x, self.padding_value)
            output = keras.ops.convert_to_numpy(function(inputs))
            if output.shape[0] < len(members):
                raise ValueError(
                    f"`function` returned {output.shape[0]} rows for a batch of "
                    f"{len(members)} rows."
                )
            for row, i in zip(output, members):
                results[i] = row[: self.lengths[i]] if trim else row
        if trim:
            return results
        shapes = {r.shape for r in results}
        if len(shapes) > 1:
            raise ValueError(
                "The batches' outputs have different shapes after the first axis "
                f"({sorted(shapes)}); use trim=True for per-step outputs."
            )
        return np.stack(results) if results else np.zeros((0,), "float32")
