#!/usr/bin/env bash
# Installs everything berth's build, demo and tests need on a fresh Debian 12 machine (as root)
# and builds the workspace. Idempotent: quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
	# build
	pkg-config libseccomp-dev gcc libc6-dev
	# the busybox rootfs every demo and test container is made from
	busybox-static
	# reference runtimes and the real clients berth must work with
	runc crun podman conmon containerd golang-github-containers-common uidmap passwd
	# test and bench tools
	tmux hyperfine bats util-linux procps iproute2 python3 socat file jq strace
	# the containerd CRI test's small gRPC client; runc's bats suite (apt-get source, gawk, xz)
	python3-grpcio gawk xz-utils dpkg-dev
)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2
	apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
# Debian source packages (runc's own bats suite comes from Debian's runc source package).
if ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > /etc/apt/sources.list.d/debian-src.sources
		apt-get update -q >&2
	fi
fi
command -v cargo >/dev/null || { echo "setup: cargo not found: install the Rust toolchain (rustup)" >&2; exit 1; }
profile=${BERTH_PROFILE:-dev}
echo "setup: building the workspace ($profile)" >&2
cargo build --workspace --profile "$profile" >&2
