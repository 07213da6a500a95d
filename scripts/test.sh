#!/usr/bin/env bash
# Sets up a fresh machine (scripts/setup.sh) and runs every test: unit tests, the root
# integration suite against berth (real containers, real ptys), the same suite against runc to
# check the tests themselves, and runc's own bats suite with berth. Must run as root.
#
#   scripts/test.sh            everything
#   BERTH_TEST_SKIP_RUNC=1     do not re-run the suite against runc
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test: run as root (the suite makes real containers)" >&2; exit 1; }
scripts/setup.sh
export BERTH_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/berth"
echo "== unit and integration tests (against berth)" >&2
cargo test --workspace --no-fail-fast
echo "== the shipped build (static, scripts/release.sh): lifecycle, terminals, monitor" >&2
release=$(scripts/release.sh)
BERTH_BIN="$release/berth" cargo test -p berth-itest --no-fail-fast \
	--test lifecycle --test tty --test tty_session --test monitor_attach --test hardening_exe
if [ -z "${BERTH_TEST_SKIP_RUNC:-}" ]; then
	echo "== integration suite against runc (checks the tests themselves)" >&2
	BERTH_TEST_RUNTIME=/usr/sbin/runc cargo test -p berth-itest --no-fail-fast
fi
if [ -x tests/runc-bats/run.sh ]; then
	echo "== runc's bats suite with berth" >&2
	tests/runc-bats/run.sh --ci
fi
