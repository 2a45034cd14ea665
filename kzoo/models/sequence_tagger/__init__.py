"""BiLSTM(-CRF) sequence tagger (e.g. CoNLL-2003 NER), split keras-hub style.

- `preprocessor.py`: `SequenceTaggerPreprocessor`, raw sentences <-> ids
  (tokenizer, word/character/casing ids, tag ids; vocabularies in the config);
- `backbone.py`: `SequenceTaggerBackbone`, token features -> BiLSTM stack;
- `sequence_tagger.py`: `SequenceTagger`, the task: tag scores, CRF or
  softmax decoding, the built-in loss, `tag()` on raw sentences.
"""

from kzoo.models.sequence_tagger.backbone import SequenceTaggerBackbone
from kzoo.models.sequence_tagger.preprocessor import (
    CASINGS,
    SequenceTaggerPreprocessor,
    casing_of,
)
from kzoo.models.sequence_tagger.sequence_tagger import SequenceTagger

__all__ = [
    "CASINGS",
    "SequenceTagger",
    "SequenceTaggerBackbone",
    "SequenceTaggerPreprocessor",
    "casing_of",
]
