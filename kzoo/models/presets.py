"""Presets: the trained models kzoo ships, loadable by name.

`kzoo.models.from_preset("imdb_bigru")` (or `TaskClass.from_preset(...)`)
finds a preset's `.keras` file, checks its sha256 and loads it. The file is
looked for, in this order:

1. the repository's `saved_models/` folder (a source checkout);
2. the user cache, `<Keras cache dir>/kzoo_presets/` (`$KERAS_HOME`, default
   `~/.keras`), or the `cache_dir` given;
3. a download with `keras.utils.get_file(file_hash=sha256)` from the base URL
   `base_url`, or else the environment variable `KZOO_PRESET_BASE_URL` (the
   file's URL is the base URL joined with its file name), into the cache.

A file whose sha256 differs from the registry's is refused. After re-saving
a shipped model, `python tools/update_presets.py` refreshes the hashes here.

Example:

>>> kzoo.models.list_presets()
['char_lm_tinyshakespeare', 'forecast_airline', ...]
>>> kzoo.models.get_preset("ner_crf").metrics
{'test_entity_f1': 0.8608, 'valid_entity_f1': 0.9124}
>>> tagger = kzoo.models.from_preset("ner_crf")
"""

import contextlib
import dataclasses
import hashlib
import os
import sys

# Environment variable with the URL that serves the preset files.
BASE_URL_VARIABLE = "KZOO_PRESET_BASE_URL"
# The user cache's folder inside the Keras cache dir.
CACHE_SUBDIR = "kzoo_presets"
# The repository's folder of shipped models (present in a source checkout).
SAVED_MODELS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "saved_models"
)


@dataclasses.dataclass(frozen=True)
class Preset:
    """One shipped model.

    Attributes:
        name: the preset name, e.g. `"imdb_bigru"`.
        task_class: the name of its `kzoo.models` task class.
        file: the `.keras` file name (in `saved_models/`, the cache, at the URL).
        sha256: hex digest of the file.
        metrics: the held-out scores its model card reports (fractions for
            accuracy and F1, BLEU on 0-100, perplexity, nats, raw units for
            forecasting errors).
        card: the model card (a Markdown file next to the model).
        description: one line.
    """

    name: str
    task_class: str
    file: str
    sha256: str
    metrics: dict
    card: str
    description: str


