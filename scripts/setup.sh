#!/bin/sh
# setup.sh: install what ipcfs needs to build, mount and test on a Debian or
# Ubuntu machine, then build bin/ipcfs. Safe to run again.
set -eu
cd "$(dirname "$0")/.."

missing=""
# need COMMAND-OR-FILE PACKAGE...: install PACKAGE... unless the command is
# on PATH (or, for an absolute path, the file exists).
need() {
	what=$1
	shift
	case $what in
	/*) [ -e "$what" ] && return 0 ;;
	*) command -v "$what" >/dev/null 2>&1 && return 0 ;;
	esac
	missing="$missing $*"
}
need fusermount3 fuse3                 # bazil mounts through fusermount3
need cc gcc libc6-dev                  # C test clients
need python3 python3                   # Python test clients
need systemd-analyze systemd           # verifying the unit; systemd-escape
need man man-db                        # rendering the man pages (man --warnings)
need strace strace                     # ptrace attach to a blocked client (tests/stuck_test.go)
need busybox busybox                   # readers tests: busybox cat (sendfile)
need /usr/include/liburing.h liburing-dev  # readers tests: the io_uring client
# One line per further need; keep them independent of each other.

if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: need$missing; run as root (or: sudo apt-get install$missing)" >&2
		exit 1
	fi
	echo "setup: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends $missing >/dev/null 2>&1 ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends $missing >/dev/null; }
fi

. scripts/goenv.sh
go build -o bin/ipcfs ./cmd/ipcfs
echo "setup: built bin/ipcfs ($(go version | cut -d' ' -f3))" >&2
