#!/bin/sh
# Fallback wrapper for running crun 1.8 on this hybrid-cgroup host, used by the itest harness
# when shared/tools/hybrid-cgroup-fix.sh cannot bind cgroup2's controllers to v1 (for example
# while another process has them enabled in cgroup2's subtree_control).
#
#   crun-cgroup-v1.sh CMD [ARG...]
#
# CMD runs in a private mount namespace whose /sys/fs/cgroup is a fresh tmpfs carrying the
# host's cgroup v1 hierarchies but not the cgroup2 mount at /sys/fs/cgroup/unified, so crun
# sees a pure v1 ("legacy") host. Nothing changes in the host's mount namespace or cgroups.
set -eu
if [ "${1:-}" != __inner ]; then
	[ $# -gt 0 ] || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }
	exec unshare -m --propagation private "$0" __inner "$@"
fi
shift
save=$(mktemp -d "${TMPDIR:-/tmp}/crun-cgv1.XXXXXX")
mount --rbind /sys/fs/cgroup "$save"
mount -t tmpfs -o mode=755,nosuid,nodev,noexec berth-itest-cgv1 /sys/fs/cgroup
for d in "$save"/*; do
	n=${d##*/}
	[ "$n" = unified ] && continue
	if [ -L "$d" ]; then ln -s "$(readlink "$d")" "/sys/fs/cgroup/$n"; continue; fi
	mkdir "/sys/fs/cgroup/$n"
	mount --rbind "$d" "/sys/fs/cgroup/$n"
done
umount -l "$save" && rmdir "$save"
exec "$@"
