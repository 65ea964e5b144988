#!/usr/bin/env bash
# Issue 13's speed point, measured on one machine at one time: the engine bench (128
# moving polar and 128 moving Cartesian point objects → 7.1.4, one second of audio per
# iteration) of this build against the engine as it was before the BS.2127 object
# renderer (commit 0312885, the VBAP panner; its bench gets the Cartesian scene from
# engine_before_bs2127.patch, the same scene as benches/engine.rs). The two bench binaries
# run alternately ROUNDS times (criterion, --warm-up-time 1 --measurement-time 3); the
# script prints each run's criterion median, the median over rounds, and the ratio.
# Run it with nothing else on the machine: the absolute figures drift from day to day
# (the issue's "9.6 ms" was this machine on another day), the ratio is what compares.
#
#   tools/bench/engine_vs_before_bs2127.sh
#
# Environment: ROUNDS (3), DIR (work directory for the old build, default
# /tmp/halo-before-bs2127; its target/ is kept for the next run), KEEP=0 removes it.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
rounds="${ROUNDS:-3}"
dir="${DIR:-/tmp/halo-before-bs2127}"
before=0312885

# The bench binary cargo builds for `--bench engine`, from its "Executable" line.
bench_binary() {
    (cd "$1" && cargo bench --bench engine --no-run 2>&1) |
        sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -n 1 |
        { read -r rel; case "$rel" in /*) echo "$rel" ;; *) echo "$1/$rel" ;; esac; }
}

if [ ! -d "$dir/.git" ] && [ ! -f "$dir/.git" ]; then
    git -C "$here" cat-file -e "$before^{commit}" ||
        { echo "commit $before is not in this clone's history" >&2; exit 1; }
    git -C "$here" worktree add --detach "$dir" "$before" >&2
    git -C "$dir" apply "$here/tools/bench/engine_before_bs2127.patch"
fi
echo "building the engine bench of $before (before the BS.2127 panner) and of this build" >&2
old=$(bench_binary "$dir")
new=$(bench_binary "$here")

# One criterion run of a bench binary: "polar_ms cartesian_ms" (medians).
run() {
    nice -n -5 "$1" --bench --warm-up-time 1 --measurement-time 3 '^engine_moving_(cartesian_)?objects_to_7.1.4/128$' 2>/dev/null |
        awk '/^engine_moving_objects_to_7.1.4\/128/ {g = "p"}
             /^engine_moving_cartesian_objects_to_7.1.4\/128/ {g = "c"}
             /time:/ && g != "" {
                 v = $4; u = $5; if (u == "µs") v /= 1000; if (u == "s") v *= 1000
                 r[g] = v; g = "" }
             END { printf "%.2f %.2f\n", r["p"], r["c"] }'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

old_p=(); old_c=(); new_p=(); new_c=()
for r in $(seq "$rounds"); do
    read -r p c < <(run "$old"); old_p+=("$p"); old_c+=("$c")
    read -r q d < <(run "$new"); new_p+=("$q"); new_c+=("$d")
    printf 'round %s: before %s / %s ms, now %s / %s ms (polar / Cartesian)\n' "$r" "$p" "$c" "$q" "$d"
done
mp=$(printf '%s\n' "${old_p[@]}" | median); mc=$(printf '%s\n' "${old_c[@]}" | median)
np=$(printf '%s\n' "${new_p[@]}" | median); nc=$(printf '%s\n' "${new_c[@]}" | median)
printf 'median of %s rounds, ms per second of audio:\n' "$rounds"
printf '  polar:     before %s, now %s: now/before %.2f\n' "$mp" "$np" "$(echo "$np / $mp" | bc -l)"
printf '  Cartesian: before %s, now %s: now/before %.2f (against before'\''s polar: %.2f)\n' \
    "$mc" "$nc" "$(echo "$nc / $mc" | bc -l)" "$(echo "$nc / $mp" | bc -l)"
echo "issue 13 asks now/before <= 1.20"
if [ "${KEEP:-1}" = "0" ]; then git -C "$here" worktree remove --force "$dir"; fi
