#!/bin/sh
# test.sh: the gates (gofmt, go vet, staticcheck, a tidy go.mod), then the
# whole test suite — unit tests, fuzz seeds, and the integration tests that
# mount ipcfs for real (they need root or FUSE access; without /dev/fuse
# they skip, saying so) — with the race detector, then the unit tests again
# on one CPU to shake out ordering bugs. Each run ends with a line
# "LABEL: N passed, N failed, N skipped" and lists what was skipped; with
# CI=true a skipped mounted test fails the run (CI has FUSE: a skip there
# means a test did not run).
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/goenv.sh

fmt=$(gofmt -l .)
if [ -n "$fmt" ]; then
	echo "test.sh: gofmt would change these files (run gofmt -w):" >&2
	echo "$fmt" >&2
	exit 1
fi
go vet ./...
go tool staticcheck ./...   # pinned in go.mod (tool directive)
if ! go mod tidy -diff; then
	echo "test.sh: go.mod or go.sum is not tidy (run go mod tidy)" >&2
	exit 1
fi

noskip=""
if [ "${CI:-}" = true ]; then
	noskip="-no-skip github.com/ipcfs/ipcfs/tests"
fi
# -timeout: every wait in the tests is bounded (hangTimeout, 60 s), so a hang
# fails the test that hung; this is the backstop for one that escapes them,
# and prints every goroutine's stack within minutes instead of 30 (the
# tests package takes 4-6 minutes under -race here, the whole script about
# 10; go-fuse's all.bash does the same).
go build -o bin/testreport ./internal/testreport
bin/testreport -label race $noskip -- -race -count=1 -timeout 15m ./...
GOMAXPROCS=1 bin/testreport -label gomaxprocs1 -- -race -count=1 -timeout 3m ./channels ./fs ./shmregion ./ctl ./internal/size ./natschan
echo "test.sh: all tests passed"
