package channels

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// Errors a send or receive completes with. Receives that find the queue
// drained after a hangup, or the channel closed, complete with io.EOF.
var (
	// ErrWouldBlock: a non-blocking send found no room, or a non-blocking
	// receive found no message.
	ErrWouldBlock = errors.New("channels: operation would block")
	// ErrHungUp: a send to a hung-up channel.
	ErrHungUp = errors.New("channels: channel is hung up")
	// ErrClosed: a send to a closed channel.
	ErrClosed = errors.New("channels: channel is closed")
	// ErrEmptyMessage: a send of zero bytes (it would read as end of file).
	ErrEmptyMessage = errors.New("channels: empty message")
	// ErrBadLimits: limits below one message or one byte.
	ErrBadLimits = errors.New("channels: limits must be at least 1")
)

// Limits bound a channel's queue. A message is admitted while the queue
// holds fewer than MaxMsgs messages and its bytes fit within MaxBytes, or
// whenever the queue is empty (so one message larger than MaxBytes still
// goes through).
type Limits struct {
	MaxBytes int64
	MaxMsgs  int64
}

func (l Limits) validate() error {
	if l.MaxBytes < 1 || l.MaxMsgs < 1 {
		return fmt.Errorf("queue-bytes %d, queue-msgs %d: %w", l.MaxBytes, l.MaxMsgs, ErrBadLimits)
	}
	return nil
}

// Stats is a snapshot of a channel's state and counters. Messages discarded
// by Flush or Close count in Sent but never in Received, so Sent - Received
// - Messages is the number discarded.
type Stats struct {
	Limits
	Messages       int64  // queued now
	Bytes          int64  // queued now
	Readers        int64  // open handles that read (see Channel.Opened)
	Writers        int64  // open handles that write
	BlockedReaders int64  // receives parked now
	BlockedWriters int64  // sends parked now
	Sent           uint64 // messages that entered the queue (or went straight to a receiver)
	Received       uint64 // messages that left it to a receiver
	Truncated      uint64 // messages whose remainder a reader discarded
	HungUp         bool
	Closed         bool
}

// Channel is a bounded FIFO message queue. Its zero value is not usable;
// call New.
type Channel struct {
	mu sync.Mutex // guards every field below; never held while calling done or wake functions

	acct *Account // charged with the queued messages' cost; nil: no budget. Immutable.

	limits    Limits
	queue     fifo
	bytes     int64    // sum of the queued messages' lengths
	cost      int64    // sum of their MessageCost, charged to acct
	receivers waitList // parked receives, oldest first; non-empty only while queue is empty and no sender is parked
	senders   waitList // parked sends, oldest first; non-empty only while the queue is not empty, or the budget has no memory for the first
	armed     []*Watch // watches to wake on the next change they care about
	hungUp    bool
	closed    bool

	readers, writers          int64
	sent, received, truncated uint64
}

// New returns an open, empty channel.
func New(l Limits) (*Channel, error) {
	if err := l.validate(); err != nil {
		return nil, fmt.Errorf("channels: new: %w", err)
	}
	return &Channel{limits: l}, nil
}

// NewInBudget is New for a channel whose messages are charged to a, at
// MessageCost each, from the moment they are queued until the receiver
// calls Done with them: a message held by a reader (a FUSE daemon keeps
// the message being read) costs as much as a queued one. A message that
// fits the channel's limits but not a's budget waits (or is refused with
// ErrWouldBlock) as if the queue were full, until memory is released
// anywhere in the budget. A message handed straight from a sender to a
// waiting receiver is charged even beyond the budget: it exists already.
func NewInBudget(l Limits, a *Account) (*Channel, error) {
	c, err := New(l)
	if err != nil {
		return nil, err
	}
	c.acct = a
	return c, nil
}

