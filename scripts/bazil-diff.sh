#!/bin/sh
# bazil-diff.sh: print the diff of third_party/bazil.org/fuse (the patched
# fork) against the upstream version go.mod pins, from the Go module cache
# (downloaded through the module proxy if missing). Every hunk is one of
# the patches third_party/bazil.org/fuse/PATCHES.md lists.
#
#	scripts/bazil-diff.sh            the whole diff
#	scripts/bazil-diff.sh fuse.go    the diff of one file
set -eu
cd "$(dirname "$0")/.."
. scripts/goenv.sh
fork=third_party/bazil.org/fuse
version=$(go list -m -f '{{.Version}}' bazil.org/fuse)
up=$(go mod download -json "bazil.org/fuse@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$up" ] || { echo "bazil-diff: no module directory for bazil.org/fuse@$version" >&2; exit 1; }
if [ $# -eq 0 ]; then
	# The fork is upstream's root package: its files only (tests,
	# examples and the fs/ and fuseutil/ packages are left out).
	set -- $(cd "$fork" && ls | grep -v '^PATCHES.md$')
fi
status=0
for f in "$@"; do
	diff -u --label "upstream@$version/$f" --label "fork/$f" "$up/$f" "$fork/$f" || status=$?
done
[ "$status" -le 1 ] # diff exits 1 when files differ
