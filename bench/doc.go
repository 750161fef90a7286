// Package bench measures ipcfs against what users would pick instead: msg
// against a pipe and a Unix domain socket (SOCK_SEQPACKET), shm against
// /dev/shm. It is the body of `ipcfs bench`.
//
// # Processes
//
// [Run] never touches the mount it measures through a Go poller, and never
// serves it: it starts a child `ipcfs mount` on a private temporary
// directory and runs every client in a process of its own (the same binary,
// re-executed as `ipcfs bench client ROLE`, see [ClientMain]). A Go process
// that used a mount it serves would deadlock: its epoll calls become POLL
// requests to itself.
//
// # What is timed
//
// Clients use raw blocking read(2) and write(2) on blocking descriptors
// (golang.org/x/sys/unix), retrying EINTR, so the time measured is the
// IPC's and not Go's poller's. Every transport is measured in the same run,
// in interleaved rounds, and reported as a ratio to the pipe (or to
// /dev/shm): absolute numbers depend on the machine, ratios much less.
//
// # Cleanup
//
// Run stops its daemon with SIGTERM, falls back to `fusermount3 -u -z`
// if the mount is still there, and removes its temporary directories,
// whether it ends normally, on an error, or because its context was
// canceled (the command cancels it on SIGINT and SIGTERM). The daemon is
// started with a parent-death signal, so even a SIGKILLed `ipcfs bench`
// leaves no mount behind.
package bench