// NewWaiter returns a waiter for one Send or one Receive on c. done is called
// exactly once when that operation completes — with the received message
// (owned by the callee) or nil, and nil or the error — unless Cancel
// withdraws the waiter first. It may be called from inside Send or Receive
// (when the operation completes at once) or later from another goroutine.
func (c *Channel) NewWaiter(done func(msg []byte, err error)) *Waiter {
	return &Waiter{ch: c, done: done}
}

// Send enqueues msg, taking ownership of it, and completes w: at once if the
// message is admitted or handed to a parked receiver, with ErrHungUp,
// ErrClosed or ErrEmptyMessage if it cannot be sent; otherwise w waits until
// there is room, in FIFO order with other waiting senders. (TrySend is the
// call that does not wait.)
func (c *Channel) Send(w *Waiter, msg []byte) {
	var s settlement
	c.mu.Lock()
	if w.state == waiterNew { // else canceled before it started: whoever canceled answers for it
		if err := c.trySend(&s, msg); err == ErrWouldBlock {
			w.msg = msg
			c.senders.pushBack(w)
		} else {
			s.complete(w, nil, err)
		}
	}
	c.mu.Unlock()
	s.run()
}

// TrySend is Send without waiting and without a Waiter: it returns nil if
// msg was queued or handed to a parked receiver (the channel owns it then),
// ErrWouldBlock if there is no room (nothing was sent), or ErrHungUp,
// ErrClosed, ErrEmptyMessage.
func (c *Channel) TrySend(msg []byte) error {
	var s settlement
	c.mu.Lock()
	err := c.trySend(&s, msg)
	c.mu.Unlock()
	s.run()
	return err
}

// trySend sends msg if it can without waiting. Requires c.mu.
func (c *Channel) trySend(s *settlement, msg []byte) error {
	switch {
	case c.closed:
		return ErrClosed
	case c.hungUp:
		return ErrHungUp
	case len(msg) == 0:
		return ErrEmptyMessage
	case c.receivers.len > 0:
		// The queue is empty: hand the message straight to the oldest receiver.
		c.sent++
		c.received++
		c.forceCharge(msg)
		s.complete(c.receivers.popFront(), msg, nil)
		return nil
	case c.senders.len == 0 && c.admits(len(msg)) && c.charge(msg):
		c.enqueue(msg)
		c.wake(s, Readable)
		return nil
	}
	return ErrWouldBlock
}

// Receive takes the next message for w: at once if one is queued (then
// parked senders that now fit are admitted), with io.EOF if the queue is
// drained and the channel hung up or closed; otherwise w waits for a
// message, in FIFO order with other waiting receivers. (TryReceive is the
// call that does not wait.)
func (c *Channel) Receive(w *Waiter) {
	var s settlement
	c.mu.Lock()
	if w.state == waiterNew {
		if msg, err := c.tryReceive(&s); err == ErrWouldBlock {
			c.receivers.pushBack(w)
		} else {
			s.complete(w, msg, err)
		}
	}
	c.mu.Unlock()
	s.run()
}

// TryReceive is Receive without waiting and without a Waiter: it returns
// the next message (owned by the caller), io.EOF if the queue is drained and
// the channel hung up or closed, or ErrWouldBlock.
func (c *Channel) TryReceive() ([]byte, error) {
	var s settlement
	c.mu.Lock()
	msg, err := c.tryReceive(&s)
	c.mu.Unlock()
	s.run()
	return msg, err
}

// tryReceive takes the next message if there is one. Requires c.mu.
func (c *Channel) tryReceive(s *settlement) ([]byte, error) {
	switch {
	case c.queue.len() > 0:
		msg := c.dequeue(s)
		c.admitSenders(s)
		changed := Writable
		if c.hungUp && c.queue.len() == 0 {
			changed |= HangUp // drained: receives now return end of file
		}
		c.wake(s, changed)
		return msg, nil
	case c.senders.len > 0:
		// The queue is empty and a sender waits for memory: its message
		// goes straight to this receiver, costing nothing.
		w := c.senders.popFront()
		msg := w.msg
		w.msg = nil
		c.sent++
		c.received++
		c.forceCharge(msg)
		s.complete(w, nil, nil)
		c.wake(s, Writable)
		return msg, nil
	case c.closed || c.hungUp:
		return nil, io.EOF
	}
	return nil, ErrWouldBlock
}

