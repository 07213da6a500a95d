#!/bin/bash
# Terminal benchmarks (issue 3 "Speed and memory"): berth against runc and crun, measured in the
# same run, interleaved, medians and ratios printed. Nothing here asserts a time limit.
#
#   bench/tty.sh [-q]        (as root; -q: quick, 32 MiB and 3 repetitions)
#
# Environment (defaults in brackets):
#   BENCH_BYTES [268435456]  bytes the container writes for the throughput figures (256 MiB)
#   BENCH_REPS  [5]          repetitions of every measurement (interleaved across runtimes)
#   ECHO_N      [2000]       round trips per echo measurement
#   BERTH       [the static release build of scripts/release.sh]
#   RUNC        [/usr/sbin/runc]      CRUN [/usr/bin/crun] (empty: leave that runtime out)
#   CRUN_WRAPPER [tests/itest/tools/crun-cgroup-v1.sh]  crun 1.8 refuses this hybrid-cgroup host
#                                                      without it (empty: no wrapper)
#
# Figures (all drivers are `berth-tty-run --selftest …`, see crates/tty/src/bin/berth-tty-run.rs):
#   1. Foreground throughput: `/probe write BENCH_BYTES` (printable 64-byte lines) in a container
#      with a terminal, run in the foreground on a pty the driver owns, which reads it to EIO.
#      MB/s from the first to the last byte. Baseline: the same probe writing straight into a raw
#      pty pair, read by the same driver. Target: berth >= 0.95x the raw pair. Also against a
#      second baseline, the same probe on a pty with the kernel's default output settings
#      (OPOST|ONLCR, "cooked-pair": the line discipline writes each line's \r\n on its own;
#      berth clears ONLCR inside and inserts the \r itself, crun keeps it), and berth once
#      more with the container's terminal writing raw (`stty -opost`, "berth-rawout"), so each
#      ratio compares like with like.
#      The same runs give the relaying process's CPU time and memory (VmHWM as last seen, max
#      VmRSS, sampled every 20 ms): target <= 2 MB.
#   2. Console socket: `create --console-socket`, the driver receives the master (made raw), then
#      times `start` until the master reads EIO. Target: berth at least crun's MB/s.
#   3. Echo round trip: one byte written to the outer pty comes back through `dd bs=1` in the
#      container (`stty raw -echo` inside), ECHO_N times; p50 and p99. Baseline: the same `dd`
#      directly on the driver's pty. Targets: p50 <= raw p50 + 20 us, p99 <= 2x raw p99.
#      Also the relaying process's CPU time per round trip (all its threads' schedstat).
#   Every figure is also taken for `berth-nopoll`: berth with its relay's adaptive polling off
#   (BERTH_POLL_US=0; crates/tty/src/wait.rs), to show what the polling buys and costs
#   (BENCH_NOPOLL=0 leaves it out).
#   4. hyperfine: a whole `run` of a container writing 1 MiB through its terminal (start,
#      relay, teardown), each runtime, with hyperfine's own comparison.
#
# Needs: cargo, busybox-static, jq, hyperfine (apt-get install busybox-static jq hyperfine).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
die() { echo "bench/tty.sh: $*" >&2; exit 2; }

quick=0
[ "${1:-}" = -q ] && quick=1
if [ $quick = 1 ]; then
	bytes=${BENCH_BYTES:-$((32 * 1024 * 1024))}
	reps=${BENCH_REPS:-3}
else
	bytes=${BENCH_BYTES:-$((256 * 1024 * 1024))}
	reps=${BENCH_REPS:-5}
fi
echo_n=${ECHO_N:-2000}

[ "$(id -u)" = 0 ] || die "must run as root (it creates containers)"
for t in cargo jq busybox hyperfine; do
	command -v "$t" >/dev/null || die "$t is missing (apt-get install busybox-static jq hyperfine)"
done

target=${CARGO_TARGET_DIR:-$repo/target}
triple="$(uname -m)-unknown-linux-gnu"
(cd "$repo" && cargo build --quiet --release -p berth-cli -p berth-tty) || die "cargo build failed"
(cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release \
	-p berth-helper --bins --target "$triple" --target-dir "$target/itest-helper") ||
	die "building the static probe failed"
drv=$target/release/berth-tty-run
probe=$target/itest-helper/$triple/release/berth-probe
berth=${BERTH:-$("$repo/scripts/release.sh")/berth}
runc=${RUNC-/usr/sbin/runc}
crun=${CRUN-/usr/bin/crun}
crun_wrapper=${CRUN_WRAPPER-$repo/tests/itest/tools/crun-cgroup-v1.sh}

