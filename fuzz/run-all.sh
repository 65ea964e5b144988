#!/bin/sh
# Runs every cargo-fuzz target of halo for SECONDS seconds each (default 20), as CI does:
#   fuzz/run-all.sh 20
# cargo-fuzz needs a nightly toolchain and `cargo install cargo-fuzz`; without them the
# script says so and exits 0 (skipped, not failed). A crash fails the script (exit 1)
# and leaves its input in fuzz/artifacts/TARGET/.
set -eu
secs="${1:-20}"
cd "$(dirname "$0")"
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz/run-all.sh: skipped: cargo-fuzz needs a nightly toolchain (rustup toolchain install nightly)"
    exit 0
fi
if ! cargo +nightly fuzz --help >/dev/null 2>&1; then
    echo "fuzz/run-all.sh: skipped: cargo-fuzz is not installed (cargo install cargo-fuzz)"
    exit 0
fi
# The SOFA target starts from the embedded HRTF set (not committed twice).
mkdir -p corpus/sofa_load
[ -f corpus/sofa_load/kemar.sofa ] || cp ../hrtf/MIT_KEMAR_normal_pinna.sofa corpus/sofa_load/kemar.sofa
status=0
for target in $(cargo +nightly fuzz list); do
    echo "fuzz/run-all.sh: $target for $secs s"
    mkdir -p "/tmp/halo-fuzz-corpus/$target"
    if ! cargo +nightly fuzz run "$target" "/tmp/halo-fuzz-corpus/$target" "corpus/$target" -- -max_total_time="$secs" -rss_limit_mb=4096 \
        -timeout=30 2>"/tmp/halo-fuzz-$target.log"; then
        echo "fuzz/run-all.sh: $target FAILED (log: /tmp/halo-fuzz-$target.log)"
        tail -n 30 "/tmp/halo-fuzz-$target.log"
        status=1
    else
        grep -E "^Done|#[0-9]+.*DONE" "/tmp/halo-fuzz-$target.log" | tail -n 1 || true
    fi
done
exit "$status"
