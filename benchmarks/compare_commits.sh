#!/usr/bin/env bash
# Times this checkout's kzoo layers against another commit's, alternating the two
# in fresh processes (so both see the same machine load), on each backend.
#   bash benchmarks/compare_commits.sh <commit> [rounds]
# Writes benchmarks/results/compare_<commit>.txt: lines "<backend> <new|old> <json>".
# A shared machine makes single timings noisy: compare medians over rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
commit=$1
rounds=${2:-2}
old=$(mktemp -d)/kzoo_old
git worktree add -q "$old" "$commit"
trap 'git worktree remove --force "$old"' EXIT
out=benchmarks/results/compare_$commit.txt
: > "$out"
for backend in tensorflow jax torch; do
  for _ in $(seq "$rounds"); do
    for tree in new old; do
      dir=$PWD
      [ "$tree" = old ] && dir=$old
      KERAS_BACKEND=$backend PYTHONPATH=$dir python benchmarks/kzoo_step_times.py 2>/dev/null \
        | sed -n "s/^RESULT/$backend $tree/p" >> "$out"
    done
  done
done
echo "wrote $out"
