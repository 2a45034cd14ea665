"""Every ```python block of README.md, README_IMDB.md and docs/*.md runs.

What counts as a block: a fence whose info string is `python` (or `py`). Shell
(```bash, ```console), plain (```) and doctest (```pycon) fences are not run;
a ```python block may not hold `>>>` prompts (write those as ```pycon).

How the documents run: one after another in one subprocess (one import of
TensorFlow/JAX/PyTorch instead of one per document), on the backend of the
pytest process (`KERAS_BACKEND`), with Keras imported before the first block
so that a block's `os.environ["KERAS_BACKEND"] = ...` line does not switch
backends (`os.environ` and a `keras.distribution` a block set are reset
after each block). Each block runs in a
fresh `__main__` namespace (so every block must be complete: a user pastes
one block, not the page), in document order, in a temporary working
directory that holds links to the shipped `saved_models/*` files; `KERAS_HOME`
is a temporary folder and `KZOO_DATA_DIR` is the shared data folder, so a
block reads the shipped models and offline data and writes nothing into the
repository (checked: the shipped files' sizes and modification times).

A block that cannot run in CI (a GPU, the network) is excluded by an HTML
comment on the line before its fence, `<!-- docs-test: skip (reason) -->`,
and a block that needs what a backend lacks by
`<!-- docs-test: skip-on torch (reason) -->` (backends separated by commas);
the test prints how many blocks ran and were skipped per document.

CI runs the documents once: the test is marked `large`, so it runs in the
"cross-backend and large" pass of `tests/run_all.sh`, on TensorFlow (where
`kzoo.export` runs in-process). Every block also passes on JAX and PyTorch:

    KERAS_BACKEND=jax python -m pytest -m large tests/test_docs.py
"""

import glob
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback

import keras  # first: the subprocess's blocks run on this backend
import pytest

BACKEND = keras.backend.backend()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENTS = sorted(
    os.path.relpath(path, ROOT)
    for path in [
        os.path.join(ROOT, "README.md"),
        os.path.join(ROOT, "README_IMDB.md"),
        *glob.glob(os.path.join(ROOT, "docs", "*.md")),
    ]
)
PYTHON_INFO = ("python", "py")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
SKIP = re.compile(r"^\s*<!--\s*docs-test:\s*skip(-on\s+[\w\s,]+?)?\s*(\(.*\))?\s*-->\s*$")
BACKENDS = ("tensorflow", "jax", "torch")
TIMEOUT_S = 900  # all documents, one process
BEGIN = "docs-test: === "


def extract_blocks(path):
    """Returns the Python blocks of a Markdown file.

    Returns:
        A list of dicts: `line` (1-based line of the opening fence), `source`
        (the block's code, dedented to its fence), `skip` (the reason of a
        `docs-test: skip` marker on the line before the fence, or None) and
        `skip_on` (the backends it names, all of them for a plain `skip`).

    Raises:
        ValueError: an unclosed fence, a skip marker without a reason or not
            followed by a ```python fence, or `>>>` prompts in a python block.
    """
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    blocks = []
    pending_skip = None  # (line number, reason, backends) of a marker awaiting its fence
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = SKIP.match(line) if "docs-test" in line else None
        if "docs-test" in line and not (marker and (marker.group(2) or "()")[1:-1].strip()):
            raise ValueError(
                f"{path}:{i + 1}: a docs-test marker is `<!-- docs-test: skip (reason) -->` "
                "or `<!-- docs-test: skip-on torch, jax (reason) -->`, with a reason in "
                f"parentheses. Received {line.strip()!r}."
            )
        if marker:
            backends = BACKENDS
            if marker.group(1):
                backends = tuple(b.strip() for b in marker.group(1)[3:].split(","))
                unknown = [b for b in backends if b not in BACKENDS]
                if unknown:
                    raise ValueError(
                        f"{path}:{i + 1}: unknown backend(s) {unknown} in a docs-test "
                        f"skip-on marker; expected some of {list(BACKENDS)}."
                    )
            pending_skip = (i + 1, marker.group(2)[1:-1].strip(), backends)
            i += 1
            continue
        fence = FENCE.match(line)
        if not fence:
            if pending_skip and line.strip():
                raise ValueError(
                    f"{path}:{pending_skip[0]}: a docs-test skip marker must be the line "
                    "right before a ```python fence."
                )
            i += 1
            continue
        indent, ticks, info = fence.groups()
        start = i
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(ticks):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"{path}:{start + 1}: the {ticks}{info} fence is never closed.")
        i += 1  # the closing fence
        if info.lower() not in PYTHON_INFO:
            if pending_skip:
                raise ValueError(
                    f"{path}:{pending_skip[0]}: a docs-test skip marker stands before a "
                    f"```{info} fence; only ```python blocks run."
                )
            continue
        source = "\n".join(body) + "\n"
        if re.search(r"^\s*>>>", source, re.MULTILINE):
            raise ValueError(
                f"{path}:{start + 1}: a ```python block holds `>>>` prompts; write doctest "
                "sessions as ```pycon (not run) or drop the prompts."
            )
        blocks.append(
            {
                "line": start + 1,
                "source": source,
                "skip": pending_skip[1] if pending_skip else None,
                "skip_on": pending_skip[2] if pending_skip else (),
            }
        )
        pending_skip = None
    if pending_skip:
        raise ValueError(f"{path}:{pending_skip[0]}: a docs-test skip marker ends the file.")
    return blocks


