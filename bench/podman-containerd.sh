#!/bin/bash
# Start-up cost through the real callers: `podman run --rm ... true` and `ctr run --rm ... true`
# with berth, runc and crun as the OCI runtime, measured in one hyperfine run each, then the
# medians and their ratios to berth.
#
#   bench/podman-containerd.sh [-r RUNS] [-w WARMUP]
#
# Environment: BERTH_BIN (default: the static release build of scripts/release.sh),
#   RUNC (default /usr/sbin/runc), CRUN (default /usr/bin/crun).
#
# Everything is private and removed at the end: podman gets its own --root/--runroot/--tmpdir,
# vfs storage, cgroupfs, --network none and a containers.conf under a temp dir (like
# tests/itest/tests/podman.rs); containerd is started with its own root, state, socket and
# config (CRI disabled) and stopped afterwards. The container is a busybox-static rootfs
# directory (`--rootfs`). crun 1.8 refuses this hybrid cgroup host, so it is called through a
# wrapper: /work/shared/tools/hybrid-cgroup-fix.sh (or ../shared/tools/ beside the repository)
# when that works here, else tests/itest/tools/crun-cgroup-v1.sh; the wrapper is part of what is
# measured for crun (an unshare and a few mounts per runtime call).
# Needs: podman, conmon, containerd, hyperfine, busybox-static, jq (Debian packages).
set -euo pipefail

runs=20
warmup=3
while getopts "r:w:h" opt; do
	case $opt in
	r) runs=$OPTARG ;;
	w) warmup=$OPTARG ;;
	h) sed -n '2,20p' "$0"; exit 0 ;;
	*) exit 2 ;;
	esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
