"""Dataset loaders: real public datasets, downloaded through the Keras cache.

Set `KZOO_DATA_DIR` to a folder laid out like the project's `shared/data` to
work offline; every loader also takes `path=` for a local copy.

Modules: `imdb`, `spa_eng`, `conll2003`, `ptb`, `text_corpora`, `timeseries`.
"""

from kzoo.datasets import conll2003, imdb, ptb, spa_eng, text_corpora, timeseries
from kzoo.datasets._download import fetch

__all__ = ["conll2003", "fetch", "imdb", "ptb", "spa_eng", "text_corpora", "timeseries"]
