#!/usr/bin/env bash
# Instructions per second of audio of the whole-render bench scene (examples/whole_render.rs:
# 128 moving objects → 7.1.4 + binaural + stereo, chains, meters), counted by callgrind,
# which gives the same count on a loaded machine as on a quiet one. Runs 1 and 3 seconds of
# audio and prints the difference per second: set-up (loading the HRTF set, building the
# engine) cancels out. With two threads, per thread.
#
#   tools/bench/whole_render_instructions.sh            # one thread and two threads
#
# Needs valgrind (apt-get install -y valgrind). About 4 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install -y valgrind)" >&2; exit 2; }
cargo build --release --quiet --example whole_render
bin=target/release/examples/whole_render
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for threads in 1 2; do
  for s in 1 3; do
    valgrind --tool=callgrind --separate-threads=yes \
      --callgrind-out-file="$out/t$threads-s$s" "$bin" "$threads" "$s" \
      >"$out/t$threads-s$s.log" 2>&1 &
  done
  wait
  # One file per thread (`-01` is the main thread); `summary:` holds its instructions.
  for f in "$out/t$threads-s3"-*; do
    part=${f##*-}
    a=$(grep -m1 '^summary:' "$out/t$threads-s1-$part" | awk '{print $2}')
    b=$(grep -m1 '^summary:' "$f" | awk '{print $2}')
    echo "threads $threads, thread $part: $(( (b - a) / 2 / 1000000 )) M instructions per second of audio"
  done
  grep -h 'output hash' "$out/t$threads-s3.log" || true
done
