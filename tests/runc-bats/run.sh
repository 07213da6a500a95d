#!/bin/bash
# Runs runc 1.1.5's own integration suite (tests/integration/*.bats from Debian's source package of
# runc) against one or more runc-compatible runtimes and prints a per-file pass/fail table.
#
#   tests/runc-bats/run.sh [--ci] [-r NAME=PATH]... [-o TABLE.md] [FILE.bats...]
#
#   --ci           a regression listed in tests/runc-bats/known-differences.txt (a file that
#                  passes with runc and is known to fail with berth, with the reason) does not
#                  fail the run; every other one does. A listed file that passes is reported.
#   -r NAME=PATH   a runtime to test (repeatable); default: runc=/usr/sbin/runc and
#                  berth=$BERTH_BIN (else <CARGO_TARGET_DIR or target>/debug/berth)
#   -o FILE        also write the markdown table to FILE
#   FILE.bats      only these files (default: every *.bats of the suite but seccomp-notify.bats)
#
# Environment:
#   RUNC_BATS_WORK  work dir (default /tmp/berth-runc-bats): source, tree, images, logs
#   RECVTTY         berth's static recvtty (default: built like the itest harness does)
#   BATS_FILE_TIMEOUT  seconds per file and runtime (default 150; the slowest file takes ~25 s)
#
# What it does:
#   1. `apt-get source runc` (Debian's archive; needs deb-src lines and dpkg-dev) into
#      $RUNC_BATS_WORK/src once, and checks it is runc 1.1.5. Nothing of runc is committed here.
#   2. A fresh copy of tests/integration per run, with the helpers' expectations met offline:
#      - testdata/busybox-<arch>.tar.xz: a rootfs made from Debian's busybox-static the way
#        tests/itest builds its template (applet symlinks, passwd, group), so get-images.sh finds
#        it and downloads nothing;
#      - testdata/debian-<arch>.tar.xz (only hooks.bats uses it, for `ldconfig`): the same
#        busybox rootfs plus the host's static /sbin/ldconfig and an empty /lib;
#      - contrib/cmd/recvtty/recvtty: berth's runc-compatible recvtty (tests/helper);
#      - a `go` shim on PATH answering `go env GOARCH` (get-images.sh asks it).
#      seccompagent and sd-helper are not provided: the files needing them fail for every
#      runtime (seccomp-notify*.bats) or skip (systemd).
#   3. Each file runs under `bats --tap` inside a pty (`script`, util-linux) with RUNC=<runtime>,
#      one runtime after the other; the TAP output goes to $RUNC_BATS_WORK/logs/<runtime>/<file>.tap.
# A file "passes" when bats exits 0 (every test ok or skipped). The exit status is 1 when a file
# that passes with the first runtime fails with another one, else 0.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${RUNC_BATS_WORK:-/tmp/berth-runc-bats}
file_timeout=${BATS_FILE_TIMEOUT:-150}
want_version=1.1.5

die() { echo "run.sh: $*" >&2; exit 2; }

ci=
plain=()
for a in "$@"; do
	if [ "$a" = --ci ]; then ci=1; else plain+=("$a"); fi
done
set -- ${plain[@]+"${plain[@]}"}
runtimes=()
table_out=
while getopts "r:o:h" opt; do
	case $opt in
	r) runtimes+=("$OPTARG") ;;
	o) table_out=$OPTARG ;;
	h) sed -n '2,32p' "$0"; exit 0 ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))

[ "$(id -u)" = 0 ] || die "must run as root (the suite creates real containers)"
for tool in bats jq gawk xz tar busybox gcc script; do
	command -v "$tool" >/dev/null || die "$tool is missing (apt-get install bats jq gawk xz-utils busybox-static gcc util-linux)"
done

