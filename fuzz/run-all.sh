#!/bin/sh
# Runs every cargo-fuzz target of halo for SECONDS seconds each (default 20), as CI does:
#   fuzz/run-all.sh 20          every target
#   fuzz/run-all.sh 600 wav_read  one target, ten minutes
# cargo-fuzz needs `cargo install cargo-fuzz` and nightly compiler flags (-Zsanitizer): the
# script uses the one stable toolchain (all CI has) with RUSTC_BOOTSTRAP=1, which admits
# them. Without cargo-fuzz the script says so and exits 0 (skipped, not failed). A crash fails the script (exit 1) and leaves its input in
# fuzz/artifacts/TARGET/. Each run's last libFuzzer line (runs, coverage) is printed.
set -eu
secs="${1:-20}"
only="${2:-}"
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --help >/dev/null 2>&1; then
    echo "fuzz/run-all.sh: skipped: cargo-fuzz is not installed (cargo install cargo-fuzz)"
    exit 0
fi
# The SOFA target starts from the embedded HRTF set (not committed twice).
mkdir -p corpus/sofa_load corpus/dbmd_parse
[ -f corpus/sofa_load/kemar.sofa ] || cp ../hrtf/MIT_KEMAR_normal_pinna.sofa corpus/sofa_load/kemar.sofa
cargo fuzz build -O
status=0
for target in $(cargo fuzz list); do
    if [ -n "$only" ] && [ "$target" != "$only" ]; then
        continue
    fi
    echo "fuzz/run-all.sh: $target for $secs s"
    mkdir -p "/tmp/halo-fuzz-corpus/$target"
    if ! cargo fuzz run -O "$target" "/tmp/halo-fuzz-corpus/$target" "corpus/$target" -- \
        -max_total_time="$secs" -rss_limit_mb=4096 -timeout=30 -print_final_stats=1 \
        2>"/tmp/halo-fuzz-$target.log"; then
        echo "fuzz/run-all.sh: $target FAILED (log: /tmp/halo-fuzz-$target.log)"
        tail -n 30 "/tmp/halo-fuzz-$target.log"
        status=1
    else
        grep -E "^Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb" \
            "/tmp/halo-fuzz-$target.log" | tr '\n' ' ' || true
        echo
    fi
done
exit "$status"
