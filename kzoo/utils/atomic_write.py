"""Atomic writes: a file (or folder) appears whole at its path, or not at all.

Every file kzoo writes goes through here. The data is written to a temporary
name in the target's own folder (so the final rename never crosses a file
system), flushed to disk, then renamed over the target with `os.replace`. An
exception, Ctrl-C or SIGKILL before the rename leaves the previous file at the
target untouched; a temporary file left by a SIGKILL is named
`.<name>.tmp-<pid>-<random><suffix>` and never mistaken for the target.
"""

import contextlib
import json
import os
import secrets
import shutil


def _temporary_sibling(path):
    folder, name = os.path.split(os.path.abspath(path))
    stem, suffix = os.path.splitext(name)
    # The suffix is kept: `model.save` insists on `.keras`, h5py on nothing.
    return os.path.join(folder, f".{stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{suffix}")


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
    """
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    probe_root = folder
    while not os.path.exists(probe_root):
        parent = os.path.dirname(probe_root)
        if parent == probe_root:
            break
        probe_root = parent
    if not os.path.isdir(probe_root):
        raise NotADirectoryError(f"Cannot write {path!r}: {probe_root!r} is not a folder.")
    if not os.access(probe_root, os.W_OK | os.X_OK):
        raise PermissionError(f"Cannot write {path!r}: the folder {probe_root!r} is not writable.")


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path to write; on success it replaces `path` at once.

    Works for a single file and for a folder (e.g. a SavedModel): whatever the
    body creates at the yielded path becomes `path`. If the body raises, the
    temporary output is removed and `path` keeps its previous content.

    Replacing an existing folder takes two renames (old out of the way, new
    in); a crash between them leaves the old folder at `<path>.old-<pid>-...`
    rather than losing it.

    Example:

    >>> with atomic_path("saved_models/model.keras") as tmp:
    ...     model.save(tmp)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        yield tmp
        if not os.path.exists(tmp):
            raise FileNotFoundError(f"Nothing was written to the temporary path for {path!r}.")
        _fsync_path(tmp)
        if os.path.isdir(tmp) and os.path.isdir(path):
            old = _temporary_sibling(path).replace(".tmp-", ".old-", 1)
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
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
    with atomic_path(path) as tmp:
        model.save(tmp, **kwargs)
