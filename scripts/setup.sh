#!/bin/sh
# setup.sh: install what ipcfs needs to build, mount and test on a Debian or
# Ubuntu machine (fuse3 for fusermount3, a C compiler and python3 for the
# test clients), then build bin/ipcfs. Safe to run again.
set -eu
cd "$(dirname "$0")/.."

missing=""
command -v fusermount3 >/dev/null 2>&1 || missing="$missing fuse3"
command -v cc >/dev/null 2>&1 || missing="$missing gcc libc6-dev"
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
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
