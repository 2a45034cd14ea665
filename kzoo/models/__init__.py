"""Model builders: encoder-decoder translation."""

from kzoo.models.decoding import BeamSearch, gnmt_length_penalty, greedy_search
from kzoo.models.seq2seq import MaskedSequenceLoss, Seq2Seq

__all__ = [
    "Seq2Seq",
    "MaskedSequenceLoss",
    "BeamSearch",
    "greedy_search",
    "gnmt_length_penalty",
]
