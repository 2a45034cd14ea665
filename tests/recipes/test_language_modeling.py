"""kzoo.recipes.language_modeling: BPTT windows for fit, state resets, stream scores, cards."""

import math

import keras
import numpy as np
import pytest

from kzoo.models import LanguageModel
from kzoo.models.language_model import bptt_batches
from kzoo.recipes import language_modeling as lm


def stream(n=203):
    return np.arange(n, dtype="int32") % 50


def tiny_model(stateful=True, batch_size=3):
    return LanguageModel(
        vocabulary_size=50,
        embedding_dim=4,
        units=6,
        num_layers=1,
        stateful=stateful,
        batch_size=batch_size if stateful else None,
        seed=1,
    )


def test_windows_continue_row_by_row_and_match_bptt_batches():
    ids = np.random.default_rng(0).integers(0, 50, 203).astype("int32")
    data = lm.BPTTWindows(ids, batch_size=3, sequence_length=5)
    x, y = bptt_batches(ids, 3, 5)
    assert len(data) == len(x) // 3 == 13
    assert data.tokens_per_epoch == 13 * 3 * 5
    for i in range(len(data)):
        xb, yb = data[i]
        np.testing.assert_array_equal(xb, x[3 * i : 3 * i + 3])
        np.testing.assert_array_equal(yb[:, :-1], xb[:, 1:])  # targets: the next token
        if i:  # row b of batch i goes on where row b of batch i - 1 stopped
            np.testing.assert_array_equal(xb[:, 0], data[i - 1][1][:, -1])
    with pytest.raises(IndexError, match="out of range"):
        data[len(data)]


def test_random_offset_comes_from_seed_and_epoch():
    ids = stream(400)
    data = lm.BPTTWindows(ids, 4, 7, seed=3, random_offset=True)
    offsets, lengths = [], []
    for epoch in range(6):
        data.set_epoch(epoch)
        offsets.append(data.offset)
        lengths.append(len(data))
        x, _ = data[0]
        np.testing.assert_array_equal(x[0], ids[data.offset : data.offset + 7])
    assert all(0 <= o < 7 for o in offsets) and len(set(offsets)) > 1
    assert len(set(lengths)) == 1  # the same number of steps every epoch
    again = lm.BPTTWindows(ids, 4, 7, seed=3, random_offset=True)  # a resumed run
    again.set_epoch(4)
    data.set_epoch(4)
    np.testing.assert_array_equal(again[2][0], data[2][0])


def test_windows_reject_bad_arguments():
    with pytest.raises(ValueError, match="1-D array of int"):
        lm.BPTTWindows(np.zeros((4, 50), "int32"), 2, 5)
    with pytest.raises(ValueError, match="needs an int `seed`"):
        lm.BPTTWindows(stream(), 2, 5, random_offset=True)
    with pytest.raises(ValueError, match="too short"):
        lm.BPTTWindows(stream(20), 4, 10)


def test_reset_states_zeroes_the_carried_state_each_epoch_and_before_evaluation():
    model = tiny_model()
    ids = stream(3 * 8).reshape(3, 8)
    first = keras.ops.convert_to_numpy(model(ids))
    carried = keras.ops.convert_to_numpy(model(ids))
    assert not np.allclose(first, carried)  # the state went on
    callback = lm.ResetStates()
    callback.set_model(model)
    callback.on_epoch_begin(1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(ids)), first, atol=1e-6)
    model(ids)
    callback.on_test_begin()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(ids)), first, atol=1e-6)


def test_stream_score_is_evaluate_stream_in_the_logs():
    model = tiny_model(stateful=False)
    ids = stream(120)
    score = lm.StreamScore(ids, name="val_bpc", quantity="bits_per_token", batch_size=2)
    score.set_model(model)
    logs = {}
    score.on_epoch_end(0, logs)
    expected = model.evaluate_stream(ids, batch_size=2)
    assert logs["val_bpc"] == pytest.approx(expected["bits_per_token"], rel=1e-6)
    assert score.result["tokens"] == expected["tokens"]
    assert expected["bits_per_token"] == pytest.approx(expected["loss"] / math.log(2))
    with pytest.raises(ValueError, match="quantity"):
        lm.StreamScore(ids, quantity="accuracy")


def test_fit_on_windows_learns_a_repeating_stream():
    # A period-5 stream: a stateful model trained with the windows and the
    # reset callback ends far below the uniform loss log(50).
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="auto")
    ids = np.tile(np.array([1, 7, 3, 9, 4], "int32"), 60)
    data = lm.BPTTWindows(ids, batch_size=3, sequence_length=6)
    throughput = lm.TokenThroughput(3 * 6)
    model.fit(data, epochs=4, shuffle=False, verbose=0, callbacks=[throughput, lm.ResetStates()])
    loss = model.evaluate_stream(ids[:100])["loss"]
    assert loss < 0.5 * math.log(50)
    summary = throughput.summary()
    assert summary["epochs_trained"] == 4
    assert summary["train_tokens"] == 4 * data.tokens_per_epoch
    assert summary["tokens_per_second"] > 0


def test_throughput_is_kept_across_resumed_processes(tmp_path):
    path = str(tmp_path / "throughput.json")
    first = lm.TokenThroughput(10, path=path)
    for epoch in (0, 1):
        first.on_epoch_begin(epoch)
        for batch in range(3):
            first.on_train_batch_end(batch)
        first.on_epoch_end(epoch)
    # A new process resuming the run: epoch 1 is trained again (killed before its backup).
    second = lm.TokenThroughput(10, path=path, resume=True)
    assert [e for e, _, _ in second.epochs] == [0, 1]
    for epoch in (1, 2):
        second.on_epoch_begin(epoch)
        second.on_train_batch_end(0)
        second.on_epoch_end(epoch)
    summary = second.summary()
    assert summary["epochs_trained"] == 3
    assert summary["train_tokens"] == 30 + 10 + 10  # epoch 1 counts once, with its last run
    # Without `resume` the file's epochs are not continued.
    assert lm.TokenThroughput(10, path=path).epochs == []


def test_sample_texts_is_seeded():
    model = LanguageModel(vocabulary=list("ab c"), embedding_dim=4, units=4, num_layers=1)
    first = lm.sample_texts(model, "a", (0.5, 1.0), max_length=12, seed=3)
    assert [t for t, _ in first] == [0.5, 1.0]
    assert all(len(text) == 12 and text.startswith("a") for _, text in first)
    assert first == lm.sample_texts(model, "a", (0.5, 1.0), max_length=12, seed=3)
    assert "Temperature 0.5 (prompt 'a')" in lm.format_samples(first, "a")


def test_model_card_has_the_five_sections_in_order():
    sections = {
        "intended_use": "Demos.",
        "limitations": "Small.",
        "data": "Some text.\n\nLicence: public domain.",
        "metrics": "- 1.5 bits/char",
        "training": "- jax",
    }
    card = lm.model_card("demo", "A demo model.", **sections)
    headings = [line for line in card.splitlines() if line.startswith("## ")]
    assert headings == [f"## {s}" for s in lm.CARD_SECTIONS]
    with pytest.raises(ValueError, match="Missing or empty: \\['metrics'\\]"):
        lm.model_card("demo", "x", **{**sections, "metrics": ""})
    with pytest.raises(ValueError, match="unknown: \\['extra'\\]"):
        lm.model_card("demo", "x", **sections, extra="y")
    with pytest.raises(ValueError, match="Licence:"):
        lm.model_card("demo", "x", **{**sections, "data": "Some text."})
