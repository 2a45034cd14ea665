"""Losses of kzoo models (the tagger's CRF loss lives with `kzoo.layers.crf`)."""

from kzoo.losses.masked_sequence import MaskedSequenceLoss

__all__ = ["MaskedSequenceLoss"]
