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
// one object for as long as the kernel holds it. msg is the exception:
// every LOOKUP of it returns a new node (msgInstanceBit, a table of its
// own), so that each open file of msg has a kernel inode, and inode lock,
// of its own (see "Locks in the kernel").
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
// An INTERRUPT names a request by ID. If the requesting thread has a
// pending signal that it catches or that kills it (signalsEndWait reads
// /proc/TID/status), the parked request is withdrawn from its channel and
// answered EINTR; a request never gets a message after its withdrawal.
// Otherwise (the thread was stopped, traced or frozen) it stays parked and
// its thread's signals are read again every 20 ms. An INTERRUPT that
// arrives before the request it names has parked (several goroutines read
// requests) is remembered briefly and applied as the request parks.
//
// # Locks in the kernel
//
// The kernel holds a msg inode's lock across a whole direct write(2), and
// takes it exclusively for SEEK_END, utimes, fsync, truncate and O_APPEND
// writes: a WRITE parked in the daemon must not hold a lock anybody else
// needs. So each open file of msg has its own inode (msg instances), msg
// reports a size beyond any offset (msgSize) and opens with
// FOPEN_PARALLEL_DIRECT_WRITES (writes sharing an open file take the lock
// shared) and FOPEN_NOFLUSH (close takes no lock).
//
// # The page cache
//
// msg, ctl and status are direct I/O, but sendfile, splice, readahead and
// private mappings still read them through the page cache. Those READs
// carry no lock owner; the server refuses them with EINVAL before they
// reach a handle (Server.read), so they never take a message or park
// holding a locked page.
//
// # Locking
//
// Lock order: Server.mu, then a channel's queue's lock (channels.Channel,
// or natschan.Queue, whose SentSeen attr takes under Server.mu), then a
// region's (shmregion.Region). msgHandle.mu is taken without Server.mu and
// is held while a READ is answered from the window, because the window's
// buffer is recycled when it is dropped; pollMu guards only the wakeup
// handle. pendingRequests.mu is a leaf. No lock is held while a channel
// runs completion or wake functions, and lookup, rename and mkdir send
// their reply after releasing Server.mu.
//
// # NATS
//
// On a mount joined to NATS (nats.go), a channel's queue is a
// natschan.Queue: TrySend and TryReceive always answer ErrDeferred, so
// every msg READ and WRITE parks and completes from natschan's goroutines;
// requests that wait for NATS otherwise (namespace changes, ctl, status,
// a lookup of an unknown name) are answered on goroutines of their own
// (waitsForNATS), never on a serving loop. Changes other daemons make come
// through the namespace watch (applyEvent), under Server.mu.
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
