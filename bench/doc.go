// Package bench measures ipcfs against what users would pick instead: msg
// against a pipe and a Unix domain socket (SOCK_SEQPACKET), shm against
// /dev/shm; and msg against the floor, the least any FUSE daemon costs
// for the same exchange. It is the body of `ipcfs bench`.
//
// # Processes
//
// [Run] never touches the mount it measures through a Go poller, and never
// serves it: it starts a child `ipcfs mount` on a private temporary
// directory, and a child floor server on another ([FloorMain], `ipcfs
// bench floor`: a minimal FUSE server on raw /dev/fuse whose channels look
// like ipcfs's), and runs every client in a process of its own (the same
// binary, re-executed as `ipcfs bench client ROLE`, see [ClientMain]). A
// Go process that used a mount it serves would deadlock: its epoll calls
// become POLL requests to itself.
//
// # What is timed
//
// Clients make raw blocking read(2), write(2) and pread(2) calls
// (RawSyscall) on blocking descriptors, retrying EINTR, with
// GODEBUG=asyncpreemptoff=1, so the time measured is the IPC's and not
// Go's scheduler's or poller's. Every transport is measured in the same
// run, in interleaved rounds, in two placements (unpinned, and every
// process on one CPU), and reported as a ratio to the pipe and to the
// floor (or to /dev/shm): absolute numbers depend on the machine, ratios
// much less.
//
// # NATS
//
// With Config.NATS (`ipcfs bench --nats`) Run also starts two daemons
// joined to NATS JetStream — A embedding the server on a free loopback
// port, B joining it — and measures msg with the writer on A's mount and
// the reader on B's, with both on A's, and the same exchange done with
// nats.go alone by client processes (`ipcfs bench client nats-ping`, …,
// on a stream configured as a channel's), the floor of that design. These
// are measured unpinned only, in the same rounds as the rest, and
// reported against the nats.go figures and local msg's.
//
// # Cleanup
//
// Run stops its daemons with SIGTERM, falls back to `fusermount3 -u -z`
// if a mount is still there, and removes its temporary directories,
// whether it ends normally, on an error, or because its context was
// canceled (the command cancels it on SIGINT and SIGTERM). The daemons are
// started with a parent-death signal, so even a SIGKILLed `ipcfs bench`
// leaves no mount behind.
package bench
