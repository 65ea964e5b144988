#!/usr/bin/env bash
# The ADM speed check of the README's Speed table: a 128-object, 20 s master with 0.1 s
# block formats (tools/bench/make_adm_master.py), rendered to 7.1.4 by `halo render` on one
# thread and by EAR 2.1.0's `ear-render -s 4+7+0` (installed by
# ../shared/tools/reference-setup.sh); prints both wall-clock times (whole process, median
# of RUNS for halo; EAR once unless EAR_RUNS is set) and the ratio.
#
#   tools/bench/adm_vs_ear.sh [HALO_BINARY]     (default: target/release/halo, built first)
#
# Environment: DIR (work directory, default /tmp/halo-adm-vs-ear), OBJECTS (128),
# SECONDS_LONG (20), RUNS (5), EAR_RUNS (1; 0: halo only), VENV (/root/.cache/halo-ref-venv).
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${VENV:-/root/.cache/halo-ref-venv}"
dir="${DIR:-/tmp/halo-adm-vs-ear}"
objects="${OBJECTS:-128}"
seconds="${SECONDS_LONG:-20}"
runs="${RUNS:-5}"
ear_runs="${EAR_RUNS:-1}"
halo="${1:-}"
if [ -z "$halo" ]; then
    (cd "$here" && cargo build --release --bin halo >&2)
    halo="$here/target/release/halo"
fi
[ -x "$venv/bin/ear-render" ] || { echo "no EAR at $venv (run ../shared/tools/reference-setup.sh)" >&2; exit 1; }
mkdir -p "$dir"
master="$dir/master-${objects}x${seconds}s.wav"
if [ ! -f "$master" ]; then
    "$venv/bin/python" "$here/tools/bench/make_adm_master.py" "$master" \
        --objects "$objects" --seconds "$seconds" --block-ms 100 >&2
fi

# Wall-clock seconds of a command (whole process), its output discarded.
wall() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# Warm the page cache once, then time.
cat "$master" >/dev/null
halo_times=()
for _ in $(seq "$runs"); do
    halo_times+=("$(wall "$halo" render "$master" --layout 7.1.4 --threads 1 --out "$dir/halo-out")")
done
halo_s=$(printf '%s\n' "${halo_times[@]}" | median)
printf 'halo render (7.1.4, 1 thread): %s s (median of %s: %s)\n' \
    "$(printf '%.3f' "$halo_s")" "$runs" "${halo_times[*]}"
[ "$ear_runs" -gt 0 ] || exit 0
ear_times=()
for _ in $(seq "$ear_runs"); do
    ear_times+=("$(wall "$venv/bin/ear-render" -s 4+7+0 "$master" "$dir/ear-7.1.4.wav")")
done
ear_s=$(printf '%s\n' "${ear_times[@]}" | median)
printf 'EAR ear-render -s 4+7+0:       %s s (median of %s)\n' "$(printf '%.2f' "$ear_s")" "$ear_runs"
printf 'ratio: halo is %.1fx faster than EAR\n' "$(echo "$ear_s / $halo_s" | bc -l)"