@pytest.mark.parametrize("document", DOCUMENTS)
def test_blocks_parse_and_compile(document):
    """Cheap check on every backend: blocks are found and are valid Python."""
    blocks = extract_blocks(os.path.join(ROOT, document))
    for block in blocks:
        compile(block["source"], f"{document}:{block['line']}", "exec")


def test_extract_blocks_rules(tmp_path):
    path = tmp_path / "doc.md"
    path.write_text(
        "text\n\n```bash\necho hi\n```\n\n```python\nx = 1\n```\n\n"
        "<!-- docs-test: skip (needs a GPU) -->\n```python\ny = 2\n```\n"
        "  ```python\n  z = 3\n  ```\n```pycon\n>>> 1\n```\n"
        "<!-- docs-test: skip-on torch, jax (no X there) -->\n```py\nw = 4\n```\n",
        encoding="utf-8",
    )
    blocks = extract_blocks(str(path))
    assert [(b["line"], b["source"], b["skip"], b["skip_on"]) for b in blocks] == [
        (7, "x = 1\n", None, ()),
        (12, "y = 2\n", "needs a GPU", ("tensorflow", "jax", "torch")),
        (15, "z = 3\n", None, ()),
        (22, "w = 4\n", "no X there", ("torch", "jax")),
    ]
    for bad, message in [
        ("<!-- docs-test: skip -->\n```python\nx\n```\n", "with a reason"),
        ("<!-- docs-test: skip () -->\n```python\nx\n```\n", "with a reason"),
        ("<!-- docs-test: skipped (x) -->\n```python\nx\n```\n", "with a reason"),
        ("<!-- docs-test: skip-on mxnet (x) -->\n```python\nx\n```\n", "['mxnet']"),
        ("<!-- docs-test: skip (why) -->\n\ntext\n```python\nx\n```\n", "right before"),
        ("<!-- docs-test: skip (why) -->\n```bash\nx\n```\n", "only ```python"),
        ("```python\n>>> x = 1\n```\n", "`>>>` prompts"),
        ("```python\nx = 1\n", "never closed"),
    ]:
        path.write_text(bad, encoding="utf-8")
        with pytest.raises(ValueError, match=re.escape(message)):
            extract_blocks(str(path))


def test_runner_reports_failures_and_isolates_blocks(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KZOO_DOCS_PROBE", "before")
    path = tmp_path / "doc.md"
    path.write_text(
        "```python\nimport os\nos.environ['KZOO_DOCS_PROBE'] = 'changed'\nx = 1\n```\n"
        "```python\nprint('x' in globals(), os.environ.get('KZOO_DOCS_PROBE'))\n```\n"
        "```python\nimport os\nprint(os.environ['KZOO_DOCS_PROBE'])\n```\n"
        f"<!-- docs-test: skip-on {BACKEND} (probe) -->\n```python\nraise SystemExit(3)\n```\n"
        "```python\nraise ValueError('boom')\n```\n",
        encoding="utf-8",
    )
    assert _run_document(str(path)) == 2
    out = capsys.readouterr().out
    assert os.environ["KZOO_DOCS_PROBE"] == "before"
    name = os.path.relpath(str(path), ROOT)
    assert f"docs-test: {name}:1 ok" in out
    assert f"docs-test: {name}:6 FAILED on {BACKEND}" in out  # `os` and `x` are not carried over
    assert "NameError: name 'os' is not defined" in out
    assert "before\n" in out  # the first block's os.environ change was undone
    assert f"docs-test: {name}:14 skipped on {BACKEND} (probe)" in out
    assert "ValueError: boom" in out
    assert f"docs-test: {name}: 4 run, 1 skipped, 2 failed" in out


def _data_dir():
    path = os.environ.get("KZOO_DATA_DIR") or os.environ.get(
        "KZOO_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data")
    )
    return os.path.abspath(path) if os.path.isdir(path) else None


