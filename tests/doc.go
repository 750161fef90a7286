// Package tests holds the integration tests of ipcfs: each mounts a real
// FUSE filesystem served by the built ipcfs binary (a child process) and
// talks to it from other processes — shell, Python, a C program compiled at
// test time, and a Go client binary — as users do. They skip, saying why,
// where /dev/fuse or fusermount3 is missing.
package tests
