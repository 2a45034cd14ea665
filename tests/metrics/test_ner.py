"""Entity-level NER scores: hand-computed cases and a cross-check with seqeval."""

import numpy as np
import pytest

from kzoo.metrics import entity_f1, extract_entities


def test_extract_entities_iob2():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "B-ORG"]
    assert extract_entities(tags) == [
        ("PER", 0, 2),
        ("LOC", 3, 4),
        ("LOC", 4, 6),
        ("ORG", 6, 7),
    ]
    assert extract_entities([]) == []
    assert extract_entities(["O", "O"]) == []


def test_extract_entities_tolerates_iob1():
    # I- at the start, after O, or after another type opens a new entity.
    tags = ["I-PER", "I-PER", "O", "I-LOC", "I-ORG", "I-ORG", "B-ORG"]
    assert extract_entities(tags) == [
        ("PER", 0, 2),
        ("LOC", 3, 4),
        ("ORG", 4, 6),
        ("ORG", 6, 7),
    ]


def test_extract_entities_rejects_unknown_tags():
    with pytest.raises(ValueError, match=r"'X-PER' at position 1"):
        extract_entities(["O", "X-PER"])
    with pytest.raises(ValueError, match=r"'B-' at position 0"):
        extract_entities(["B-"])


def test_entity_f1_hand_computed():
    true = [
        ["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG"],
        ["B-MISC", "O"],
    ]
    pred = [
        # PER exact; LOC predicted as MISC (wrong type); ORG too short.
        ["B-PER", "I-PER", "O", "B-MISC", "O", "B-ORG", "O"],
        ["B-MISC", "O"],
    ]
    s = entity_f1(true, pred)
    # true: PER, LOC, ORG, MISC (4); pred: PER, MISC, ORG, MISC (4); correct 2.
    assert (s["support"], s["predicted"], s["correct"]) == (4, 4, 2)
    assert s["precision"] == pytest.approx(0.5)
    assert s["recall"] == pytest.approx(0.5)
    assert s["f1"] == pytest.approx(0.5)
    per = s["per_type"]
    assert per["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert per["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert per["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    # MISC: 2 predicted, 1 correct, 1 true.
    assert per["MISC"]["precision"] == pytest.approx(0.5)
    assert per["MISC"]["recall"] == pytest.approx(1.0)
    assert per["MISC"]["f1"] == pytest.approx(2 / 3)
    assert per["MISC"]["support"] == 1


def test_entity_f1_partial_span_and_type_errors():
    true = [["B-PER", "I-PER", "I-PER"]]
    for wrong in (
        ["B-PER", "I-PER", "O"],  # too short
        ["O", "B-PER", "I-PER"],  # shifted
        ["B-PER", "I-PER", "B-PER"],  # split in two
        ["B-ORG", "I-ORG", "I-ORG"],  # right span, wrong type
    ):
        s = entity_f1(true, [wrong])
        assert s["correct"] == 0 and s["f1"] == 0.0
    assert entity_f1(true, true)["f1"] == 1.0
    empty = entity_f1([["O"]], [["O"]])
    assert empty["f1"] == 0.0 and empty["per_type"] == {}


def test_entity_f1_input_validation():
    with pytest.raises(ValueError, match="1 true and 2 predicted"):
        entity_f1([["O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="Sequence 0 has 2 true tags but 1"):
        entity_f1([["O", "O"]], [["O"]])


def _random_tags(rng, n_seq):
    # Mix of IOB2 and IOB1-style sequences, including I- after other types.
    vocab = ["O", "O", "O"] + [
        f"{p}-{t}" for t in ("PER", "ORG", "LOC", "MISC") for p in ("B", "I")
    ]
    return [
        [vocab[i] for i in rng.integers(0, len(vocab), size=rng.integers(0, 15))]
        for _ in range(n_seq)
    ]


def test_matches_seqeval_on_random_sequences():
    pytest.importorskip("seqeval", reason="seqeval is not installed; the cross-check needs it")
    from seqeval.metrics import classification_report
    from seqeval.metrics.sequence_labeling import get_entities

    rng = np.random.default_rng(0)
    for trial in range(20):
        true = _random_tags(rng, 30)
        pred = [
            # Perturb a copy so that many entities match and some do not.
            [t if rng.random() < 0.8 else p for t, p in zip(seq, other)]
            for seq, other in zip(true, _random_tags_like(rng, true))
        ]
        for seq in true + pred:
            want = [(t, s, e + 1) for t, s, e in get_entities(seq)]
            assert extract_entities(seq) == want
        ours = entity_f1(true, pred)
        theirs = classification_report(true, pred, output_dict=True, zero_division=0)
        micro = theirs["micro avg"]
        assert ours["precision"] == pytest.approx(micro["precision"]), trial
        assert ours["recall"] == pytest.approx(micro["recall"]), trial
        assert ours["f1"] == pytest.approx(micro["f1-score"]), trial
        assert ours["support"] == micro["support"]
        types = {k for k in theirs if not k.endswith(" avg")}
        assert set(ours["per_type"]) == types
        for t in types:
            for ours_key, their_key in (
                ("precision", "precision"),
                ("recall", "recall"),
                ("f1", "f1-score"),
                ("support", "support"),
            ):
                assert ours["per_type"][t][ours_key] == pytest.approx(theirs[t][their_key]), (
                    trial,
                    t,
                    ours_key,
                )


def _random_tags_like(rng, seqs):
    vocab = ["O"] + [f"{p}-{t}" for t in ("PER", "ORG", "LOC", "MISC") for p in ("B", "I")]
    return [[vocab[i] for i in rng.integers(0, len(vocab), size=len(s))] for s in seqs]
