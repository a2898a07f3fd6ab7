#!/usr/bin/env bash
# Runs every fuzz target, or the TARGETs named, for SECONDS seconds each
# (default 60) and prints one summary line per target. Exits non-zero
# when a target crashed; the input that did it is under
# fuzz/artifacts/TARGET/.
#
#   fuzz/run.sh 10                       # CI: a short pass over each target
#   fuzz/run.sh 300 sqlite_row           # one target for five minutes
#   FUZZ_SANITIZER=none fuzz/run.sh 300  # without AddressSanitizer
#
# cargo-fuzz is installed from crates.io when missing. Its default
# AddressSanitizer build needs nightly-only rustc flags; on the stable
# toolchain RUSTC_BOOTSTRAP=1 unlocks them. The build goes to fuzz/target,
# apart from the workspace's target directory, since every crate is
# compiled again with coverage instrumentation.
set -euo pipefail

seconds=${1:-60}
shift || true
sanitizer=${FUZZ_SANITIZER:-address}
cd "$(dirname "$0")"

if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
# Debug assertions and overflow checks stay on (no -O): an overflow is a
# crash worth finding.
cargo fuzz build --sanitizer "$sanitizer"

targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(cargo fuzz list)
fi

mkdir -p logs
failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    dirs=("corpus/$target")
    # Seeds are read, never written: new inputs go to the first folder.
    [[ -d "seeds/$target" ]] && dirs+=("seeds/$target")

    extra=()
    # The middleware target keeps sessions in a cache across runs, which
    # libFuzzer's per-run leak check takes for a leak and rescans the heap
    # for on every run (30 times slower). The other targets keep it.
    [[ $target == tower_cookie ]] && extra+=(-detect_leaks=0)

    status=0
    cargo fuzz run --sanitizer "$sanitizer" "$target" "${dirs[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "${extra[@]}" >"logs/$target.log" 2>&1 || status=$?

    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$target.log")
    corpus=$(find "corpus/$target" -type f | wc -l)
    if ((status == 0)); then
        echo "fuzz $target: ok, ${runs:-?} runs in ${seconds}s, corpus $corpus"
    else
        echo "fuzz $target: FAILED (exit $status), see fuzz/logs/$target.log"
        grep -E 'panicked|ERROR: |SUMMARY|Test unit written' "logs/$target.log" || true
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "crashed: ${failed[*]}"
    exit 1
fi
