"""Sequence-to-sequence translation: backbone (network), preprocessor (text <-> ids), task."""

from kzoo.losses import MaskedSequenceLoss
from kzoo.models.seq2seq.backbone import Seq2SeqBackbone
from kzoo.models.seq2seq.preprocessor import Seq2SeqPreprocessor
from kzoo.models.seq2seq.seq2seq import Seq2Seq

__all__ = ["MaskedSequenceLoss", "Seq2Seq", "Seq2SeqBackbone", "Seq2SeqPreprocessor"]
