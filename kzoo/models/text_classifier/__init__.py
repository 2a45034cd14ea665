"""Text classification: backbone (ids -> features), preprocessor (text -> ids), task."""

from kzoo.models.text_classifier.backbone import TextClassifierBackbone
from kzoo.models.text_classifier.preprocessor import TextClassifierPreprocessor
from kzoo.models.text_classifier.text_classifier import TextClassifier

__all__ = ["TextClassifier", "TextClassifierBackbone", "TextClassifierPreprocessor"]
