#!/usr/bin/env bash
# Lifecycle benchmark: `run` of /bin/true in a small busybox bundle, for berth, runc and crun,
# timed by hyperfine in ONE run so the figures are comparable. Prints medians and the ratios
# berth/runc and berth/crun.
#
#   bench/run-true.sh [RUNS]          (default 200 runs each, in BENCH_ROUNDS=12 rounds)
#   BERTH=/path/to/berth bench/run-true.sh   (default: the static release build, scripts/release.sh)
#
# crun 1.8 refuses hybrid cgroup hosts (this machine: cgroup v1 controllers + cgroup2 at
# /sys/fs/cgroup/unified), so the whole measurement runs inside
# tests/itest/tools/crun-cgroup-v1.sh: a private mount namespace whose /sys/fs/cgroup shows the
# host's v1 hierarchies only. All three runtimes see the same view; the host is not changed.
# The bundle is the one `berth spec` writes (runc's default: its namespaces, mounts, masked paths
# and device cgroup rules), with args ["/bin/true"] and terminal off.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-200}
if [ -z "${BERTH:-}" ]; then
	BERTH=$("$here/scripts/release.sh")/berth
	export BERTH
fi
berth=$BERTH
runc=${RUNC:-$(command -v runc)}
crun=${CRUN:-$(command -v crun)}
for b in "$berth" "$runc" "$crun" "$(command -v hyperfine)" /bin/busybox; do
	[ -x "$b" ] || { echo "bench: missing $b (run scripts/setup.sh)" >&2; exit 1; }
done
if [ "${1:-}" != __inner ]; then
	exec "$here/tests/itest/tools/crun-cgroup-v1.sh" "$0" __inner "$runs"
fi
runs=$2
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
trap 'umount "$work/ro" 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/proc" "$work/bundle/rootfs/dev" "$work/bundle/rootfs/sys"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
ln -s busybox "$work/bundle/rootfs/bin/true"
ln -s busybox "$work/bundle/rootfs/bin/sh"
(cd "$work/bundle" && "$berth" spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["ociVersion"] = "1.0.2"  # crun 1.8 refuses spec versions above 1.1
json.dump(c, open(p, "w"), indent=1)
PY
b=$work/bundle
# berth as installed on a read-only file system (an immutable /usr, a read-only image): its
# binary cannot be overwritten, so berth skips the sealed re-exec (crates/core/src/exeseal.rs).
# Shown beside the main figure for what the CVE-2019-5736 protection costs; the ratios are the
# default install's. This mount lives in the bench's private mount namespace only.
mkdir "$work/ro"
mount --bind "$(dirname "$berth")" "$work/ro"
mount -o remount,bind,ro "$work/ro"
berth_ro=$work/ro/$(basename "$berth")
# The machine drifts over a run (other load, page cache, RCU timing, the host), and hyperfine
# times one command's runs in a block: so the runs are split into rounds, each timing all of
# them, and the medians are over every round's times. Twelve rounds of 20 (not three of 67,
# as before 2026-12-07): on this VM the ratio to crun moved between 0.73 and 0.88 from one
# three-round run to the next, the blocks being minutes apart; finer interleaving narrows that.
rounds=${BENCH_ROUNDS:-12}
per=$(( (runs + rounds - 1) / rounds ))
for r in $(seq 1 "$rounds"); do
	hyperfine --style basic --warmup 3 --runs "$per" --export-json "$work/out-$r.json" \
		-n berth "$berth --root $work/state-berth run -b $b bench" \
		-n runc "$runc --root $work/state-runc run -b $b bench" \
		-n crun "$crun --root $work/state-crun run -b $b bench" \
		-n berth-ro "$berth_ro --root $work/state-berth run -b $b bench" \
		-n berth-exec "BERTH_EXESEAL_EXEC=1 $berth --root $work/state-berth run -b $b bench" >&2
done
python3 - "$work"/out-*.json <<'PY'
import json, statistics, sys
times = {}
for path in sys.argv[1:]:
    for x in json.load(open(path))["results"]:
        times.setdefault(x["command"], []).extend(x["times"])
med = {k: statistics.median(v) * 1000 for k, v in times.items()}
for k in ("berth", "runc", "crun"):
    v = times[k]
    print(f"{k:6s} median {med[k]:7.2f} ms  (mean {statistics.mean(v)*1000:7.2f} ms, "
          f"stddev {statistics.stdev(v)*1000:5.2f}, {len(v)} runs)")
print(f"ratio berth/runc {med['berth']/med['runc']:.2f}")
print(f"ratio berth/crun {med['berth']/med['crun']:.2f}")
print(f"berth installed read-only (nothing to seal): median {med['berth-ro']:.2f} ms, "
      f"{med['berth-ro']/med['crun']:.2f}x crun")
print(f"berth re-executing from its sealed view (BERTH_EXESEAL_EXEC=1, the way before the "
      f"in-place move): median {med['berth-exec']:.2f} ms, {med['berth-exec']/med['crun']:.2f}x crun")
PY