// Hangup makes later sends fail with ErrHungUp and, once the queue is
// drained, receives complete with io.EOF. Parked senders fail with
// ErrHungUp; parked receivers (the queue is empty) get io.EOF.
func (c *Channel) Hangup() {
	var s settlement
	c.mu.Lock()
	if !c.closed && !c.hungUp {
		c.hungUp = true
		c.settleAll(&s, ErrHungUp)
		c.wake(&s, Readable|Writable|HangUp)
	}
	c.mu.Unlock()
	s.run()
}

// Reopen undoes Hangup.
func (c *Channel) Reopen() {
	c.mu.Lock()
	if !c.closed {
		c.hungUp = false
	}
	c.mu.Unlock()
}

// Close destroys the channel: queued messages are discarded (their number
// is returned), parked and later sends fail with ErrClosed, parked and later
// receives get io.EOF. Idempotent.
func (c *Channel) Close() (discarded int) {
	var s settlement
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		discarded = c.discardQueue(&s)
		c.settleAll(&s, ErrClosed)
		c.wake(&s, Readable|Writable|HangUp)
	}
	c.mu.Unlock()
	if c.acct != nil {
		c.acct.b.forget(c)
	}
	s.run()
	return discarded
}

// Flush discards every queued message and returns how many; parked senders
// that now fit are admitted.
func (c *Channel) Flush() (discarded int) {
	var s settlement
	c.mu.Lock()
	discarded = c.discardQueue(&s)
	c.admitSenders(&s)
	c.wake(&s, Writable)
	c.mu.Unlock()
	s.run()
	return discarded
}

// SetLimits changes the capacity; parked senders that now fit are admitted.
// Messages already queued stay, even if they exceed the new limits.
func (c *Channel) SetLimits(l Limits) error {
	if err := l.validate(); err != nil {
		return fmt.Errorf("channels: set limits: %w", err)
	}
	var s settlement
	c.mu.Lock()
	c.limits = l
	c.admitSenders(&s)
	c.wake(&s, Writable)
	c.mu.Unlock()
	s.run()
	return nil
}

// Limits returns the current capacity.
func (c *Channel) Limits() Limits {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limits
}

// Opened counts an open handle that reads, writes or both, for Stats.
func (c *Channel) Opened(read, write bool) {
	c.mu.Lock()
	c.readers += b2i(read)
	c.writers += b2i(write)
	c.mu.Unlock()
}

// Released undoes Opened; truncated says the handle discarded the unread
// remainder of a message.
func (c *Channel) Released(read, write, truncated bool) {
	c.mu.Lock()
	c.readers -= b2i(read)
	c.writers -= b2i(write)
	if truncated {
		c.truncated++
	}
	c.mu.Unlock()
}

// CountTruncated counts one message whose unread remainder was discarded.
func (c *Channel) CountTruncated() {
	c.mu.Lock()
	c.truncated++
	c.mu.Unlock()
}

