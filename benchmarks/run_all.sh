#!/usr/bin/env bash
# Runs benchmarks/rnn_speed.py once per Keras backend, one after the other (never
# in parallel: the timings need an otherwise idle machine), and keeps each
# backend's table in benchmarks/results/<backend>.txt.
#   bash benchmarks/run_all.sh            # full run
#   bash benchmarks/run_all.sh --quick    # smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results
mkdir -p "$out"
for backend in tensorflow jax torch; do
  echo "== $backend"
  KERAS_BACKEND=$backend python benchmarks/rnn_speed.py "$@" | tee "$out/$backend.txt"
done
# The sampled softmax's training speed against the exact one (issue 19).
for backend in tensorflow jax torch; do
  echo "== softmax $backend"
  KERAS_BACKEND=$backend python benchmarks/softmax_speed.py "$@" | tee "$out/softmax_$backend.txt"
done
