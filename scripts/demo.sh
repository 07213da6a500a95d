#!/usr/bin/env bash
# The main job on a fresh machine: installs what berth needs, builds it, makes a small busybox
# bundle locally (no image pulls) and runs an interactive container in it. On a terminal you get
# a shell inside the container (exit it with `exit` or Ctrl-D); without one, a short scripted demo
# runs instead. Must run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root" >&2; exit 1; }
scripts/setup.sh
berth="${CARGO_TARGET_DIR:-$PWD/target}/debug/berth"
root="$PWD/.work/demo-state"
bundle="$PWD/.work/demo-bundle"

rm -rf "$bundle"
mkdir -p "$bundle/rootfs"/{bin,proc,sys,dev,tmp,etc,root}
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in $("$bundle/rootfs/bin/busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$bundle/rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$bundle/rootfs/etc/passwd"
printf 'root:x:0:\ntty:x:5:\n' > "$bundle/rootfs/etc/group"
(cd "$bundle" && "$berth" spec)
python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["hostname"] = "berth-demo"
c["process"]["env"].append("PS1=[\\u@\\h \\w]# ")
c["root"]["readonly"] = False
json.dump(c, open(p, "w"), indent=1)
PY

if [ -t 0 ] && [ -t 1 ]; then
	echo "demo: a shell in a container (its own pty from its own devpts); type exit to leave" >&2
	exec "$berth" --root "$root" run -b "$bundle" "demo-$$"
fi

echo "demo: no terminal here, so a scripted tour instead" >&2
set -x
# A foreground run with a terminal, driven through a pty that script(1) allocates; the shell's
# exit status (7) comes back as berth's.
status=0
script -qec "$berth --root $root run -b $bundle demo-tty-$$" /dev/null <<'IN' || status=$?
tty; stty size; echo "hello from $(hostname)"; exit 7
IN
echo "demo: the container's shell exited with $status" >&2
# create / start / exec / state / kill / delete, pass-through stdio.
python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sleep", "300"]
json.dump(c, open(p, "w"), indent=1)
PY
"$berth" --root "$root" create -b "$bundle" "demo-$$"
"$berth" --root "$root" start "demo-$$"
"$berth" --root "$root" list
"$berth" --root "$root" exec "demo-$$" sh -c 'echo "pid $$ in $(hostname)"; ls /dev'
"$berth" --root "$root" ps "demo-$$"
"$berth" --root "$root" kill "demo-$$" KILL
sleep 0.2
"$berth" --root "$root" delete "demo-$$"
"$berth" --root "$root" list
