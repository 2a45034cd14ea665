"""Raw text <-> ids in plain Python (no TensorFlow): tokenizers, text checks, detokenizing."""

from kzoo.preprocessing.text import detokenize, learn_casing, split_words
from kzoo.preprocessing.word_tokenizer import OOV_TOKEN, PAD_TOKEN, WordTokenizer, check_texts

__all__ = [
    "OOV_TOKEN",
    "PAD_TOKEN",
    "WordTokenizer",
    "check_texts",
    "detokenize",
    "learn_casing",
    "split_words",
]
