"""Evaluation metrics for kzoo tasks."""

from kzoo.metrics.ner import entity_f1, extract_entities

__all__ = ["entity_f1", "extract_entities"]
