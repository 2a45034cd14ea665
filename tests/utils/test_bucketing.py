"""kzoo.utils.bucketing: length-bucketed batches for fit/evaluate/predict."""

import keras
import numpy as np
import pytest

from kzoo.utils.bucketing import BucketedBatches, bucket_length, pad_rows

RNG = np.random.default_rng(0)
# 60 id sequences of lengths 1..40 (a few of each), ids >= 1 (0 is padding).
LENGTHS = RNG.integers(1, 41, size=60)
SEQUENCES = [RNG.integers(1, 50, size=n).astype("int32") for n in LENGTHS]
LABELS = RNG.integers(0, 2, size=60).astype("float32")


def unpadded(row):
    return row[: np.count_nonzero(row)] if row.ndim == 1 else row


def all_rows(batches):
    """Every (row index, padded x row, y) of one epoch, checked for shape rules."""
    seen = []
    for index in range(len(batches)):
        x, y = batches[index]
        members = batches.batches[index]
        assert x.dtype == np.int32 and x.shape[0] == len(y)
        for row, i, label in zip(x, members, y):
            seen.append((int(i), row, float(label)))
    return seen


def test_bucket_length_rules():
    assert [bucket_length(n, bucket_boundaries=(10, 16, 24)) for n in (0, 10, 11, 24, 25, 49)] == [
        10,
        10,
        16,
        24,
        48,
        72,
    ]
    assert [bucket_length(n, bucket_width=8) for n in (0, 1, 8, 9)] == [8, 8, 8, 16]
    assert bucket_length(7) == 7 and bucket_length(0) == 1
    assert bucket_length(390, bucket_width=50, max_length=400) == 400
    with pytest.raises(ValueError, match="401 steps, more than max_length=400"):
        bucket_length(401, bucket_width=50, max_length=400)


