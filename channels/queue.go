package channels

import "errors"

// ErrDeferred: a TrySend or TryReceive of a Queue whose operations all
// take a round trip elsewhere (natschan's, over the network) would have to
// wait for it. The caller starts the operation with Send or Receive
// instead, which complete later, and never on the caller's goroutine.
var ErrDeferred = errors.New("channels: operation completes asynchronously")

// Queue is a message queue as a daemon's msg, ctl and status files use
// it: a Channel (see Channel.Queue), or one whose messages live elsewhere
// (natschan.Queue keeps them in a NATS JetStream stream shared by several
// daemons). Its rules are Channel's: one message per send, FIFO, each
// message received once, hangup, capacity.
type Queue interface {
	// TrySend sends msg (taking ownership of it) without waiting: nil,
	// ErrWouldBlock when there is no room, ErrDeferred when only Send can
	// tell, or why it cannot be sent.
	TrySend(msg []byte) error
	// TryReceive takes the next message without waiting: ErrWouldBlock
	// when there is none, ErrDeferred when only Receive can tell, io.EOF
	// after a hangup that is drained or a Close.
	TryReceive() ([]byte, error)
	// NewOp returns an operation for one Send or one Receive, completed by
	// calling done once, unless its Cancel withdraws it first.
	NewOp(done func(msg []byte, err error)) Op
	// Send sends msg with op: it waits for room if wait, else fails with
	// ErrWouldBlock where it would wait.
	Send(op Op, msg []byte, wait bool)
	// Receive takes the next message with op: it waits for one if wait,
	// else fails with ErrWouldBlock where it would wait.
	Receive(op Op, wait bool)
	// Delivered says that msg, from a receive, has reached its reader (the
	// READ was answered): a queue whose messages live elsewhere can let go
	// of it there now.
	Delivered(msg []byte)
	// Done says that the reader is finished with msg (its memory may be
	// released).
	Done(msg []byte)
	// NewPollWatch and Poll: see Channel.NewWatch and Channel.Poll.
	NewPollWatch(wake func()) PollWatch
	Poll(w PollWatch, interest Readiness) Readiness
	// Opened, Released, CountTruncated: see Channel's.
	Opened(read, write bool)
	Released(read, write, truncated bool)
	CountTruncated()
	// Hangup, Reopen, Flush, SetLimits: the ctl commands. Queues elsewhere
	// can fail to reach it.
	Hangup() error
	Reopen() error
	Flush() (discarded int, err error)
	SetLimits(l Limits) error
	// Close destroys the queue's local side (see Channel.Close).
	Close() (discarded int)
	// Stats: see Stats. Which counters a queue elsewhere knows for every
	// daemon and which for this one is its documentation's to say.
	Stats() Stats
}

// Op is a pending Send or Receive of a Queue.
type Op interface {
	// Cancel withdraws the operation if it has not completed and reports
	// whether it did (see Waiter.Cancel).
	Cancel() bool
}

// PollWatch is a poller's interest in a Queue (see Watch).
type PollWatch interface {
	// Stop disarms the watch for good (see Watch.Stop).
	Stop()
}

// Queue returns c as a Queue.
func (c *Channel) Queue() Queue { return localQueue{c} }

// localQueue is a Channel as a Queue: every operation may complete at
// once, so ErrDeferred never comes.
type localQueue struct{ *Channel }

func (q localQueue) NewOp(done func(msg []byte, err error)) Op { return q.NewWaiter(done) }

// Send waits for room: a Channel never defers TrySend, so callers only
// start a Send that is to wait.
func (q localQueue) Send(op Op, msg []byte, _ bool) { q.Channel.Send(op.(*Waiter), msg) }

// Receive waits: as Send.
func (q localQueue) Receive(op Op, _ bool) { q.Channel.Receive(op.(*Waiter)) }

func (q localQueue) Delivered([]byte) {}

func (q localQueue) NewPollWatch(wake func()) PollWatch { return q.NewWatch(wake) }

func (q localQueue) Poll(w PollWatch, interest Readiness) Readiness {
	watch, _ := w.(*Watch)
	return q.Channel.Poll(watch, interest)
}

func (q localQueue) Hangup() error       { q.Channel.Hangup(); return nil }
func (q localQueue) Reopen() error       { q.Channel.Reopen(); return nil }
func (q localQueue) Flush() (int, error) { return q.Channel.Flush(), nil }
