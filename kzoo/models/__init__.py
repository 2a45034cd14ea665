"""Model builders that compose kzoo layers."""

from kzoo.models.language_model import LanguageModel, TiedEmbedding

__all__ = ["LanguageModel", "TiedEmbedding"]
