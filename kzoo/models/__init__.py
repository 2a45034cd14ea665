"""Model builders: sequence tagging and time-series forecasting."""

from kzoo.models.forecaster import Forecaster
from kzoo.models.sequence_tagger import CharacterEncoder, SequenceTagger

__all__ = ["CharacterEncoder", "Forecaster", "SequenceTagger"]
