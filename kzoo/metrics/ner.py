"""Entity-level scores for IOB-tagged sequences (the CoNLL-2003 definition).

An entity is a maximal span of tokens of one type. A predicted entity counts as
correct only if an entity of the same type with exactly the same start and end
exists in the reference; partial overlaps and type confusions are errors.

    precision = correct / predicted,  recall = correct / true,
    f1 = 2 * precision * recall / (precision + recall)

with 0 wherever a denominator is 0. The overall scores are micro-averaged
(entities of all types pooled), as in the `conlleval` script.

Tag scheme: IOB2 (`B-X` starts an entity, `I-X` continues it, `O` is outside).
IOB1 input is tolerated: an `I-X` that does not continue an entity of type X
(after `O`, at the start, or after an entity of another type) starts a new
entity, which is what `conlleval` does. Tags are strings; any tag other than
`O` must look like `B-TYPE` or `I-TYPE`.

Reference:
    Tjong Kim Sang, De Meulder, "Introduction to the CoNLL-2003 Shared Task:
    Language-Independent Named Entity Recognition", CoNLL 2003.
"""

from collections import Counter


def _split(tag, position):
    if tag == "O":
        return "O", None
    prefix, sep, entity_type = str(tag).partition("-")
    if sep != "-" or prefix not in ("B", "I") or not entity_type:
        raise ValueError(
            f"Tag {tag!r} at position {position} is not 'O', 'B-TYPE' or "
            "'I-TYPE' (IOB1/IOB2 tags are supported)."
        )
    return prefix, entity_type


def extract_entities(tags):
    """The entities of one tag sequence.

    Args:
        tags: sequence of string tags, e.g. `["B-PER", "I-PER", "O", "B-LOC"]`.

    Returns:
        list of `(entity_type, start, end)` tuples, `end` exclusive, in order.

    Example:

    ```python
    extract_entities(["B-PER", "I-PER", "O", "I-LOC"])
    # [("PER", 0, 2), ("LOC", 3, 4)]
    ```
    """
    entities = []
    current_type, current_start = None, None
    for i, tag in enumerate(tags):
        prefix, entity_type = _split(tag, i)
        continues = prefix == "I" and entity_type == current_type
        if current_type is not None and not continues:
            entities.append((current_type, current_start, i))
            current_type = None
        if prefix != "O" and not continues:
            current_type, current_start = entity_type, i
    if current_type is not None:
        entities.append((current_type, current_start, len(tags)))
    return entities


def _prf(correct, predicted, true):
    precision = correct / predicted if predicted else 0.0
    recall = correct / true if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def entity_f1(true_tag_seqs, pred_tag_seqs):
    """Entity-level precision, recall and F1, overall and per entity type.

    Args:
        true_tag_seqs: list of reference tag sequences (lists of strings).
        pred_tag_seqs: list of predicted tag sequences, same lengths.

    Returns:
        dict with `precision`, `recall`, `f1` (micro over all entities),
        `support` (number of true entities), `predicted`, `correct`, and
        `per_type`: `{type: {"precision", "recall", "f1", "support"}}` for
        every type seen in either the reference or the prediction.

    Example:

    ```python
    scores = entity_f1([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
    scores["f1"]  # 0.0: the predicted span is too short
    ```
    """
    for name, seqs in (("true_tag_seqs", true_tag_seqs), ("pred_tag_seqs", pred_tag_seqs)):
        if isinstance(seqs, str) or not hasattr(seqs, "__len__"):
            raise ValueError(
                f"`{name}` must be a list of tag sequences. Received: {type(seqs).__name__}"
            )
        flat = next((i for i, tags in enumerate(seqs) if isinstance(tags, str)), None)
        if flat is not None:
            # A string would be read character by character ("O" is a valid tag).
            raise ValueError(
                f"`{name}` must be a list of tag sequences (lists of strings); item "
                f"{flat} is the string {seqs[flat]!r}. Wrap one sequence in a list."
            )
    if len(true_tag_seqs) != len(pred_tag_seqs):
        raise ValueError(
            "entity_f1 needs as many predicted as true sequences. Received "
            f"{len(true_tag_seqs)} true and {len(pred_tag_seqs)} predicted."
        )
    true_count, pred_count, correct_count = Counter(), Counter(), Counter()
    for i, (true_tags, pred_tags) in enumerate(zip(true_tag_seqs, pred_tag_seqs)):
        if len(true_tags) != len(pred_tags):
            raise ValueError(
                f"Sequence {i} has {len(true_tags)} true tags but "
                f"{len(pred_tags)} predicted tags; they must be equal."
            )
        true_entities = set(extract_entities(true_tags))
        pred_entities = set(extract_entities(pred_tags))
        true_count.update(e[0] for e in true_entities)
        pred_count.update(e[0] for e in pred_entities)
        correct_count.update(e[0] for e in true_entities & pred_entities)

    per_type = {}
    for entity_type in sorted(set(true_count) | set(pred_count)):
        p, r, f = _prf(
            correct_count[entity_type],
            pred_count[entity_type],
            true_count[entity_type],
        )
        per_type[entity_type] = {
            "precision": p,
            "recall": r,
            "f1": f,
            "support": true_count[entity_type],
        }
    correct = sum(correct_count.values())
    predicted = sum(pred_count.values())
    support = sum(true_count.values())
    p, r, f = _prf(correct, predicted, support)
    return {
        "precision": p,
        "recall": r,
        "f1": f,
        "support": support,
        "predicted": predicted,
        "correct": correct,
        "per_type": per_type,
    }