work=$(mktemp -d /tmp/berth-bench-tty.XXXXXX)
# The runtimes: name -> command prefix (with a private --root).
names=()
declare -A cmd
cleanup() {
	for r in "${names[@]}"; do
		for id in $(ls "$work/root-$r" 2>/dev/null); do
			# shellcheck disable=SC2086 # the prefix is words on purpose
			${cmd[$r]} delete -f "$id" >/dev/null 2>&1 || true
		done
	done
	rm -rf "$work"
}
trap cleanup EXIT
add_runtime() {
	local name=$1
	shift
	names+=("$name")
	mkdir -p "$work/root-$name"
	cmd[$name]="$* --root $work/root-$name"
}
add_runtime berth "$berth"
# The same binary with the relay's adaptive polling off (crates/tty/src/wait.rs), so what that
# polling buys and costs is measured in the same run.
[ "${BENCH_NOPOLL:-1}" = 1 ] && add_runtime berth-nopoll env BERTH_POLL_US=0 "$berth"
[ -n "$runc" ] && [ -x "$runc" ] && add_runtime runc "$runc"
if [ -n "$crun" ] && [ -x "$crun" ]; then
	if [ -n "$crun_wrapper" ]; then add_runtime crun "$crun_wrapper" "$crun"; else add_runtime crun "$crun"; fi
fi

# A busybox bundle with the probe; config.json from `berth spec`, edited per scenario.
bundle=$work/bundle
mkdir -p "$bundle/rootfs"/{bin,proc,sys,dev,tmp,etc}
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for a in sh stty dd cat sleep; do ln -s busybox "$bundle/rootfs/bin/$a"; done
cp "$probe" "$bundle/rootfs/probe"
# ociVersion 1.0.2-dev as runc 1.1.5 writes it: crun 1.8.1 refuses newer versions.
(cd "$bundle" && "$berth" spec)
set_args() { # JSON array of the process's args
	jq --argjson a "$1" '.ociVersion = "1.0.2-dev" | .process.terminal = true | .process.args = $a' "$bundle/config.json" >"$bundle/c.tmp"
	mv "$bundle/c.tmp" "$bundle/config.json"
}

val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "nan"; else printf "%.2f", a / b}'; }
declare -A series
push() { series[$1]+="$2 "; }
med() { tr ' ' '\n' <<<"${series[$1]:-}" | awk 'NF' | median; }

n=0
next_id() { n=$((n + 1)); echo "bench-$$-$n"; }

echo "bench/tty.sh: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $bytes bytes, $reps reps, runtimes: ${names[*]}" >&2

# 1. Foreground throughput (+ CPU and memory of the relaying process).
write_args="[\"/probe\", \"write\", \"$bytes\"]"
rawout_args="[\"sh\", \"-c\", \"stty -opost; exec /probe write $bytes\"]"
for rep in $(seq "$reps"); do
	line=$("$drv" --selftest drain --raw-peer --expect "$bytes" -- "$probe" write "$bytes")
	push raw.mbps "$(val mbps "$line")"
	# The second baseline: a pty pair with the terminal settings a container's terminal has
	# (OPOST|ONLCR: every line's \n becomes its own \r\n write in the line discipline).
	line=$("$drv" --selftest drain -- "$probe" write "$bytes")
	push cooked.mbps "$(val mbps "$line")"
	# berth with the container's terminal writing raw (stty -opost), like the first baseline.
	set_args "$rawout_args"
	line=$("$drv" --selftest drain -- ${cmd[berth]} run --bundle "$bundle" "$(next_id)")
	push rawout.mbps "$(val mbps "$line")"
	set_args "$write_args"
	for r in "${names[@]}"; do
		# shellcheck disable=SC2086 # the prefix is words on purpose
		line=$("$drv" --selftest drain -- ${cmd[$r]} run --bundle "$bundle" "$(next_id)")
		got=$(val bytes "$line")
		# ONLCR on the reader's terminal: one \r per line of 64 bytes.
		[ "$got" = $((bytes + bytes / 64)) ] || echo "warning: $r delivered $got bytes" >&2
		push "$r.mbps" "$(val mbps "$line")"
		push "$r.cpu" "$(val cpu_ms "$line")"
		push "$r.hwm" "$(val hwm_kb "$line")"
		push "$r.rss" "$(val rss_kb "$line")"
	done
	echo "  throughput rep $rep done" >&2
done

# 2. Console socket.
for rep in $(seq "$reps"); do
	for r in "${names[@]}"; do
		# shellcheck disable=SC2086
		line=$("$drv" --selftest console-drain "$bundle" "$(next_id)" --expect "$bytes" -- ${cmd[$r]})
		push "$r.console" "$(val mbps "$line")"
	done
done