// Stats returns a snapshot of the counters.
func (c *Channel) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{
		Limits:         c.limits,
		Messages:       int64(c.queue.len()),
		Bytes:          c.bytes,
		Readers:        c.readers,
		Writers:        c.writers,
		BlockedReaders: int64(c.receivers.len),
		BlockedWriters: int64(c.senders.len),
		Sent:           c.sent,
		Received:       c.received,
		Truncated:      c.truncated,
		HungUp:         c.hungUp,
		Closed:         c.closed,
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// admits reports whether a message of n bytes may enter the queue now.
// Requires c.mu.
func (c *Channel) admits(n int) bool {
	q := int64(c.queue.len())
	return q == 0 || (q < c.limits.MaxMsgs && c.bytes+int64(n) <= c.limits.MaxBytes)
}

// charge charges msg's cost to the budget, if any, or registers c to be
// retried when memory is released and returns false. Requires c.mu.
func (c *Channel) charge(msg []byte) bool {
	return c.acct == nil || c.acct.chargeMessage(c, MessageCost(msg))
}

// forceCharge charges a message received without being queued. Requires c.mu.
func (c *Channel) forceCharge(msg []byte) {
	if c.acct != nil {
		c.acct.forceCharge(MessageCost(msg))
	}
}

// Done gives back the charge of a received message that the receiver no
// longer holds (it may recycle it). Call it once for each message a
// receive returned; it does nothing for a channel without a budget.
func (c *Channel) Done(msg []byte) {
	if c.acct != nil && msg != nil {
		c.acct.Release(MessageCost(msg))
	}
}

// release gives back n bytes of queued messages' cost; channels waiting
// for memory are retried when s runs. Requires c.mu.
func (c *Channel) release(s *settlement, n int64) {
	if c.acct != nil {
		s.retry = append(s.retry, c.acct.release(n)...)
	}
}

// retryAdmission admits parked senders after memory was released in the
// budget, and wakes pollers waiting to write.
func (c *Channel) retryAdmission() {
	var s settlement
	c.mu.Lock()
	if !c.closed {
		c.admitSenders(&s)
		c.wake(&s, Writable)
	}
	c.mu.Unlock()
	s.run()
}

// Requires c.mu; msg is charged.
func (c *Channel) enqueue(msg []byte) {
	c.queue.push(msg)
	c.bytes += int64(len(msg))
	c.cost += MessageCost(msg)
	c.sent++
}

// Requires c.mu and a non-empty queue.
func (c *Channel) dequeue(s *settlement) []byte {
	msg := c.queue.pop()
	c.bytes -= int64(len(msg))
	c.cost -= MessageCost(msg) // still charged: Done releases it
	c.received++
	return msg
}

// Requires c.mu.
func (c *Channel) discardQueue(s *settlement) int {
	n := c.queue.len()
	c.queue.clear()
	c.bytes = 0
	c.release(s, c.cost)
	c.cost = 0
	return n
}

// admitSenders moves parked senders that now fit into the queue, oldest
// first, stopping at the first that does not. Requires c.mu.
func (c *Channel) admitSenders(s *settlement) {
	admitted := false
	for c.senders.len > 0 && c.admits(len(c.senders.head.msg)) && c.charge(c.senders.head.msg) {
		w := c.senders.popFront()
		c.enqueue(w.msg)
		w.msg = nil
		s.complete(w, nil, nil)
		admitted = true
	}
	if admitted {
		c.wake(s, Readable)
	}
}

// settleAll completes every parked waiter: senders with sendErr, receivers
// with io.EOF. Requires c.mu.
func (c *Channel) settleAll(s *settlement, sendErr error) {
	for c.senders.len > 0 {
		w := c.senders.popFront()
		w.msg = nil
		s.complete(w, nil, sendErr)
	}
	for c.receivers.len > 0 {
		s.complete(c.receivers.popFront(), nil, io.EOF)
	}
}

// readiness requires c.mu.
func (c *Channel) readiness() Readiness {
	var r Readiness
	q := int64(c.queue.len())
	if q > 0 || c.hungUp || c.closed || c.senders.len > 0 {
		r |= Readable
	}
	if c.closed || c.hungUp || (c.senders.len == 0 && (q == 0 || (q < c.limits.MaxMsgs && c.bytes < c.limits.MaxBytes)) &&
		(c.acct == nil || c.acct.hasRoom(c, MessageOverhead+1))) {
		r |= Writable
	}
	if c.closed || (c.hungUp && q == 0) {
		r |= HangUp
	}
	return r
}
