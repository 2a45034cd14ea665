"""Recurrent cells, the layer that runs them, wrappers and attention."""

from kzoo.layers.activation_regularization import ActivationRegularization
from kzoo.layers.attention import BahdanauAttention, LuongAttention
from kzoo.layers.attention_decoder_cell import AttentionDecoderCell
from kzoo.layers.bidirectional import Bidirectional
from kzoo.layers.character_encoder import CharacterEncoder
from kzoo.layers.crf import CRF
from kzoo.layers.gru_cell import GRUCell
from kzoo.layers.lstm_cell import LSTMCell
from kzoo.layers.pooling import (
    AttentionPooling1D,
    GlobalMaskedAveragePooling1D,
    GlobalMaskedMaxPooling1D,
)
from kzoo.layers.recurrent_layers import GRU, LSTM, SimpleRNN
from kzoo.layers.reverse_sequence import ReverseSequence
from kzoo.layers.rnn import RNN
from kzoo.layers.sampled_softmax import SampledSoftmax
from kzoo.layers.simple_rnn_cell import SimpleRNNCell
from kzoo.layers.stacked_cells import StackedRNNCells
from kzoo.layers.stacked_rnn import StackedRNN
from kzoo.layers.tied_embedding import TiedEmbedding
from kzoo.layers.unknown_word_dropout import UnknownWordDropout
from kzoo.layers.word_type_dropout import WordTypeDropout

__all__ = [
    "RNN",
    "GRU",
    "LSTM",
    "SimpleRNN",
    "GRUCell",
    "LSTMCell",
    "SimpleRNNCell",
    "StackedRNNCells",
    "StackedRNN",
    "Bidirectional",
    "BahdanauAttention",
    "LuongAttention",
    "AttentionDecoderCell",
    "CRF",
    "AttentionPooling1D",
    "GlobalMaskedAveragePooling1D",
    "GlobalMaskedMaxPooling1D",
    "WordTypeDropout",
    "CharacterEncoder",
    "UnknownWordDropout",
    "ActivationRegularization",
    "SampledSoftmax",
    "TiedEmbedding",
    "ReverseSequence",
]
