#!/bin/sh
# mount.sh MOUNTPOINT [ipcfs mount flags]: install what is missing, build,
# and serve ipcfs at MOUNTPOINT in the foreground (Ctrl-C unmounts).
set -eu
[ $# -ge 1 ] || { echo "usage: scripts/mount.sh MOUNTPOINT [flags]" >&2; exit 2; }
case $1 in
/*) mnt=$1 ;;
*) mnt=$(pwd)/$1 ;;
esac
shift
cd "$(dirname "$0")/.."
scripts/setup.sh
exec bin/ipcfs mount "$@" "$mnt"