# The registry. `tools/update_presets.py` rewrites the `sha256=` lines; the
# metrics are copied from each model card (`card`), never recomputed here.
_PRESETS = (
    Preset(
        name="imdb_bigru",
        task_class="TextClassifier",
        file="imdb_bigru.keras",
        sha256="1a0b2cc01eae6bcd55be47bbdd95ec3cbf6a64a8dc53e3736f3b010656f055e3",
        metrics={"test_accuracy": 0.8908},
        card="imdb_bigru.md",
        description="IMDB sentiment, bidirectional GRU on raw English text (binary).",
    ),
    Preset(
        name="imdb_bigru_ensemble",
        task_class="TextPipeline",
        file="imdb_bigru_ensemble.keras",
        sha256="88bc5ec5a60a2e29c7cf1110a961ec57bd88a461d1e4cdaaacdcde4415bdf0e1",
        metrics={"test_accuracy": 0.8944},
        card="imdb_bigru_ensemble.md",
        description="IMDB sentiment, average of two bidirectional GRU classifiers.",
    ),
    Preset(
        name="imdb_ulmfit",
        task_class="TextClassifier",
        file="imdb_ulmfit.keras",
        sha256="8dd2dbcece5e5e830519291a3b7156f78cbec3ac371243b5ca954deab0810400",
        metrics={"test_accuracy": 0.8981, "val_accuracy": 0.8844},
        card="imdb_ulmfit.md",
        description="IMDB sentiment, 3x192 LSTM fine-tuned from the review language model (ULMFiT).",
    ),
    Preset(
        name="imdb_lm",
        task_class="LanguageModel",
        file="imdb_lm.keras",
        sha256="a51b804086ed75cc53d0df4d49d6a16ce83e64b2cac9b8017ce3907e52c724e9",
        metrics={"validation_perplexity": 157.28},
        card="imdb_ulmfit.md",
        description="Word language model of IMDB reviews, 3x192 AWD-LSTM, 20,000 words.",
    ),
    Preset(
        name="char_lm_tinyshakespeare",
        task_class="LanguageModel",
        file="char_lm_tinyshakespeare.keras",
        sha256="5f4ceb1276084fc61f5f9da05a449a93e020477acd37fd0e5d6d5d34c8795611",
        metrics={"validation_nats_per_char": 1.4468, "validation_bits_per_char": 2.0873},
        card="char_lm_tinyshakespeare.md",
        description="Character-level 2x512 LSTM language model of Tiny Shakespeare.",
    ),
    Preset(
        name="word_lm_ptb_small",
        task_class="LanguageModel",
        file="word_lm_ptb_small.keras",
        sha256="125e36dd08ce335ebc55466ca71599c13a6c054dd9aa7dcd7168b3ea6ca9da3f",
        metrics={"validation_perplexity": 112.36, "test_perplexity": 108.12},
        card="word_lm_ptb_small.md",
        description="Word-level 2x200 LSTM language model of Penn Treebank (Zaremba small).",
    ),
    Preset(
        name="word_lm_ptb_awd_small",
        task_class="LanguageModel",
        file="word_lm_ptb_awd_small.keras",
        sha256="594b4c621d2fd0e6500e151b3a36caca87771b3eb05a83f25f76d6a10726a79c",
        metrics={"validation_perplexity": 98.24, "test_perplexity": 95.69},
        card="word_lm_ptb_awd_small.md",
        description="Word-level 2x200 tied LSTM of Penn Treebank with AWD-LSTM regularisation.",
    ),
    Preset(
        name="translate_spa_eng",
        task_class="Seq2Seq",
        file="translate_spa_eng.keras",
        sha256="6e528ee02ba3c2d4116805b406ae57c72c6815e36b06a20e245d98cac004042b",
        metrics={"test_bleu_greedy": 45.73, "test_bleu_beam4": 47.39},
        card="translate_spa_eng.md",
        description="Spanish to English, BiLSTM encoder with Luong attention.",
    ),
    Preset(
        name="ner_crf",
        task_class="SequenceTagger",
        file="ner_crf.keras",
        sha256="566be7154c4420b4091b6f49ff0bb0c9fbca493bab457285e87dd0b8b924f9f5",
        metrics={"test_entity_f1": 0.8608, "valid_entity_f1": 0.9124},
        card="ner_crf.md",
        description="CoNLL-2003 English named entities, char CNN + BiLSTM + CRF.",
    ),
    Preset(
        name="forecast_airline",
        task_class="Forecaster",
        file="forecast_airline.keras",
        sha256="b3244d59bfa1fff3cdfb2ca8fedaa8b149e90183f028c8328cb13999e4647f73",
        metrics={"test_mae": 23.3, "test_rmse": 29.25, "test_mase": 0.798},
        card="forecast_airline.md",
        description="Monthly airline passengers, 12 months ahead from 24 (LSTM, calendar).",
    ),
    Preset(
        name="forecast_sine",
        task_class="Forecaster",
        file="forecast_sine.keras",
        sha256="7ef65f11c162380176ea2e541afa0ebf1e2c0bb724954f0ee3f99d59a26cbf55",
        metrics={"test_mae": 0.08541, "test_rmse": 0.1127, "test_mase": 0.746},
        card="forecast_sine.md",
        description="Noisy sine wave, 10 steps ahead from 50, autoregressive LSTM.",
    ),
    Preset(
        name="forecast_temperatures",
        task_class="Forecaster",
        file="forecast_temperatures.keras",
        sha256="e49bd67e66200f5355ec2d804354a6b7e8b3dd5e9d248d74dc67188b7d3c4696",
        metrics={"test_mae": 1.957, "test_rmse": 2.543, "test_mase": 0.623},
        card="forecast_temperatures.md",
        description="Daily minimum temperatures (Melbourne), 7 days ahead from 30 (GRU).",
    ),
)
PRESETS = {preset.name: preset for preset in _PRESETS}


def list_presets(task_class=None):
    """Names of the shipped models, sorted.

    Args:
        task_class: optional task class (or its name) to list only its
            presets, e.g. `kzoo.models.Forecaster`.

    Returns:
        A list of preset names; `get_preset(name)` gives the details.
    """
    if task_class is not None and not isinstance(task_class, str):
        task_class = getattr(task_class, "__name__", task_class)
    return sorted(
        name
        for name, preset in PRESETS.items()
        if task_class is None or preset.task_class == task_class
    )


def get_preset(name):
    """The registry entry of the preset `name`.

    Raises:
        ValueError: `name` is not a preset; the message lists the known ones.
    """
    preset = find_preset(name)
    if preset is None:
        raise ValueError(
            f"Unknown preset {name!r}. Known presets: {', '.join(list_presets())}. "
            "To load a file, give its path (ending in '.keras')."
        )
    return preset


def find_preset(name_or_path):
    """The registry entry named `name_or_path`, or None (e.g. for a path)."""
    if isinstance(name_or_path, str):
        return PRESETS.get(name_or_path)
    return None


def looks_like_preset_name(value):
    """Whether `value` is meant as a preset name rather than a file path.

    Registered names are; so is any other str without a path separator or a
    dot that names no existing file (an unknown preset, reported as such).
    """
    if not isinstance(value, str):
        return False
    if value in PRESETS:
        return True
    return (
        bool(value)
        and not any(mark in value for mark in (os.sep, "/", "."))
        and not os.path.exists(value)
    )


