// Package fs serves the ipcfs tree over FUSE. It is a dispatcher over
// bazil's low-level fuse.Conn: a few goroutines read requests and answer
// them inline, translating each into calls on the packages that do the
// work (channels for msg, shmregion for shm, ctl for the control file).
//
// # The tree
//
// The root holds channels (directories made by mkdir); each channel holds
// four files, in a static table: msg, shm, ctl, status. A node ID encodes
// the channel's serial number and the file kind, so nothing but the
// channels needs a table; serials are never reused, so an ID always names
// one object for as long as the kernel holds it.
//
// # Waiting
//
// No request blocks a goroutine. A msg READ with no message, or a msg
// WRITE with no room, parks in its channel as a pending request; the WRITE
// that brings a message answers the waiting READ directly, the READ that
// frees room answers the waiting WRITE, and INTERRUPT, hangup, rmdir and
// shutdown answer the rest.
//
// # Interrupts
//
// An INTERRUPT names a request by ID. A parked request is withdrawn from
// its channel and answered EINTR; a request never gets a message after its
// withdrawal. An INTERRUPT that arrives before the request it names has
// parked (several goroutines read requests) is remembered briefly, and
// the request is answered EINTR as soon as it tries to park.
//
// # Errors
//
// Handlers return errors; toErrno maps them, with errors.Is, to the errno
// the caller sees and the level of the log line. Unknown errors become EIO
// and are logged as errors. A panic in a handler is recovered, logged and
// answered EIO: it is a bug, never a crash.
//
// # Deadlocks
//
// The serving process must never use its own mount: its requests would
// wait for goroutines that are waiting for them. Clients are other
// processes.
package fs
