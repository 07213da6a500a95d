#!/bin/sh
# The console monitor's speed and memory against baselines measured in the same run:
# echo round trip (raw pty pair vs monitor + berth attach), throughput to 1 and 10 clients
# (vs a raw pty pair), and private dirty memory per container with 100 containers attached
# (vs conmon 2.1.6 holding runc containers). Prints figures and ratios; asserts nothing.
#
# Needs root, busybox-static (/bin/busybox), runc and conmon. Extra arguments go to the bench
# (later --berth/--monitor override the static release build it uses by default):
#   --rounds N (2000)  --bytes N (268435456)  --reps N (3)  --containers N (100)
#   --conmons N (5)    --only echo|throughput|memory
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p berth-monitor --example monitor_bench
# berth and berth-monitor as shipped: the static release build (scripts/release.sh).
release=$(scripts/release.sh)
sync
exec "$CARGO_TARGET_DIR/release/examples/monitor_bench" \
	--berth "$release/berth" --monitor "$release/berth-monitor" "$@"
