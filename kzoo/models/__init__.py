"""Model builders, raw-text pipelines and loading of saved models."""

from kzoo.models.loading import load
from kzoo.models.pooling import (
    AttentionPooling1D,
    GlobalMaskedAveragePooling1D,
    GlobalMaskedMaxPooling1D,
)
from kzoo.models.text_classifier import TextClassifier
from kzoo.models.text_pipeline import TextPipeline
from kzoo.models.tokenizer import WordTokenizer

__all__ = [
    "AttentionPooling1D",
    "GlobalMaskedAveragePooling1D",
    "GlobalMaskedMaxPooling1D",
    "TextClassifier",
    "TextPipeline",
    "WordTokenizer",
    "load",
]
