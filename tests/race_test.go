//go:build race

package tests

// raceEnabled: the tests run with -race, so the daemon under test is built
// with it too.
const raceEnabled = true
