#!/usr/bin/env bash
# Runs the test suite once per Keras backend, then the cross-backend test.
# Usage: bash tests/run_all.sh [extra pytest args, e.g. -m "not large"]
set -uo pipefail
cd "$(dirname "$0")/.."

# Tests compile thousands of tiny XLA programs (JAX, and TensorFlow's jit) and
# run each a few times: LLVM's optimisation passes cost more than they save, so
# they are skipped (measured on tests/generation + tests/models/test_seq2seq.py
# on JAX: 279 s -> 211 s). The programs compute the same operations.
export XLA_FLAGS="${XLA_FLAGS:---xla_backend_optimization_level=0}"

status=0
passed=0
failed=0
run() {
    local label=$1
    shift
    echo "=== $label: $*"
    local log
    log=$(mktemp)
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    # pytest exit 5 means no test ran: that is a failure here, not a pass.
    if [ "$rc" -ne 0 ]; then
        echo "=== $label: pytest exited with $rc"
        status=1
    fi
    local line
    line=$(grep -E '^=+ .*(passed|failed|error).* in [0-9.]+s' "$log" | tail -n 1)
    passed=$((passed + $(echo "$line" | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^passed/) n += $(i - 1)} END {print n + 0}')))
    failed=$((failed + $(echo "$line" | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^(failed|error)/) n += $(i - 1)} END {print n + 0}')))
    rm -f "$log"
}

# Tests marked `large` (the full IMDB archive, torch.compile) run once, on
# TensorFlow, next to the cross-backend test that starts every backend itself.
for backend in tensorflow jax torch; do
    run "$backend" env KERAS_BACKEND="$backend" python -m pytest -m "not cross_backend and not large" "$@"
done
run "cross-backend and large" env KERAS_BACKEND=tensorflow python -m pytest -m "cross_backend or large" "$@"

echo "all backends: $passed passed, $failed failed"
exit $status
