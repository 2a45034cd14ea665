"""Finding dataset files: the Keras download cache, offline seeding, local paths.

Every loader in `kzoo.datasets` gets its file through `fetch`, which calls
`keras.utils.get_file` (download with a progress bar into the Keras cache, then
optional extraction). Two ways avoid the network:

- `path=`: a file or folder the user already has, used as is (an archive that
  must be extracted is extracted into the Keras cache).
- the environment variable `KZOO_DATA_DIR`: a folder laid out like the
  project's `shared/data`. When it holds the dataset's file, that file is first
  copied into the Keras cache, where `get_file` then finds it and downloads
  nothing.

The cache folder is `cache_dir` when given, else `$KERAS_HOME` (read at call
time, so it can be changed after `import keras`), else `~/.keras`.
"""

import gzip
import hashlib
import os
import shutil
import tarfile
import zipfile
import zlib

import keras

DATA_DIR_ENV = "KZOO_DATA_DIR"

# Written into an extraction folder once extraction finished, so later calls
# neither re-extract (100,000 files for IMDB) nor trust a half-written folder.
_DONE_MARKER = ".kzoo_extracted"

# What a truncated or damaged archive/compressed file raises while being read.
_CORRUPT_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    gzip.BadGzipFile,
    EOFError,
    zlib.error,
)


def cache_root(cache_dir=None):
    """Returns the Keras cache folder that `fetch` uses (`cache_dir` if given)."""
    if cache_dir is None:
        cache_dir = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    cache_dir = os.path.expanduser(os.fspath(cache_dir))
    try:
        os.makedirs(cache_dir, exist_ok=True)
    except OSError:
        pass
    if not os.access(cache_dir, os.W_OK):
        # Same fallback as `keras.utils.get_file`, so both agree on the folder.
        cache_dir = os.path.join("/tmp", ".keras")
    return cache_dir


def fetch(fname, origin, local_name=None, extract=False, path=None, cache_dir=None):
    """Returns the local path of a dataset file, downloading it if needed.

    Args:
        fname: file name in the Keras cache when downloaded from `origin`
            (no folder part).
        origin: public URL of the file.
        local_name: name of the file relative to `$KZOO_DATA_DIR`, e.g.
            `"ptb/ptb.train.txt.gz"`. Its folder part (if any) is also the
            sub-folder of `<cache>/datasets/` the file is cached in. A copy
            seeded from `$KZOO_DATA_DIR` keeps its own base name, so its
            extension always tells its format.
        extract: whether the file is a tar or zip archive to extract. The
            extraction folder is returned instead of the archive.
        path: a local file or folder to use instead. A folder, or a file when
            `extract` is False, is returned as is; an archive is extracted into
            the cache under a name unique to that file.
        cache_dir: Keras cache folder (default: `$KERAS_HOME` or `~/.keras`).

    Returns:
        The path of the file, or of the extraction folder if `extract`.

    Raises:
        FileNotFoundError: `path` does not exist.
        OSError: the file is in neither place and cannot be downloaded.
        ValueError: the archive is not a readable tar/zip archive.
    """
    if os.sep in fname or "." not in fname:
        raise ValueError(f"`fname` must be a file name with an extension. Received: fname={fname}")
    subdir = "datasets"
    if local_name and os.path.dirname(local_name):
        subdir = os.path.join(subdir, os.path.dirname(local_name))

    seed = None
    if path is not None:
        path = os.path.abspath(os.path.expanduser(os.fspath(path)))
        if not os.path.exists(path):
            raise FileNotFoundError(f"Dataset file not found: {path}")
        if os.path.isdir(path) or not extract:
            return path
        seed = path
        fname = _unique_name(path)

    root = cache_root(cache_dir)
    if path is None and local_name:
        data_dir = os.environ.get(DATA_DIR_ENV)
        if data_dir:
            candidate = os.path.join(os.path.expanduser(data_dir), local_name)
            if os.path.isfile(candidate):
                seed = candidate
        seeded_name = os.path.basename(local_name)
        if seed or os.path.exists(os.path.join(root, subdir, seeded_name)):
            fname = seeded_name  # a copy seeded now or by an earlier call
    target = os.path.join(root, subdir, fname)
    extraction_dir = os.path.join(root, subdir, fname[: fname.find(".")] + "_extracted")
    if extract and os.path.exists(os.path.join(extraction_dir, _DONE_MARKER)):
        return extraction_dir

    if seed is not None and not os.path.exists(target):
        _copy_into_cache(seed, target)

    if not os.path.exists(target):
        try:
            keras.utils.get_file(fname, origin=origin, cache_subdir=subdir, cache_dir=root)
        except (Exception, KeyboardInterrupt) as e:
            hint = f", or set {DATA_DIR_ENV} to a folder holding {local_name}" if local_name else ""
            raise OSError(
                f"Could not download {origin} to {target}: {e}. Without internet, "
                f"pass `path=` to a local copy{hint}."
            ) from e
    if not extract:
        return target

    if not (tarfile.is_tarfile(target) or zipfile.is_zipfile(target)):
        raise ValueError(
            f"{target} is not a readable tar or zip archive (corrupt or "
            "incomplete file?). Delete it and try again."
        )
    if os.path.exists(extraction_dir):
        shutil.rmtree(extraction_dir)  # left by an interrupted extraction
    try:
        keras.utils.get_file(
            fname, origin=origin, cache_subdir=subdir, cache_dir=root, extract=True
        )
    except _CORRUPT_ERRORS as e:
        shutil.rmtree(extraction_dir, ignore_errors=True)
        raise ValueError(
            f"Could not extract {target}: {type(e).__name__}: {e}. The archive is "
            "corrupt or incomplete; delete it and try again."
        ) from e
    with open(os.path.join(extraction_dir, _DONE_MARKER), "w") as f:
        f.write(target + "\n")
    return extraction_dir


def read_text(path, member=None):
    """Reads a UTF-8 text file that may be plain, gzipped or inside a zip.

    The format is recognised from the file's first bytes, not its name.

    Args:
        path: the file.
        member: for a zip, the base name of the member to read (e.g.
            `"spa.txt"`); it may sit in a sub-folder of the zip.

    Returns:
        The decoded text, line endings unchanged.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    try:
        if magic[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as f:
                data = f.read()
        elif magic == b"PK\x03\x04":
            with zipfile.ZipFile(path) as zf:
                names = [
                    n for n in zf.namelist() if member is not None and os.path.basename(n) == member
                ]
                if len(names) != 1:
                    raise ValueError(
                        f"Zip archive {path} must hold exactly one file named "
                        f"{member!r}; it holds {zf.namelist()}"
                    )
                data = zf.read(names[0])
        else:
            with open(path, "rb") as f:
                data = f.read()
    except _CORRUPT_ERRORS as e:
        raise ValueError(
            f"Could not read {path}: {type(e).__name__}: {e} (corrupt or incomplete file?)"
        ) from e
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not valid UTF-8 text: {e}") from e


def _copy_into_cache(source, target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    partial = target + ".part"
    shutil.copyfile(source, partial)
    os.replace(partial, target)


def _unique_name(path):
    """A cache name for a user's archive: its name plus a key of path/size/mtime."""
    stat = os.stat(path)
    key = hashlib.sha1(
        f"{os.path.realpath(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode()
    ).hexdigest()[:12]
    base = os.path.basename(path)
    dot = base.find(".")
    if dot <= 0:
        return f"{base or 'archive'}-{key}.archive"
    return f"{base[:dot]}-{key}{base[dot:]}"
