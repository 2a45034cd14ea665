"""Model builders, raw-text pipelines, decoding and loading of saved models."""

from kzoo.layers.character_encoder import CharacterEncoder
from kzoo.layers.pooling import (
    AttentionPooling1D,
    GlobalMaskedAveragePooling1D,
    GlobalMaskedMaxPooling1D,
)
from kzoo.layers.tied_embedding import TiedEmbedding
from kzoo.layers.unknown_word_dropout import UnknownWordDropout
from kzoo.layers.word_type_dropout import WordTypeDropout
from kzoo.models.forecaster import Forecaster, ForecasterBackbone, ForecasterPreprocessor
from kzoo.models.language_model import (
    LanguageModel,
    LanguageModelBackbone,
    LanguageModelPreprocessor,
)
from kzoo.models.loading import load
from kzoo.models.presets import from_preset, get_preset, list_presets
from kzoo.models.seq2seq import MaskedSequenceLoss, Seq2Seq, Seq2SeqBackbone, Seq2SeqPreprocessor
from kzoo.models.sequence_tagger import (
    SequenceTagger,
    SequenceTaggerBackbone,
    SequenceTaggerPreprocessor,
)
from kzoo.models.task import Task
from kzoo.models.text_classifier import (
    TextClassifier,
    TextClassifierBackbone,
    TextClassifierPreprocessor,
)
from kzoo.models.text_pipeline import TextPipeline
from kzoo.preprocessing import WordTokenizer

__all__ = [
    "AttentionPooling1D",
    "CharacterEncoder",
    "Forecaster",
    "ForecasterBackbone",
    "ForecasterPreprocessor",
    "GlobalMaskedAveragePooling1D",
    "GlobalMaskedMaxPooling1D",
    "LanguageModel",
    "LanguageModelBackbone",
    "LanguageModelPreprocessor",
    "MaskedSequenceLoss",
    "Seq2Seq",
    "Seq2SeqBackbone",
    "Seq2SeqPreprocessor",
    "SequenceTagger",
    "SequenceTaggerBackbone",
    "SequenceTaggerPreprocessor",
    "Task",
    "TextClassifier",
    "TextClassifierBackbone",
    "TextClassifierPreprocessor",
    "TextPipeline",
    "TiedEmbedding",
    "UnknownWordDropout",
    "WordTokenizer",
    "WordTypeDropout",
    "from_preset",
    "get_preset",
    "list_presets",
    "load",
]
