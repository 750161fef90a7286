// Package natschan keeps ipcfs channels in NATS JetStream, so that every
// daemon joined to one deployment (and prefix) serves the same channels.
//
// The namespace is a key-value bucket, PREFIX_names: one key per channel
// name (encoded, see EncodeName), whose value is the channel's Record —
// its ID, owner, mode, capacity and hangup state. Each daemon watches the
// bucket and mirrors it in its own tree.
//
// Each channel's messages are a work-queue stream, PREFIX_ID, on the
// subject PREFIX.q.ID, with one durable pull consumer, "readers", shared by
// every daemon: a daemon asks for as many messages as it has blocked
// readers, hands each to one, and acknowledges it once the reader's READ
// is answered. A daemon that dies holding a message unacknowledged has it
// redelivered to another after the consumer's ack wait: at least once,
// never lost. Writers publish with a message ID, so a publish retried
// after a lost acknowledgement is stored once. The stream's limits (discard
// new) are the channel's capacity: writers wait for room.
//
// Readiness for poll comes from the stream's state, refreshed when a
// daemon announces a change on PREFIX.ev.ID (a message published or
// acknowledged, a flush), while some local poller or writer waits for it.
//
// The package has no FUSE import: Queue implements channels.Queue.
package natschan