def _shipped_files():
    """`{path: (size, mtime_ns)}` of the shipped models, to detect writes."""
    files = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "saved_models", "*"))):
        stat = os.stat(path)
        files[path] = (stat.st_size, stat.st_mtime_ns)
    return files


@pytest.fixture(scope="module")
def docs_run():
    """Runs every document in one subprocess; returns `{document: its output}`."""
    data_dir = _data_dir()
    if data_dir is None:
        pytest.skip("the shared data folder is missing (set KZOO_DATA_DIR)")
    before = _shipped_files()
    with tempfile.TemporaryDirectory(prefix="kzoo_docs_") as work:
        os.mkdir(os.path.join(work, "saved_models"))
        for path in before:
            os.symlink(path, os.path.join(work, "saved_models", os.path.basename(path)))
        env = dict(os.environ)
        env.update(
            KERAS_BACKEND=BACKEND,
            KZOO_DATA_DIR=data_dir,
            KERAS_HOME=os.path.join(work, ".keras"),
            MPLBACKEND="Agg",
            TF_CPP_MIN_LOG_LEVEL="2",
            PYTHONPATH=os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")])),
        )
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), *DOCUMENTS],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=TIMEOUT_S,
        )
    changed = [path for path, stat in _shipped_files().items() if before.get(path) != stat]
    outputs = {}
    for part in proc.stdout.split(BEGIN)[1:]:
        document, _, output = part.partition("\n")
        outputs[document] = output
    return {
        "outputs": outputs,
        "returncode": proc.returncode,
        "changed": changed,
        "tail": proc.stdout[-3000:],
    }


@pytest.mark.large
@pytest.mark.parametrize("document", DOCUMENTS)
def test_document_blocks_run(document, docs_run):
    blocks = extract_blocks(os.path.join(ROOT, document))
    output = docs_run["outputs"].get(document)
    assert output is not None, f"{document} did not run:\n{docs_run['tail']}"
    print("\n".join(line for line in output.splitlines() if line.startswith("docs-test:")))
    ran = sum(1 for b in blocks if BACKEND not in b["skip_on"])
    expected = f"docs-test: {document}: {ran} run, {len(blocks) - ran} skipped, 0 failed"
    # The output has each failing block's traceback, between the log lines of Keras.
    assert expected in output, f"{document} on {BACKEND}:\n{output[-8000:]}"
    assert not docs_run["changed"], f"the documents wrote into saved_models/: {docs_run['changed']}"


def _run_document(path):
    """Runs the blocks of one document; returns the number of blocks that failed."""
    backend = BACKEND
    name = os.path.relpath(path, ROOT)
    print(f"{BEGIN}{name}", flush=True)
    blocks = extract_blocks(path)
    failed = 0
    for block in blocks:
        where = f"{name}:{block['line']}"
        if backend in block["skip_on"]:
            print(f"docs-test: {where} skipped on {backend} ({block['skip']})", flush=True)
            continue
        start = time.perf_counter()
        environ = dict(os.environ)
        try:
            code = compile(block["source"], where, "exec")
            exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
        except BaseException:  # SystemExit included: a block must not exit
            failed += 1
            print(f"docs-test: {where} FAILED on {backend}", flush=True)
            traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
            continue
        finally:
            # What one block sets globally does not reach the next one.
            os.environ.clear()
            os.environ.update(environ)
            if backend != "torch" and keras.distribution.distribution() is not None:
                keras.distribution.set_distribution(None)
        print(f"docs-test: {where} ok ({time.perf_counter() - start:.1f} s)", flush=True)
    ran = sum(1 for b in blocks if backend not in b["skip_on"])
    print(f"docs-test: {name}: {ran} run, {len(blocks) - ran} skipped, {failed} failed")
    return failed


def _main(documents):
    backend = os.environ["KERAS_BACKEND"]
    if keras.backend.backend() != backend:
        print(f"Keras runs {keras.backend.backend()!r}, not KERAS_BACKEND={backend!r}.")
        return 1
    failed = sum(_run_document(os.path.join(ROOT, document)) for document in documents)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
