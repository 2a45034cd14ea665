"""Atomic writes: a file (or folder) appears whole at its path, or not at all.

Every file kzoo writes goes through here. The data is written to a temporary
name in the target's own folder (so the final rename never crosses a file
system), flushed to disk, then renamed over the target with `os.replace`. An
exception, Ctrl-C or SIGKILL before the rename leaves the previous file at the
target untouched; a temporary file left by a SIGKILL is named
`.<name>.tmp-<pid>-<random><suffix>` and never mistaken for the target. The
next write to the same target removes such leftovers once their process is
gone and they have not changed for `STALE_SECONDS`.
"""

import contextlib
import json
import os
import re
import secrets
import shutil
import time

# How long a leftover temporary file must sit unchanged (and its process be
# gone) before a later write removes it: long enough that a slow writer on
# another machine sharing the folder is never mistaken for a dead one.
STALE_SECONDS = 600


# Suffixes of two parts that savers insist on (`save_weights` wants `.weights.h5`).
_DOUBLE_SUFFIXES = (".weights.h5", ".weights.json", ".tar.gz")


def _split_name(name):
    for suffix in _DOUBLE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    return os.path.splitext(name)


def _temporary_sibling(path):
    folder, name = os.path.split(os.path.abspath(path))
    stem, suffix = _split_name(name)
    # The suffix is kept: `model.save` insists on `.keras`, h5py on nothing.
    return os.path.join(folder, f".{stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to someone else, or cannot tell
    return True


def _remove_stale_temporaries(path):
    """Removes the temporary files of earlier writes to `path` that were killed."""
    folder, name = os.path.split(os.path.abspath(path))
    stem, suffix = _split_name(name)
    pattern = re.compile(rf"\.{re.escape(stem)}\.tmp-(\d+)-[0-9a-f]{{8}}{re.escape(suffix)}\Z")
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    now = time.time()
    for entry in entries:
        match = pattern.match(entry)
        if not match or int(match.group(1)) == os.getpid():
            continue
        candidate = os.path.join(folder, entry)
        try:
            age = now - os.lstat(candidate).st_mtime
        except OSError:
            continue
        if age > STALE_SECONDS and not _process_alive(int(match.group(1))):
            _remove(candidate)


def _fsync_path(path):
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            for name in files:
                _fsync_path(os.path.join(root, name))
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder; the rename still is atomic
    finally:
        os.close(fd)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def check_writable_folder(path):
    """Raises a clear error unless the folder that will hold `path` can be written.

    Call it before long work (training) whose result goes to `path`, so that an
    unwritable destination is reported in the first second, not after hours.
    Folders that do not exist yet are fine as long as the nearest existing one
    can be written (they are created when the file is written). Besides the
    permission bits, a probe file is created and removed, which also catches
    read-only file systems and users (such as root) whom the bits do not stop.

    Args:
        path: the file that will be written.

    Raises:
        NotADirectoryError: a part of the folder path is a file.
        PermissionError: the folder cannot be written.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    probe_root = folder
    while not os.path.lexists(probe_root):
        parent = os.path.dirname(probe_root)
        if parent == probe_root:
            break
        probe_root = parent
    if not os.path.isdir(probe_root):
        raise NotADirectoryError(
            f"Cannot write {path!r}: {probe_root!r} is a file, not a folder. "
            "Choose another output folder."
        )
    if not os.access(probe_root, os.W_OK | os.X_OK):
        raise PermissionError(
            f"Cannot write {path!r}: the folder {probe_root!r} is not writable. "
            "Choose another output folder."
        )
    probe = os.path.join(probe_root, f".kzoo-write-probe-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise PermissionError(
            f"Cannot write {path!r}: creating a file in {probe_root!r} failed "
            f"({e.strerror or e}). Choose another output folder."
        ) from e
    os.close(fd)
    with contextlib.suppress(OSError):
        os.remove(probe)


@contextlib.contextmanager
def atomic_path(path, durable=True):
    """Yields a temporary path to write; on success it replaces `path` at once.

    Works for a single file and for a folder (e.g. a SavedModel): whatever the
    body creates at the yielded path becomes `path`. If the body raises, the
    temporary output is removed and `path` keeps its previous content.

    Replacing an existing folder takes two renames (old out of the way, new
    in); a crash between them leaves the old folder at `<path>.old-<pid>-...`
    rather than losing it.

    Args:
        path: the file or folder to write.
        durable: flush the new content to disk (`fsync`) before the rename,
            so that it also survives a power cut. `False` skips that, e.g.
            for a cache folder of many thousand files that can be rebuilt.

    Example:

    >>> with atomic_path("saved_models/model.keras") as tmp:
    ...     model.save(tmp)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    _remove_stale_temporaries(path)
    tmp = _temporary_sibling(path)
    try:
        yield tmp
        if not os.path.exists(tmp):
            raise FileNotFoundError(f"Nothing was written to the temporary path for {path!r}.")
        if durable:
            _fsync_path(tmp)
        if os.path.isdir(tmp) and os.path.isdir(path):
            old = _temporary_sibling(path).replace(".tmp-", ".old-", 1)
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
        if durable:
            _fsync_path(folder)
    except BaseException:
        _remove(tmp)
        raise


def write_bytes(path, data):
    """Writes `data` to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_text(path, text, encoding="utf-8"):
    """Writes `text` to `path` atomically."""
    write_bytes(path, text.encode(encoding))


def write_json(path, obj, indent=2, **kwargs):
    """Writes `obj` as JSON (with a final newline) to `path` atomically."""
    write_text(path, json.dumps(obj, indent=indent, **kwargs) + "\n")


def save_model(model, path, **kwargs):
    """`model.save(path)`, atomically: a failed or interrupted save keeps the old file."""
    if not os.fspath(path).endswith((".keras", ".h5")):
        # Checked here, so the message names the path, not the temporary one.
        raise ValueError(
            "`path` must end in `.keras` (or `.h5`, the legacy format) for "
            f"`model.save`. Received: path={os.fspath(path)!r}"
        )
    with atomic_path(path) as tmp:
        model.save(tmp, **kwargs)