if [ ${#runtimes[@]} -eq 0 ]; then
	berth=${BERTH_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/berth}
	runtimes=("runc=/usr/sbin/runc" "berth=$berth")
fi
for r in "${runtimes[@]}"; do
	[[ $r == *=* ]] || die "-r wants NAME=PATH, got '$r'"
	[ -x "${r#*=}" ] || die "runtime ${r%%=*}: ${r#*=} is not an executable"
done

mkdir -p "$work"
work=$(cd "$work" && pwd)

# 1. runc's source from Debian.
src=$(find "$work/src" -maxdepth 1 -type d -name "runc-$want_version*" 2>/dev/null | head -n1 || true)
if [ -z "$src" ]; then
	command -v dpkg-source >/dev/null || die "dpkg-source is missing (apt-get install dpkg-dev)"
	rm -rf "$work/src" && mkdir -p "$work/src"
	(cd "$work/src" && apt-get source -qq runc >/dev/null) ||
		die "apt-get source runc failed: add deb-src lines for Debian bookworm (see tests/runc-bats/README.md)"
	src=$(find "$work/src" -maxdepth 1 -type d -name "runc-$want_version*" | head -n1)
	[ -n "$src" ] || die "apt-get source runc did not give runc $want_version: $(ls "$work/src")"
fi
[ -d "$src/tests/integration" ] || die "$src has no tests/integration"

# 2. A fresh tree.
tree=$work/tree
rm -rf "$tree"
mkdir -p "$tree/tests" "$tree/contrib/cmd/recvtty" "$work/bin"
cp -a "$src/tests/integration" "$tree/tests/"
it=$tree/tests/integration

if [ -z "${RECVTTY:-}" ]; then
	triple="$(uname -m)-unknown-linux-gnu"
	helper_target=${CARGO_TARGET_DIR:-$repo/target}/itest-helper
	(cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet -p berth-helper \
		--bins --release --target "$triple" --target-dir "$helper_target") || die "building recvtty failed"
	RECVTTY=$helper_target/$triple/release/recvtty
fi
[ -x "$RECVTTY" ] || die "recvtty not found at $RECVTTY"
cp "$RECVTTY" "$tree/contrib/cmd/recvtty/recvtty"

case $(uname -m) in
x86_64) goarch=amd64 ;;
aarch64) goarch=arm64 ;;
*) goarch=$(uname -m) ;;
esac
cat >"$work/bin/go" <<EOF
#!/bin/sh
# get-images.sh asks \`go env GOARCH\`; nothing else is needed from Go.
[ "\$*" = "env GOARCH" ] && { echo $goarch; exit 0; }
[ "\$*" = "env GOARM" ] && { echo; exit 0; }
echo "go shim: only 'go env GOARCH' is provided" >&2; exit 1
EOF
chmod +x "$work/bin/go"