# 3. Echo round trip.
echo_sh="stty raw -echo; echo ready; exec dd bs=1 count=$echo_n 2>/dev/null"
set_args "[\"sh\", \"-c\", \"$echo_sh\"]"
for rep in $(seq "$reps"); do
	line=$("$drv" --selftest echo-rtt "$echo_n" -- sh -c "$echo_sh")
	push raw.p50 "$(val p50_us "$line")"
	push raw.p99 "$(val p99_us "$line")"
	for r in "${names[@]}"; do
		# shellcheck disable=SC2086
		line=$("$drv" --selftest echo-rtt "$echo_n" -- ${cmd[$r]} run --bundle "$bundle" "$(next_id)")
		push "$r.p50" "$(val p50_us "$line")"
		push "$r.p99" "$(val p99_us "$line")"
		push "$r.rtcpu" "$(val cpu_us_per_rt "$line")"
	done
done

# Report.
raw_mbps=$(med raw.mbps)
raw_p50=$(med raw.p50)
raw_p99=$(med raw.p99)
printf '\n== 1. foreground throughput, %d MiB of printable lines, median of %d\n' $((bytes / 1048576)) "$reps"
cooked_mbps=$(med cooked.mbps)
printf '%-12s %9s %10s %10s %12s %14s %14s\n' runtime MB/s "x raw" "x cooked" "relay CPU ms" "VmHWM kB" "max VmRSS kB"
printf '%-12s %9s %10s %10s\n' raw-pair "$raw_mbps" 1.00 "$(ratio "$raw_mbps" "$cooked_mbps")"
printf '%-12s %9s %10s %10s\n' cooked-pair "$cooked_mbps" "$(ratio "$cooked_mbps" "$raw_mbps")" 1.00
for r in "${names[@]}"; do
	printf '%-12s %9s %10s %10s %12s %14s %14s\n' "$r" "$(med "$r.mbps")" "$(ratio "$(med "$r.mbps")" "$raw_mbps")" \
		"$(ratio "$(med "$r.mbps")" "$cooked_mbps")" "$(med "$r.cpu")" "$(med "$r.hwm")" "$(med "$r.rss")"
done
printf '%-12s %9s %10s %10s   (berth, the container'"'"'s terminal writing raw: stty -opost)\n' berth-rawout \
	"$(med rawout.mbps)" "$(ratio "$(med rawout.mbps)" "$raw_mbps")" "$(ratio "$(med rawout.mbps)" "$cooked_mbps")"
echo "raw-pair: the probe on a pty made raw; cooked-pair: on a pty with the kernel's default output settings (OPOST|ONLCR)"
echo "targets: berth >= 0.95x raw; berth relay memory <= 2048 kB"

printf '\n== 2. console socket, start -> receiver drained %d MiB, median of %d\n' $((bytes / 1048576)) "$reps"
crun_console=0
[ -n "${cmd[crun]:-}" ] && crun_console=$(med crun.console)
printf '%-12s %9s %10s\n' runtime MB/s "x crun"
for r in "${names[@]}"; do
	printf '%-12s %9s %10s\n' "$r" "$(med "$r.console")" "$(ratio "$(med "$r.console")" "$crun_console")"
done
echo "target: berth >= 1.00x crun"

printf '\n== 3. echo round trip, 1 byte through dd bs=1, %d times, median of %d runs\n' "$echo_n" "$reps"
printf '%-12s %9s %9s %12s %10s %16s\n' runtime "p50 us" "p99 us" "p50 - raw" "p99 x raw" "relay CPU us/rt"
printf '%-12s %9s %9s\n' raw-pair "$raw_p50" "$raw_p99"
for r in "${names[@]}"; do
	p50=$(med "$r.p50") p99=$(med "$r.p99")
	printf '%-12s %9s %9s %12s %10s %16s\n' "$r" "$p50" "$p99" \
		"$(awk -v a="$p50" -v b="$raw_p50" 'BEGIN {printf "%+.1f", a - b}')" "$(ratio "$p99" "$raw_p99")" \
		"$(med "$r.rtcpu")"
done
echo "targets: berth p50 <= raw + 20 us; berth p99 <= 2x raw"

# 4. hyperfine: whole foreground runs writing 1 MiB.
printf '\n== 4. hyperfine: run of a container writing 1 MiB through its terminal (start to exit)\n'
set_args '["/probe", "write", "1048576"]'
hf=()
for r in "${names[@]}"; do
	hf+=(-n "$r" "$drv --selftest drain -- ${cmd[$r]} run --bundle $bundle hf-$$-$r")
done
hyperfine -N --warmup 2 --runs $((reps * 4)) --style basic "${hf[@]}" 2>&1 | grep -v '^\s*$'
