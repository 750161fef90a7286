#!/bin/sh
# test.sh: the whole test suite — unit tests, fuzz seeds, and the
# integration tests that mount ipcfs for real (they need root or FUSE
# access; without /dev/fuse they skip, saying so) — with the race detector,
# then the unit tests again on one CPU to shake out ordering bugs.
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/goenv.sh
go vet ./...
# -timeout: every wait in the tests is bounded (hangTimeout, 60 s), so a hang
# fails the test that hung; this is the backstop for one that escapes them,
# and prints every goroutine's stack within minutes instead of 30 (the
# whole suite takes under two minutes here; go-fuse's all.bash does the same).
go test -race -count=1 -timeout 6m ./...
GOMAXPROCS=1 go test -race -count=1 -timeout 3m ./channels ./fs ./shmregion ./ctl ./internal/size
echo "test.sh: all tests passed"
