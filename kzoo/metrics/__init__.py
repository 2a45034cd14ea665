"""Evaluation metrics for kzoo tasks."""

from kzoo.metrics.forecasting import mae, mase, rmse
from kzoo.metrics.ner import entity_f1, extract_entities
from kzoo.metrics.perplexity import Perplexity

__all__ = ["Perplexity", "entity_f1", "extract_entities", "mae", "mase", "rmse"]
