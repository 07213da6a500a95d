#!/usr/bin/env bash
# Builds the binaries berth ships, `berth` and `berth-monitor`, as static, non-PIE executables
# (glibc and libseccomp linked in, from Debian's libc6-dev and libseccomp-dev), and prints the
# directory that holds them. Install both side by side (berth looks for berth-monitor next to
# itself).
#
#   scripts/release.sh            -> <CARGO_TARGET_DIR or target>/<host triple>/release
#
# Why static: berth execs itself twice per `run`/`exec` (the caller's exec, then the re-exec
# from its sealed copy, see crates/core/src/exeseal.rs) and forks the container's init from a
# copy of itself. Without the dynamic loader and its relocations each exec starts about
# 0.5 ms sooner and touches fewer pages (194 -> 144 page faults for `--version`), which takes
# about 3 ms off `run` of /bin/true on the 2-core VM (bench/run-true.sh). The tests build the
# default (dynamic) dev profile and also run a lifecycle and terminal subset against this build.
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
multiarch=$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")
# With --target, RUSTFLAGS apply to the shipped binaries only, not to build scripts and
# proc-macros (which cannot be static).
LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH="/usr/lib/$multiarch" \
	RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
	cargo build --quiet --release --target "$host" -p berth-cli -p berth-monitor >&2
out="${CARGO_TARGET_DIR:-$PWD/target}/$host/release"
for b in berth berth-monitor; do
	file -L "$out/$b" | grep -q 'statically linked' || { echo "release: $out/$b is not static" >&2; exit 1; }
done
echo "$out"
