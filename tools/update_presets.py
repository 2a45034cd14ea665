"""Refreshes the sha256 of the preset registry after a shipped model is re-saved.

Hashes every preset file in `saved_models/` and rewrites the `sha256="..."`
line of each entry of `kzoo/models/presets.py` whose file changed (one atomic
write: the registry is either fully old or fully new). Nothing else in the
registry changes: update a preset's metrics by hand, from its model card.

    python tools/update_presets.py            # rewrite changed hashes
    python tools/update_presets.py --check    # exit 1 if any hash is stale

Exit codes: 0 up to date (or updated), 1 stale hashes with `--check`, 2 a
preset file or registry entry is missing.
"""

import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from kzoo.models.presets import file_sha256  # noqa: E402
from kzoo.utils.atomic_write import write_text  # noqa: E402

REGISTRY = os.path.join(ROOT, "kzoo", "models", "presets.py")
SAVED_MODELS = os.path.join(ROOT, "saved_models")
# One registry entry's file and hash lines, as written in presets.py.
ENTRY = re.compile(r'(file="(?P<file>[^"]+)",\s*\n\s*sha256=")(?P<sha>[0-9a-f]{64})(")')


def refreshed(source, folder):
    """`(new source, [(file, old, new), ...])` with the hashes of the files in `folder`."""
    changes = []

    def replace(match):
        path = os.path.join(folder, match["file"])
        if not os.path.isfile(path):
            raise FileNotFoundError(f"The preset file {path!r} does not exist.")
        new = file_sha256(path)
        if new != match["sha"]:
            changes.append((match["file"], match["sha"], new))
        return f"{match[1]}{new}{match[4]}"

    result, count = ENTRY.subn(replace, source)
    if count == 0:
        raise ValueError(f"No `file=... sha256=...` entries found in {REGISTRY!r}.")
    return result, changes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale hashes")
    parser.add_argument("--registry", default=REGISTRY)
    parser.add_argument("--saved-models", default=SAVED_MODELS)
    args = parser.parse_args(argv)
    with open(args.registry, encoding="utf-8") as f:
        source = f.read()
    try:
        updated, changes = refreshed(source, args.saved_models)
    except (FileNotFoundError, ValueError) as error:
        print(f"update_presets: error: {error}", file=sys.stderr)
        return 2
    for name, old, new in changes:
        print(f"{name}: {old[:12]}... -> {new[:12]}...")
    if not changes:
        print("All preset hashes are up to date.")
        return 0
    if args.check:
        print(f"{len(changes)} stale hash(es); run `python tools/update_presets.py`.")
        return 1
    write_text(args.registry, updated)
    print(f"Updated {len(changes)} hash(es) in {args.registry}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
