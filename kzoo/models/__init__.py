"""Model builders: language models, encoder-decoder translation, and more."""

from kzoo.models.decoding import BeamSearch, gnmt_length_penalty, greedy_search
from kzoo.models.language_model import LanguageModel, TiedEmbedding
from kzoo.models.seq2seq import MaskedSequenceLoss, Seq2Seq

__all__ = [
    "LanguageModel",
    "TiedEmbedding",
    "Seq2Seq",
    "MaskedSequenceLoss",
    "BeamSearch",
    "greedy_search",
    "gnmt_length_penalty",
]