die() { echo "podman-containerd.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
for t in podman conmon containerd ctr hyperfine busybox jq; do
	command -v "$t" >/dev/null || die "$t is missing (apt-get install podman conmon containerd hyperfine busybox-static jq)"
done

berth=${BERTH_BIN:-}
if [ -z "$berth" ]; then
	berth=$("$repo/scripts/release.sh")/berth || die "cannot build berth"
fi
runc=${RUNC:-/usr/sbin/runc}
crun=${CRUN:-/usr/bin/crun}
[ -x "$runc" ] || die "no runc at $runc"
[ -x "$crun" ] || die "no crun at $crun"

w=$(mktemp -d /tmp/berth-bench-XXXXXX)
daemon=
cleanup() {
	set +e
	if [ -n "$daemon" ]; then
		for id in $(ctr --address "$w/c.sock" task ls -q 2>/dev/null); do
			ctr --address "$w/c.sock" task kill -s KILL "$id" >/dev/null 2>&1
			ctr --address "$w/c.sock" task rm -f "$id" >/dev/null 2>&1
		done
		for id in $(ctr --address "$w/c.sock" c ls -q 2>/dev/null); do
			ctr --address "$w/c.sock" c rm "$id" >/dev/null 2>&1
		done
		kill "$daemon" 2>/dev/null
		wait "$daemon" 2>/dev/null
	fi
	pm rm -a -f -t 0 >/dev/null 2>&1
	grep -o " $w[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
	for h in /sys/fs/cgroup/*/; do
		find "$h/berth-bench" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	rm -rf "$w"
}
trap cleanup EXIT

# The runtimes, under the names podman knows (it picks JSON logging by name).
mkdir -p "$w/bin" "$w/rootfs/bin" "$w/rootfs/etc" "$w/rootfs/proc" "$w/rootfs/sys" "$w/rootfs/dev" \
	"$w/rootfs/tmp" "$w/root" "$w/runroot" "$w/tmp" "$w/net"
ln -s "$berth" "$w/bin/berth"
ln -s "$runc" "$w/bin/runc"
crun_wrapper=
for c in /work/shared/tools/hybrid-cgroup-fix.sh "$repo/../shared/tools/hybrid-cgroup-fix.sh"; do
	if [ -x "$c" ] && "$c" run true 2>/dev/null; then crun_wrapper="$c run"; break; fi
done
[ -n "$crun_wrapper" ] || crun_wrapper="$repo/tests/itest/tools/crun-cgroup-v1.sh"
cat >"$w/bin/crun" <<EOF
#!/bin/sh
exec $crun_wrapper $crun "\$@"
EOF
chmod +x "$w/bin/crun"

cp /bin/busybox "$w/rootfs/bin/busybox"
for a in sh true; do ln -s busybox "$w/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$w/rootfs/etc/passwd"
echo 'root:x:0:' >"$w/rootfs/etc/group"

cat >"$w/containers.conf" <<EOF
[containers]
netns = "none"
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$w/events.log"
tmp_dir = "$w/tmp"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "youki", "krun", "berth"]
[engine.runtimes]
berth = ["$w/bin/berth"]
runc = ["$w/bin/runc"]
crun = ["$w/bin/crun"]
[network]
network_config_dir = "$w/net"
EOF
printf '[storage]\ndriver = "vfs"\ngraphroot = "%s/root"\nrunroot = "%s/runroot"\n' "$w" "$w" >"$w/storage.conf"
export CONTAINERS_CONF=$w/containers.conf CONTAINERS_STORAGE_CONF=$w/storage.conf
pm() {
	podman --root "$w/root" --runroot "$w/runroot" --tmpdir "$w/tmp" --storage-driver vfs \
		--cgroup-manager cgroupfs --events-backend file "$@"
}
pmflags="--root $w/root --runroot $w/runroot --tmpdir $w/tmp --storage-driver vfs --cgroup-manager cgroupfs --events-backend file"

cat >"$w/config.toml" <<EOF
version = 2
root = "$w/c-root"
state = "$w/c-state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$w/c.sock"
[ttrpc]
  address = "$w/c.sock.ttrpc"
EOF
containerd --config "$w/config.toml" >"$w/containerd.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do ctr --address "$w/c.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
ctr --address "$w/c.sock" version >/dev/null || die "containerd did not start: $(tail -5 "$w/containerd.log")"

# Sanity: every runtime really runs a container both ways before anything is timed.
for r in berth runc crun; do
	pm run --rm --network none --cgroup-parent /berth-bench --runtime "$w/bin/$r" --rootfs "$w/rootfs" /bin/true ||
		die "podman with $r does not work"
	ctr --address "$w/c.sock" run --rm --runc-binary "$w/bin/$r" --runc-root "$w/runc-root" \
		--cgroup "/berth-bench/check-$r" --rootfs "$w/rootfs" "check-$r" /bin/true ||
		die "ctr with $r does not work"
done

cmds=()
names=()
for r in berth runc crun; do
	names+=("podman-$r")
	cmds+=("podman $pmflags run --rm --network none --cgroup-parent /berth-bench --runtime $w/bin/$r --rootfs $w/rootfs /bin/true")
done
for r in berth runc crun; do
	names+=("ctr-$r")
	# hyperfine starts a new shell per run: $$ makes the container id unique.
	cmds+=("ctr --address $w/c.sock run --rm --runc-binary $w/bin/$r --runc-root $w/runc-root --cgroup /berth-bench/\$\$ --rootfs $w/rootfs b-$r-\$\$ /bin/true")
done
args=()
for i in "${!cmds[@]}"; do args+=(--command-name "${names[$i]}" "${cmds[$i]}"); done
echo "berth: $berth ($("$berth" --version | head -1)); runc: $("$runc" --version | head -1); crun: $("$crun" --version | head -1); crun via: $crun_wrapper" >&2
hyperfine --shell bash --warmup "$warmup" --runs "$runs" --export-json "$w/result.json" --style basic "${args[@]}" >&2

echo
echo "| caller | runtime | median (ms) | ratio to berth |"
echo "|---|---|---|---|"
for caller in podman ctr; do
	base=$(jq -r --arg n "$caller-berth" '.results[] | select(.command == $n) | .median' "$w/result.json")
	for r in berth runc crun; do
		jq -r --arg n "$caller-$r" --arg c "$caller" --arg r "$r" --argjson b "$base" \
			'.results[] | select(.command == $n) | "| \($c) run --rm true | \($r) | \(.median * 1000 | . * 10 | round / 10) | \(.median / $b * 100 | round / 100) |"' \
			"$w/result.json"
	done
done
