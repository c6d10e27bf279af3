#!/usr/bin/env bash
# Runs every fuzz target for a while (default 30 s each) with libFuzzer's coverage guidance,
# the way `cargo fuzz run` builds them, without needing cargo-fuzz or nightly Rust: the
# sanitizer-coverage passes are stable codegen flags (no address sanitizer, which would need
# nightly; Rust code is memory-safe here, and libFuzzer still catches panics, aborts and
# runaway allocations). A crash leaves its input in fuzz/artifacts/<target>/ and fails the
# script. CI runs it (.ci/run). Usage: fuzz/run-briefly.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
# An explicit --target keeps these flags off build scripts (as cargo-fuzz does).
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --bins --target "$host"
for target in decode_record scenario district anchor; do
    mkdir -p "corpus/$target" "artifacts/$target"
    echo "== fuzz $target (${seconds}s)"
    "./target/$host/release/$target" "corpus/$target" -max_total_time="$seconds" \
        -artifact_prefix="artifacts/$target/" -print_final_stats=1 2>&1 | tail -3
done
