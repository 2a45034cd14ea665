"""The recurrent language model: backbone (network), preprocessor (text <-> ids), task."""

from kzoo.models.language_model.backbone import LanguageModelBackbone
from kzoo.models.language_model.language_model import LanguageModel
from kzoo.models.language_model.preprocessor import LanguageModelPreprocessor, bptt_batches

__all__ = ["LanguageModel", "LanguageModelBackbone", "LanguageModelPreprocessor", "bptt_batches"]