def test_every_row_once_padded_to_its_bucket():
    batches = BucketedBatches(SEQUENCES, LABELS, batch_size=8, bucket_width=10)
    seen = all_rows(batches)
    assert sorted(i for i, _, _ in seen) == list(range(60))
    for i, row, label in seen:
        assert len(row) == -(-LENGTHS[i] // 10) * 10  # its own bucket: one bucket per batch
        np.testing.assert_array_equal(unpadded(row), SEQUENCES[i])
        assert not row[LENGTHS[i] :].any()
        assert label == LABELS[i]
    assert len({x.shape[1] for x, _ in batches}) == 4  # buckets 10, 20, 30, 40


def test_shuffle_is_deterministic_per_seed_and_epoch():
    def layout(seed, epoch):
        batches = BucketedBatches(
            SEQUENCES, LABELS, batch_size=4, bucket_width=10, shuffle=True, seed=seed
        )
        batches.set_epoch(epoch)
        return [b.tolist() for b in batches.batches]

    assert layout(1, 0) == layout(1, 0)
    assert layout(1, 0) != layout(2, 0)
    assert layout(1, 0) != layout(1, 1)
    # One full pass is epoch 0; asking for batch 0 again starts epoch 1.
    batches = BucketedBatches(
        SEQUENCES, LABELS, batch_size=4, bucket_width=10, shuffle=True, seed=1
    )
    batches[0], batches[1], batches[0]  # e.g. TensorFlow's signature probe: still epoch 0
    rows = sum(len(y) for _, y in batches)
    assert batches.epoch == 0 and rows == 60
    batches[0]
    assert batches.epoch == 1 and [b.tolist() for b in batches.batches] == layout(1, 1)
    assert sorted(np.concatenate(batches.batches).tolist()) == list(range(60))


def test_first_two_batches_differ_in_length_for_tensorflow():
    for seed in range(5):
        batches = BucketedBatches(
            SEQUENCES, LABELS, batch_size=4, bucket_width=10, shuffle=True, seed=seed
        )
        assert batches[0][0].shape[1] != batches[1][0].shape[1]


def test_sorted_windows_keep_batch_count_and_sort_within_window():
    batches = BucketedBatches(
        SEQUENCES, LABELS, batch_size=5, sort_window=20, shuffle=True, seed=3, bucket_width=4
    )
    counts = []
    for epoch in range(3):
        batches.set_epoch(epoch)
        counts.append(len(batches))
        rows = sorted(np.concatenate(batches.batches).tolist())
        assert rows == list(range(60))
        for index, members in enumerate(batches.batches):
            x, _ = batches[index]
            assert x.shape[1] == bucket_length(LENGTHS[members].max(), bucket_width=4)
    assert counts == [12, 12, 12]
    # Without shuffling each window of 20 rows is sorted by length.
    plain = BucketedBatches(SEQUENCES, LABELS, batch_size=5, sort_window=20)
    first_window = np.concatenate(plain.batches[:4])
    assert sorted(first_window.tolist()) == list(range(20))
    assert np.all(np.diff(LENGTHS[first_window]) >= 0)


def test_drop_remainder_and_pad_batches():
    dropped = BucketedBatches(SEQUENCES, LABELS, batch_size=8, bucket_width=10, drop_remainder=True)
    assert all(len(b) == 8 for b in dropped.batches)
    padded = BucketedBatches(
        SEQUENCES,
        LABELS,
        sample_weight=np.ones(60, "float32"),
        batch_size=8,
        bucket_width=10,
        pad_batches=True,
    )
    total_weight = 0.0
    for x, y, w in padded:
        assert x.shape[0] == y.shape[0] == w.shape[0] == 8
        total_weight += w.sum()
        empty = ~x.any(axis=1)
        assert not w[empty].any() and not y[empty].any()
    assert total_weight == 60
    with pytest.raises(ValueError, match="drop_remainder=True"):
        dropped.restore_order(np.zeros((len(dropped.positions()), 1)))


def test_tuple_dict_and_per_token_targets():
    # Translation-like: two inputs and per-token targets share a padded length.
    source = SEQUENCES[:10]
    target = [np.arange(1, n + 3) for n in LENGTHS[10:20]]
    batches = BucketedBatches(
        (source, [t[:-1] for t in target]),
        [t[1:] for t in target],
        batch_size=3,
        bucket_boundaries=(8, 16),
    )
    for index, ((src, dec), out) in enumerate(batches):
        members = batches.batches[index]
        assert src.shape == dec.shape == out.shape
        for row, i in zip(out, members):
            np.testing.assert_array_equal(unpadded(row), target[i][1:])
        longest = max(max(len(source[i]), len(target[i]) - 1) for i in members)
        assert src.shape[1] == bucket_length(longest, bucket_boundaries=(8, 16))
    # Tagger-like: a dict with a (time, characters) input.
    chars = [np.ones((n, 3), "int32") for n in LENGTHS[:10]]
    tagged = BucketedBatches(
        {"words": SEQUENCES[:10], "chars": chars}, batch_size=4, bucket_width=16
    )
    (x,) = tagged[0]
    assert set(x) == {"words", "chars"}
    assert x["chars"].shape == (*x["words"].shape, 3)


def test_fit_and_predict_in_input_order():
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(50, 4, mask_zero=True),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile("adam", "binary_crossentropy")
    train = BucketedBatches(
        SEQUENCES, LABELS, batch_size=16, bucket_width=20, shuffle=True, drop_remainder=True, seed=0
    )
    history = model.fit(train, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and train.epoch >= 1  # reshuffled
    test = BucketedBatches(SEQUENCES, batch_size=16, bucket_width=20, pad_batches=True)
    probabilities = test.restore_order(model.predict(test, verbose=0))
    # The mask makes padding irrelevant: all rows padded to 40 give the reference.
    one_by_one = model.predict(pad_rows(SEQUENCES, 40), verbose=0)
    np.testing.assert_allclose(probabilities, one_by_one, atol=1e-5)
    np.testing.assert_allclose(test.map_batches(model.predict_on_batch), one_by_one, atol=1e-5)
    # Per-step outputs come back cut to each row's length.
    steps = test.map_batches(lambda x: x * 2, trim=True)
    for got, ids in zip(steps, SEQUENCES):
        np.testing.assert_array_equal(got, ids * 2)


def test_pad_rows():
    out = pad_rows([np.array([1, 2]), np.array([3])], 4, num_rows=3)
    np.testing.assert_array_equal(out, [[1, 2, 0, 0], [3, 0, 0, 0], [0, 0, 0, 0]])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(bucket_width=0), ValueError, "bucket_width"),
        (dict(bucket_width=4, bucket_boundaries=(8,)), ValueError, "not both"),
        (dict(bucket_boundaries=(8, 8)), ValueError, "increasing"),
        (dict(sort_window=0), ValueError, "sort_window"),
        (dict(shuffle=1), ValueError, "shuffle"),
        (dict(seed=1.5), ValueError, "seed"),
        (dict(max_length=10), ValueError, "max_length=10"),
        (dict(y=np.zeros(3)), ValueError, "one row each"),
        (dict(x=np.zeros((60, 5), "int32")), ValueError, "variable-length"),
        (dict(x=[["a", "b"]] * 60), TypeError, "must hold numbers"),
        (
            dict(x=[np.zeros(2), np.zeros((2, 2))] * 30),
            ValueError,
            "same shape after the time axis",
        ),
        (dict(x="text"), TypeError, "list of sequences"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, message):
    args = dict(x=SEQUENCES, y=LABELS)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        BucketedBatches(**args)
