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
go test -race -count=1 -timeout 30m ./...
GOMAXPROCS=1 go test -race -count=1 -timeout 10m ./channels ./fs ./shmregion ./ctl ./internal/size
echo "test.sh: all tests passed"