def file_sha256(path):
    """Hex sha256 digest of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_hash(path, preset, where):
    actual = file_sha256(path)
    if actual != preset.sha256:
        hint = (
            "If you re-saved this model on purpose, run `python tools/update_presets.py` to "
            "record the new hash."
            if where == "saved_models/"
            else "Delete it to download it again."
        )
        raise ValueError(
            f"The file of preset {preset.name!r} at {path!r} ({where}) fails its sha256 check: "
            f"expected {preset.sha256}, found {actual}. The file is damaged or not the one "
            f"the registry describes. {hint}"
        )
    return path


def default_cache_dir():
    """The Keras cache dir (`$KERAS_HOME`, default `~/.keras`)."""
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def preset_path(name, cache_dir=None, base_url=None, local_dir=SAVED_MODELS):
    """The path of a verified local copy of preset `name`'s file.

    Looks in `local_dir` (the repository's `saved_models/`), then in the
    user cache, then downloads into the cache from `base_url` (default: the
    environment variable `KZOO_PRESET_BASE_URL`). Every file found or
    downloaded must have the registry's sha256.

    Args:
        name: a preset name (see `list_presets()`).
        cache_dir: the cache folder's parent (default: the Keras cache dir);
            files go to `<cache_dir>/kzoo_presets/`.
        base_url: URL of the folder that serves the files (`file://` URLs
            work too); default `$KZOO_PRESET_BASE_URL`.
        local_dir: the folder searched first; None skips it.

    Returns:
        The path of the `.keras` file.

    Raises:
        ValueError: unknown name; a file with another sha256 (a local copy,
            a cached one that cannot be replaced, or a download); no copy
            and no base URL.
        OSError: the download failed (the message names the URL).
    """
    preset = get_preset(name)
    if local_dir is not None:
        local = os.path.join(os.fspath(local_dir), preset.file)
        if os.path.isfile(local):
            return _check_hash(local, preset, "saved_models/")
    cache_dir = os.fspath(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = os.path.join(cache_dir, CACHE_SUBDIR, preset.file)
    if os.path.isfile(cached) and file_sha256(cached) == preset.sha256:
        return cached
    base_url = base_url or os.environ.get(BASE_URL_VARIABLE)
    if not base_url:
        found = (
            f"a cached copy at {cached!r} fails its sha256 check"
            if os.path.isfile(cached)
            else (f"no copy in {local_dir!r} or {os.path.dirname(cached)!r}")
        )
        raise ValueError(
            f"Cannot find the file of preset {name!r} ({preset.file}): {found}, and no base URL "
            f"to download it from. Set the environment variable {BASE_URL_VARIABLE} (or pass "
            "`base_url`) to a URL that serves the preset files."
        )
    return _download(preset, base_url, cache_dir, cached)


def _download(preset, base_url, cache_dir, target):
    import keras

    url = base_url.rstrip("/") + "/" + preset.file
    partial = f"{preset.file}.tmp-{os.getpid()}"  # renamed onto the target once verified
    os.makedirs(os.path.dirname(target), exist_ok=True)  # else get_file falls back to /tmp
    try:
        # Keras prints its progress to stdout; keep stdout for results (e.g. `--json`).
        with contextlib.redirect_stdout(sys.stderr):
            path = keras.utils.get_file(
                fname=partial,
                origin=url,
                file_hash=preset.sha256,
                hash_algorithm="sha256",
                cache_subdir=CACHE_SUBDIR,
                cache_dir=cache_dir,
                force_download=True,
            )
    except ValueError as error:  # the downloaded file has another hash
        _remove(os.path.join(os.path.dirname(target), partial))
        raise ValueError(
            f"The download of preset {preset.name!r} from {url!r} fails its sha256 check "
            f"(expected {preset.sha256}): {error}"
        ) from error
    except Exception as error:  # get_file raises a bare Exception on URL errors
        _remove(os.path.join(os.path.dirname(target), partial))
        raise OSError(f"Could not download preset {preset.name!r} from {url!r}: {error}") from error
    # get_file may fall back to another folder when `cache_dir` is not writable.
    target = os.path.join(os.path.dirname(path), preset.file)
    os.replace(path, target)
    return _check_hash(target, preset, "downloaded")


def _remove(path):
    if os.path.exists(path):
        os.remove(path)


def from_preset(name_or_path, compile=True, **kwargs):
    """Loads a shipped model by preset name (or a `.keras` file by path).

    The same as `kzoo.models.load`; see `preset_path` for where the file is
    looked for and `kzoo.models.load` for `compile`.

    Example:

    >>> clf = kzoo.models.from_preset("imdb_bigru")
    >>> clf.predict(["A wonderful film."])
    """
    from kzoo.models.loading import load

    return load(name_or_path, compile=compile, **kwargs)