# Busybox rootfs (the itest template's recipe, with every applet).
images=$work/images
stamp=$(stat -c '%s-%Y' /bin/busybox)
if [ ! -f "$images/.done-$stamp" ]; then
	rm -rf "$images" && mkdir -p "$images"
	r=$images/busybox
	mkdir -p "$r"/{bin,sbin,etc,proc,sys,dev,tmp,root,home/user,usr/bin,usr/sbin,var}
	chmod 1777 "$r/tmp"
	chmod 700 "$r/root"
	cp /bin/busybox "$r/bin/busybox"
	for a in $(busybox --list); do
		[ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"
	done
	cat >"$r/etc/passwd" <<-'EOF'
		root:x:0:0:root:/root:/bin/sh
		daemon:x:1:1:daemon:/usr/sbin:/bin/false
		bin:x:2:2:bin:/bin:/bin/false
		sys:x:3:3:sys:/dev:/bin/false
		user:x:1000:1000:user:/home/user:/bin/sh
		nobody:x:65534:65534:nobody:/home:/bin/false
	EOF
	cat >"$r/etc/group" <<-'EOF'
		root:x:0:
		daemon:x:1:
		bin:x:2:
		sys:x:3:
		tty:x:5:
		users:x:100:
		user:x:1000:
		nogroup:x:65534:
	EOF
	tar -C "$r" -cJf "$images/busybox.tar.xz" .
	# "debian": hooks.bats runs ldconfig in it.
	d=$images/debian
	cp -a "$r" "$d"
	mkdir -p "$d/lib" "$d/usr/lib" "$d/etc/ld.so.conf.d"
	cp /sbin/ldconfig "$d/sbin/ldconfig"
	: >"$d/etc/ld.so.conf"
	tar -C "$d" -cJf "$images/debian.tar.xz" .
	rm -rf "$r" "$d"
	touch "$images/.done-$stamp"
fi
cp "$images/busybox.tar.xz" "$it/testdata/busybox-$goarch.tar.xz"
cp "$images/debian.tar.xz" "$it/testdata/debian-$goarch.tar.xz"

# 3. Run.
if [ $# -gt 0 ]; then
	files=("$@")
else
	# seccomp-notify.bats needs runc's contrib/cmd/seccompagent, which is not provided: runc
	# itself hangs there until the timeout. Name it explicitly to run it anyway.
	mapfile -t files < <(cd "$it" && ls ./*.bats | sed 's|^\./||' | grep -vx 'seccomp-notify.bats')
fi

declare -A result
logs=$work/logs
for r in "${runtimes[@]}"; do
	name=${r%%=*} bin=${r#*=}
	mkdir -p "$logs/$name"
	for f in "${files[@]}"; do
		f=${f##*/}
		[ -f "$it/$f" ] || die "no such bats file: $f"
		log=$logs/$name/$f.tap
		start=$(date +%s)
		set +e
		# Under a terminal, as runc's CI runs it (`runc run` of the default spec wants one).
		(cd "$it" && PATH="$work/bin:$PATH" RUNC="$bin" timeout -k 10 "$file_timeout" \
			script -qefc "bats --tap $f" /dev/null) </dev/null 2>&1 | tr -d '\r' >"$log"
		rc=${PIPESTATUS[0]}
		set -e
		secs=$(($(date +%s) - start))
		ok=$(grep -c '^ok ' "$log" || true)
		skip=$(grep -c '^ok .* # skip' "$log" || true)
		bad=$(grep -c '^not ok ' "$log" || true)
		pass=$((ok - skip))
		if [ $rc -eq 0 ]; then verdict=pass; elif [ $rc -eq 124 ]; then verdict=timeout; else verdict=FAIL; fi
		if [ $rc -eq 124 ]; then
			# The file's teardown did not run: drop the cgroups runc's helpers made, when empty.
			for h in /sys/fs/cgroup/*/runc-cgroups-integration-test /sys/fs/cgroup/runc-cgroups-integration-test; do
				[ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null || true
			done
		fi
		result[$name/$f]="$verdict ($pass ok, $bad fail, $skip skip)"
		printf '%-8s %-28s %-8s %3d ok %3d fail %3d skip %4ss\n' "$name" "$f" "$verdict" "$pass" "$bad" "$skip" "$secs" >&2
	done
done

{
	printf '| file |'
	for r in "${runtimes[@]}"; do printf ' %s |' "${r%%=*}"; done
	printf '\n|---|'
	for _ in "${runtimes[@]}"; do printf -- '---|'; done
	printf '\n'
	for f in "${files[@]}"; do
		f=${f##*/}
		printf '| %s |' "$f"
		for r in "${runtimes[@]}"; do printf ' %s |' "${result[${r%%=*}/$f]}"; done
		printf '\n'
	done
} | tee ${table_out:+"$table_out"}

# Regressions against the first runtime (the reference).
known() { [ -n "$ci" ] && grep -qE "^$1([[:space:]]|\$)" "$here/known-differences.txt"; }
ref=${runtimes[0]%%=*}
status=0
for f in "${files[@]}"; do
	f=${f##*/}
	[[ ${result[$ref/$f]} == pass* ]] || continue
	for r in "${runtimes[@]:1}"; do
		n=${r%%=*}
		if [[ ${result[$n/$f]} != pass* ]]; then
			if known "$f"; then
				echo "known difference: $f ($(grep -E "^$f" "$here/known-differences.txt" | cut -d' ' -f2-))" >&2
			else
				echo "regression: $f passes with $ref but not with $n (log: $logs/$n/$f.tap)" >&2
				status=1
			fi
		elif known "$f"; then
			echo "note: $f now passes with $n: remove it from tests/runc-bats/known-differences.txt" >&2
		fi
	done
done
exit $status
