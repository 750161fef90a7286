package natschan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/ipcfs/ipcfs/channels"
)

// Queue is one channel's message queue as this daemon serves it: sends
// are publishes to the channel's stream, receives are pulls through its
// shared consumer. Every operation takes a network round trip, so
// TrySend and TryReceive always defer (channels.ErrDeferred) and Send and
// Receive complete on other goroutines.
//
// Stats: messages, bytes (data only) and sent (the stream's last
// sequence) are the channel's, for every daemon; received is sent minus
// queued minus flushed, so also the channel's, as is hungup. readers,
// writers, blocked_readers, blocked_writers and truncated are this
// daemon's.
type Queue struct {
	ns      *Namespace
	id      string
	stream  string
	subject string
	events  string

	mu          sync.Mutex
	rec         Record                // GUARDED_BY(mu); the channel's record, as last applied
	state       jetstream.StreamState // GUARDED_BY(mu); the stream's, as last read (and as this daemon's own publishes moved it)
	stateAt     time.Time             // GUARDED_BY(mu); when state was read; zero: never
	refreshing  bool                  // GUARDED_BY(mu); a refresh is in flight
	again       bool                  // GUARDED_BY(mu); and another is wanted after it
	receivers   []*op                 // GUARDED_BY(mu); blocked receives, oldest first
	asked       int                   // GUARDED_BY(mu); messages the blocking pulls out may still bring
	fetchers    int                   // GUARDED_BY(mu); blocking pulls out (at most maxFetchers)
	pulls       map[string]*pull      // GUARDED_BY(mu); pulls not yet over, by ID (the last token of their reply subject)
	inbox       string                // the prefix of the pulls' reply subjects
	closing     chan struct{}         // closed by Close
	roomWait    []*op                 // GUARDED_BY(mu); sends waiting for room or for the connection, oldest first
	armed       []*pollWatch          // GUARDED_BY(mu)
	inHand      map[*byte]*nats.Msg   // GUARDED_BY(mu); received, not yet delivered
	acking      int                   // GUARDED_BY(mu); acknowledgements of delivered messages not yet confirmed
	acked       uint64                // GUARDED_BY(mu); acknowledgements confirmed, ever
	ackedAtRead uint64                // GUARDED_BY(mu); acked when state was read
	evSub       *nats.Subscription    // GUARDED_BY(mu); while something waits for changes
	stopTick    chan struct{}         // GUARDED_BY(mu); with evSub: closed to stop the refresh now and then (in case an event was missed)
	closed      bool                  // GUARDED_BY(mu)

	readers, writers int64  // GUARDED_BY(mu)
	truncated        uint64 // GUARDED_BY(mu)
}

var _ channels.Queue = (*Queue)(nil)

// Queue returns the queue of the channel rec describes (rec as applied
// by Watch, Create or Update). Call Apply with later records of it.
func (n *Namespace) Queue(rec Record) *Queue {
	return &Queue{
		ns:      n,
		id:      rec.ID,
		stream:  n.streamName(rec.ID),
		subject: n.subject(rec.ID),
		events:  n.events(rec.ID),
		rec:     rec,
		inHand:  make(map[*byte]*nats.Msg),
		pulls:   make(map[string]*pull),
		inbox:   n.nc.NewInbox(),
		closing: make(chan struct{}),
	}
}

// ID is the channel's ID.
func (q *Queue) ID() string { return q.id }

// Stream is the name of the channel's stream.
func (q *Queue) Stream() string { return q.stream }

// Apply takes a newer record of the channel (a hangup, new limits, a
// flush, made here or by another daemon).
func (q *Queue) Apply(rec Record) {
	q.mu.Lock()
	old := q.rec
	q.rec = rec
	q.mu.Unlock()
	if rec.HungUp != old.HungUp || rec.Limits != old.Limits || rec.Flushed != old.Flushed {
		q.refresh()
	}
}

// op is one Send or Receive.
type op struct {
	q     *Queue
	done  func(msg []byte, err error)
	state opState // GUARDED_BY(q.mu)
	wake  chan struct{}
}

type opState uint8

const (
	opNew     opState = iota
	opWaiting         // in q.receivers or q.roomWait: Cancel withdraws it
	opBusy            // a publish is in flight: it completes when that returns
	opDone            // completed or canceled
)

// NewOp returns an operation for one Send or Receive.
func (q *Queue) NewOp(done func(msg []byte, err error)) channels.Op {
	return &op{q: q, done: done, wake: make(chan struct{}, 1)}
}

// Cancel withdraws o unless a publish of it is in flight or it completed.
func (o *op) Cancel() bool {
	q := o.q
	q.mu.Lock()
	defer q.mu.Unlock()
	switch o.state {
	case opNew:
		o.state = opDone
		return true
	case opWaiting:
		o.state = opDone
		q.receivers = remove(q.receivers, o)
		if len(q.roomWait) > 0 && q.roomWait[0] == o {
			q.roomWait = q.roomWait[1:]
			q.wakeRoomLocked() // the next in line may fit
		} else {
			q.roomWait = remove(q.roomWait, o)
		}
		q.wantEventsLocked()
		return true
	}
	return false
}

func remove(l []*op, o *op) []*op {
	for i, x := range l {
		if x == o {
			return append(l[:i], l[i+1:]...)
		}
	}
	return l
}

// finish completes o with msg or err unless it was canceled; it reports
// whether it did. Requires q.mu; the caller calls o.done after unlocking.
func (o *op) finishLocked() bool {
	if o.state == opDone {
		return false
	}
	o.state = opDone
	return true
}

// TrySend defers: a publish takes a round trip.
func (q *Queue) TrySend(msg []byte) error {
	if err := q.sendRefusal(msg); err != nil {
		return err
	}
	return channels.ErrDeferred
}

// sendRefusal is why msg cannot be sent at all, or nil.
func (q *Queue) sendRefusal(msg []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case len(msg) == 0:
		return channels.ErrEmptyMessage
	case q.closed:
		return channels.ErrClosed
	case q.rec.HungUp:
		return channels.ErrHungUp
	}
	return nil
}

// TryReceive defers, but for a closed queue.
func (q *Queue) TryReceive() ([]byte, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, io.EOF
	}
	return nil, channels.ErrDeferred
}

// Send publishes msg to the stream, with a message ID of its own so that
// retries after a lost acknowledgement are stored once, and completes op
// when the stream has stored it. When the stream is full it waits for
// room (if wait; else fails with ErrWouldBlock) and retries; while NATS
// does not answer it retries for the configured timeout, then fails with
// ErrUnavailable (if !wait and nothing was sent yet: ErrWouldBlock at
// once; see publish).
func (q *Queue) Send(o channels.Op, msg []byte, wait bool) {
	p := o.(*op)
	q.mu.Lock()
	if p.state != opNew {
		q.mu.Unlock()
		return // canceled before it started
	}
	p.state = opBusy
	q.mu.Unlock()
	go q.publish(p, msg, wait)
}

func (q *Queue) publish(p *op, msg []byte, wait bool) {
	m := &nats.Msg{Subject: q.subject, Data: msg}
	id := nuid.Next()
	deadline := time.Now().Add(q.ns.cfg.Timeout)
	// Once an attempt went unanswered, the stream may hold the message:
	// from then on this send is never canceled or failed with
	// ErrWouldBlock (a writer would write it again, under a new ID, and
	// it would be stored twice); it retries with the same ID until it is
	// answered, or fails with ErrUnavailable at the deadline.
	sent := false
	pause := func(d time.Duration) bool {
		if sent {
			time.Sleep(d)
			return true
		}
		return q.waitRoom(p, d)
	}
	for {
		if err := q.sendRefusal(msg); err != nil {
			q.sendDone(p, err)
			return
		}
		if !q.ns.Connected() {
			if q.ns.givenUp() {
				q.sendDone(p, fmt.Errorf("send: no NATS connection for %v: %w", q.ns.cfg.Timeout, ErrUnavailable))
				return
			}
			if !wait && !sent {
				// Poll says not writable until the connection is back, or
				// has been down for the timeout: then this fails at once.
				q.sendDone(p, fmt.Errorf("NATS disconnected: %w", channels.ErrWouldBlock))
				return
			}
			if time.Now().After(deadline) {
				q.sendDone(p, fmt.Errorf("send: no NATS connection for %v: %w", q.ns.cfg.Timeout, ErrUnavailable))
				return
			}
			if !pause(50 * time.Millisecond) {
				return // canceled
			}
			continue
		}
		var ack *jetstream.PubAck
		err := errNoRoom
		if sent || q.hasRoom(len(msg)) { // after an unanswered attempt the stream decides (a duplicate is acknowledged)
			// One attempt waits for its acknowledgement at most
			// publishWait: one sent to a server that then died is retried
			// (same message ID) through the one the client reconnects to.
			attempt := time.Now().Add(publishWait)
			if deadline.Before(attempt) {
				attempt = deadline
			}
			ctx, cancel := context.WithDeadline(context.Background(), attempt)
			ack, err = q.ns.js.PublishMsg(ctx, m, jetstream.WithMsgID(id))
			cancel()
		}
		switch {
		case err == nil:
			q.mu.Lock()
			if ack.Sequence > q.state.LastSeq {
				q.state.LastSeq = ack.Sequence
				q.state.Msgs++
				q.state.Bytes += uint64(len(msg)) + q.overhead()
			}
			q.mu.Unlock()
			q.announce()
			q.sendDone(p, nil)
			return
		case err == errNoRoom || IsFull(err):
			// (After an unanswered attempt, a full stream means that one
			// was not stored: the stream checks message IDs first.)
			if !wait {
				q.sendDone(p, fmt.Errorf("stream full: %w", channels.ErrWouldBlock))
				return
			}
			sent = false
			if !q.waitRoom(p, time.Second) {
				return
			}
			deadline = time.Now().Add(q.ns.cfg.Timeout) // waiting for room is not NATS's fault
		case errors.Is(err, jetstream.ErrStreamNotFound) || isNotFound(err):
			q.sendDone(p, fmt.Errorf("send: the channel's stream is gone: %w", channels.ErrClosed))
			return
		case isUnavailable(err):
			sent = sent || !errors.Is(err, nats.ErrNoResponders) // no responders: nobody got it
			if !wait && !sent {
				q.sendDone(p, fmt.Errorf("NATS unavailable (%v): %w", err, channels.ErrWouldBlock))
				return
			}
			if time.Now().After(deadline) {
				q.sendDone(p, fmt.Errorf("send: %w: %w", ErrUnavailable, err))
				return
			}
			if !pause(50 * time.Millisecond) {
				return
			}
		default:
			q.sendDone(p, fmt.Errorf("send: %w", err))
			return
		}
	}
}

// publishWait bounds one publish attempt (see publish).
const publishWait = 2 * time.Second

// errNoRoom: the queue holds queue-bytes already (hasRoom).
var errNoRoom = errors.New("natschan: no room")

// hasRoom reports whether a message of n bytes fits in queue-bytes: the
// queue is empty, or its bytes and n fit. The stream's own byte limit is
// queue-bytes plus one message (limitSlack), so the exact limit is
// checked here, against the stream's state as this daemon last knew it
// and, when that says no, as it is now. Writers on other daemons at the
// same instant can so overshoot queue-bytes by a message each, never the
// stream's limit.
func (q *Queue) hasRoom(n int) bool {
	if q.fits(n) {
		return true
	}
	q.updateState(stateWait)
	return q.fits(n)
}

func (q *Queue) fits(n int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.state.Msgs == 0 || q.dataBytesLocked()+int64(n) <= q.rec.Limits.MaxBytes
}

// msgHeaderLen is the length of the header every publish carries: the
// version line, Nats-Msg-Id (a NUID: 22 bytes) and the blank line.
const msgHeaderLen = len("NATS/1.0\r\nNats-Msg-Id: \r\n\r\n") + 22

// overhead is what JetStream's file storage counts in a stream's bytes
// for each message besides its data: the record's length, sequence,
// time, subject and header lengths (22 + 4), the subject, the header, and
// a hash (8) (nats-server's fileStoreMsgSize).
func (q *Queue) overhead() uint64 { return 22 + uint64(len(q.subject)) + 4 + uint64(msgHeaderLen) + 8 }

// dataBytesLocked is the bytes of the queued messages' data, from the
// stream's byte count. Requires q.mu.
func (q *Queue) dataBytesLocked() int64 {
	return max(int64(q.state.Bytes)-int64(q.state.Msgs*q.overhead()), 0)
}

// IsFull reports whether a publish failed on the stream's limits (discard
// new): JetStream's "maximum messages/bytes exceeded".
func IsFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && strings.Contains(apiErr.Description, "maximum") &&
		(strings.Contains(apiErr.Description, "messages") || strings.Contains(apiErr.Description, "bytes"))
}

func isNotFound(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamNotFound
}

// waitRoom parks a send (cancelable) until the stream may have room, for
// at most d; it reports false if the send was canceled meanwhile.
func (q *Queue) waitRoom(p *op, d time.Duration) bool {
	q.mu.Lock()
	if p.state == opDone {
		q.mu.Unlock()
		return false
	}
	p.state = opWaiting
	q.roomWait = append(q.roomWait, p)
	q.wantEventsLocked()
	q.mu.Unlock()

	t := time.NewTimer(d)
	select {
	case <-p.wake:
	case <-t.C:
	}
	t.Stop()

	q.mu.Lock()
	defer q.mu.Unlock()
	if p.state == opDone {
		return false
	}
	q.roomWait = remove(q.roomWait, p)
	p.state = opBusy
	q.wantEventsLocked()
	return true
}

// wakeRoomLocked lets the oldest waiting send retry. Requires q.mu.
func (q *Queue) wakeRoomLocked() {
	if len(q.roomWait) > 0 {
		select {
		case q.roomWait[0].wake <- struct{}{}:
		default:
		}
	}
}

// sendDone completes a send.
func (q *Queue) sendDone(p *op, err error) {
	q.mu.Lock()
	ok := p.finishLocked()
	if err == nil {
		q.wakeRoomLocked() // there may be room for the next too
	}
	q.mu.Unlock()
	if ok {
		p.done(nil, err)
	}
}

// Receive takes the next message for op: it waits in line with this
// daemon's other blocked receives (and, through the consumer, with every
// other daemon's) if wait, else asks once for a message there now.
func (q *Queue) Receive(o channels.Op, wait bool) {
	p := o.(*op)
	q.mu.Lock()
	if p.state != opNew {
		q.mu.Unlock()
		return
	}
	if q.closed {
		p.state = opDone
		q.mu.Unlock()
		p.done(nil, io.EOF)
		return
	}
	if !wait {
		p.state = opBusy
		q.mu.Unlock()
		go q.receiveNow(p)
		return
	}
	p.state = opWaiting
	q.receivers = append(q.receivers, p)
	hungUp := q.rec.HungUp
	q.askLocked()
	q.wantEventsLocked()
	q.mu.Unlock()
	if hungUp {
		q.refresh() // end of file if drained
	}
}

// complete finishes p unless canceled.
func (q *Queue) complete(p *op, msg []byte, err error) {
	q.mu.Lock()
	ok := p.finishLocked()
	if !ok && msg != nil {
		m := q.inHand[&msg[0]]
		delete(q.inHand, &msg[0])
		q.mu.Unlock()
		if m != nil {
			m.Nak()
		}
		return
	}
	q.mu.Unlock()
	if ok {
		p.done(msg, err)
	}
}

// drainedLocked reports whether the stream held no message when last
// read. Requires q.mu.
func (q *Queue) drainedLocked() bool {
	// The state's own count, not queuedLocked: end of file must never
	// come early (the refresh after the last acknowledgement brings it).
	return !q.stateAt.IsZero() && q.state.Msgs == 0
}

// Delivered acknowledges msg: its reader's READ was answered.
func (q *Queue) Delivered(msg []byte) {
	if len(msg) == 0 {
		return
	}
	q.mu.Lock()
	m := q.inHand[&msg[0]]
	delete(q.inHand, &msg[0])
	if m == nil {
		q.mu.Unlock()
		return
	}
	q.acking++ // at once: held or being acknowledged, it is never counted queued
	q.mu.Unlock()
	// Confirmed (a double ack), on a goroutine of its own so that the
	// pull's next message is not held up; Stats waits for it, so that a
	// status read after a read(2) counts the message as received.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), q.ns.cfg.Timeout)
		err := m.AckSync(nats.Context(ctx)) // a double ack
		cancel()
		if err != nil {
			q.ns.log.Warn("acknowledging a delivered message failed; NATS will deliver it again", "stream", q.stream, "err", err)
		}
		q.mu.Lock()
		q.acking--
		if err == nil {
			q.acked++
		}
		q.mu.Unlock()
		q.announce()
	}()
}

// ackSettle is how long Stats waits for acknowledgements in flight.
const ackSettle = time.Second

// Done is a no-op: received messages are not charged to the mount's
// memory budget (the queue's memory is the NATS servers').
func (q *Queue) Done([]byte) {}

// announce tells every daemon watching the channel that its stream
// changed.
func (q *Queue) announce() {
	if err := q.ns.nc.Publish(q.events, nil); err != nil {
		q.ns.log.Debug("announcing a change failed", "stream", q.stream, "err", err)
	}
}

// pollWatch is a poller's interest in a Queue.
type pollWatch struct {
	q        *Queue
	wake     func()
	interest channels.Readiness // GUARDED_BY(q.mu)
	stopped  bool               // GUARDED_BY(q.mu)
}

// NewPollWatch returns an unarmed watch calling wake.
func (q *Queue) NewPollWatch(wake func()) channels.PollWatch {
	return &pollWatch{q: q, wake: wake}
}

// Stop disarms the watch for good.
func (w *pollWatch) Stop() {
	q := w.q
	q.mu.Lock()
	defer q.mu.Unlock()
	w.stopped = true
	if w.interest != 0 {
		w.interest = 0
		for i, a := range q.armed {
			if a == w {
				q.armed = append(q.armed[:i], q.armed[i+1:]...)
				break
			}
		}
	}
	q.wantEventsLocked()
}

// Poll reports the readiness known from the stream's last state and arms
// w for changes in interest (see channels.Channel.Poll). Arming a watch
// starts listening for changes; the first listen reads the state afresh,
// and wakes w if it differs from what this call reported.
func (q *Queue) Poll(w channels.PollWatch, interest channels.Readiness) channels.Readiness {
	pw, _ := w.(*pollWatch)
	q.mu.Lock()
	if pw != nil && !pw.stopped && interest != 0 {
		if pw.interest == 0 {
			q.armed = append(q.armed, pw)
		}
		pw.interest |= interest
	}
	// While listening, announcements keep the state fresh; otherwise it
	// is read now (a round trip, bounded: poll must answer).
	fresh := q.evSub != nil && time.Since(q.stateAt) < time.Second
	q.wantEventsLocked()
	q.mu.Unlock()
	if !fresh && q.ns.Connected() {
		q.updateState(pollStateWait)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.readinessLocked()
}

// pollStateWait bounds how long a poll waits for the stream's state.
const pollStateWait = 250 * time.Millisecond

// readinessLocked is the readiness from the last state. Requires q.mu.
func (q *Queue) readinessLocked() channels.Readiness {
	var r channels.Readiness
	if q.closed {
		return channels.Readable | channels.Writable | channels.HangUp
	}
	s, l := q.state, q.rec.Limits
	if q.queuedLocked() > 0 {
		r |= channels.Readable
	}
	switch {
	case q.rec.HungUp:
		r |= channels.Writable // a send fails at once (EPIPE)
		if q.drainedLocked() {
			r |= channels.Readable | channels.HangUp
		}
	case q.ns.givenUp():
		r |= channels.Writable // a send fails at once (EIO)
	case !q.ns.Connected():
		// A send would wait for the connection. (The ticker of an armed
		// watch refreshes this: when the connection is back or given up,
		// the watch wakes.)
	case s.Msgs == 0 || int64(s.Msgs) < l.MaxMsgs && q.dataBytesLocked() < l.MaxBytes:
		r |= channels.Writable
	}
	return r
}

// wantEventsLocked listens for the channel's changes while something
// local waits for one (an armed watch, a send waiting for room, a receive
// waiting for end of file), and stops when nothing does. Requires q.mu.
func (q *Queue) wantEventsLocked() {
	want := !q.closed && (len(q.armed) > 0 || len(q.roomWait) > 0 || q.rec.HungUp && len(q.receivers) > 0)
	switch {
	case want && q.evSub == nil:
		sub, err := q.ns.nc.Subscribe(q.events, func(*nats.Msg) { q.refresh() })
		if err != nil {
			q.ns.log.Debug("listening for a channel's changes failed", "stream", q.stream, "err", err)
			return
		}
		q.evSub = sub
		q.stopTick = make(chan struct{})
		go q.tick(q.stopTick)
	case !want && q.evSub != nil:
		q.evSub.Unsubscribe()
		q.evSub = nil
		close(q.stopTick)
		q.stopTick = nil
	}
}

// tick refreshes the state every second until stop is closed.
func (q *Queue) tick(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			q.refresh()
		}
	}
}

// refresh reads the stream's state (one at a time: a request during one
// in flight makes one more after it) and acts on it: watches whose
// readiness came are woken, waiting sends retry, and blocked receives of
// a hung-up, drained channel get end of file.
func (q *Queue) refresh() {
	q.mu.Lock()
	if q.refreshing || q.closed {
		q.again = true
		q.mu.Unlock()
		return
	}
	q.refreshing = true
	q.mu.Unlock()
	go q.refreshLoop()
}

func (q *Queue) refreshLoop() {
	for {
		q.updateState(stateWait)
		q.mu.Lock()
		r := q.readinessLocked()
		// Every ready watch is woken, not only those whose readiness just
		// came: a refresh follows a change (a message published, one
		// taken), and edge-triggered pollers (every Go program) wait for
		// the next change after a read that found nothing.
		var wakes []*pollWatch
		kept := q.armed[:0]
		for _, w := range q.armed {
			if w.interest&r != 0 {
				w.interest = 0
				wakes = append(wakes, w)
			} else {
				kept = append(kept, w)
			}
		}
		clear(q.armed[len(kept):])
		q.armed = kept
		if r&channels.Writable != 0 {
			q.wakeRoomLocked()
		}
		var eof []*op
		if q.rec.HungUp && q.drainedLocked() {
			for _, p := range q.receivers {
				if p.finishLocked() {
					eof = append(eof, p)
				}
			}
			q.receivers = nil
		}
		q.wantEventsLocked()
		again := q.again
		q.again = false
		if !again {
			q.refreshing = false
		}
		q.mu.Unlock()
		for _, w := range wakes {
			w.wake()
		}
		for _, p := range eof {
			p.done(nil, io.EOF)
		}
		if !again {
			return
		}
	}
}

// stateWait bounds a read of the stream's state.
const stateWait = 2 * time.Second

// updateState reads the stream's state from NATS, waiting at most d (and
// the configured timeout); on failure the last known stays.
func (q *Queue) updateState(d time.Duration) error {
	q.mu.Lock()
	acked := q.acked
	q.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), min(d, q.ns.cfg.Timeout))
	defer cancel()
	s, err := q.ns.js.Stream(ctx, q.stream)
	if err != nil {
		return err
	}
	q.mu.Lock()
	q.state, q.stateAt, q.ackedAtRead = s.CachedInfo().State, time.Now(), acked
	q.mu.Unlock()
	return nil
}

// queuedLocked is the number of messages in the stream that no reader has
// taken, as far as this daemon knows: the state's count less the
// messages this daemon holds (handed to a reader, its READ being
// answered) and its acknowledgements that the state may not show yet (in
// flight, or confirmed after the state was read). Without the held ones,
// a poll right after a read(2) returned saw the message just read as
// still queued and reported POLLIN. It may be low for a moment; the
// refresh that follows each acknowledgement corrects it, and wakes the
// pollers. Requires q.mu.
func (q *Queue) queuedLocked() uint64 {
	pending := uint64(q.acking+len(q.inHand)) + q.acked - q.ackedAtRead
	return q.state.Msgs - min(pending, q.state.Msgs)
}

// SentSeen is the stream's last sequence as this daemon last read it (the
// messages ever sent on the channel, from any host), reading it again in
// the background when it is a second old: msg's size grows with it, so
// that tail -f, which watches the size, sees other hosts' messages.
func (q *Queue) SentSeen() uint64 {
	q.mu.Lock()
	seq, stale := q.state.LastSeq, time.Since(q.stateAt) > time.Second
	q.mu.Unlock()
	if stale {
		q.refresh()
	}
	return seq
}

// Opened counts an open handle.
func (q *Queue) Opened(read, write bool) {
	q.mu.Lock()
	q.readers += b2i(read)
	q.writers += b2i(write)
	q.mu.Unlock()
}

// Released undoes Opened.
func (q *Queue) Released(read, write, truncated bool) {
	q.mu.Lock()
	q.readers -= b2i(read)
	q.writers -= b2i(write)
	if truncated {
		q.truncated++
	}
	q.mu.Unlock()
}

// CountTruncated counts one message whose remainder was discarded.
func (q *Queue) CountTruncated() {
	q.mu.Lock()
	q.truncated++
	q.mu.Unlock()
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Hangup hangs the channel up for every daemon (its record).
func (q *Queue) Hangup() error { return q.setHungUp(true) }

// Reopen undoes Hangup for every daemon.
func (q *Queue) Reopen() error { return q.setHungUp(false) }

func (q *Queue) setHungUp(h bool) error {
	rec, err := q.ns.Update(q.name(), func(r *Record) error {
		if r.ID != q.id {
			return fmt.Errorf("the channel was replaced: %w", ErrNotFound)
		}
		r.HungUp = h
		return nil
	})
	if err != nil {
		return err
	}
	q.Apply(rec)
	q.mu.Lock()
	var fail []*op
	if h {
		fail = append(fail, q.roomWait...)
		for _, p := range q.roomWait {
			p.state = opDone
		}
		q.roomWait = nil
	}
	q.mu.Unlock()
	for _, p := range fail {
		p.done(nil, channels.ErrHungUp)
	}
	q.announce()
	return nil
}

func (q *Queue) name() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.rec.Name
}

// Flush purges the stream (for every daemon) and counts what it discarded
// in the record.
func (q *Queue) Flush() (int, error) {
	ctx, cancel := q.ns.ctx()
	defer cancel()
	s, err := q.ns.js.Stream(ctx, q.stream)
	if err != nil {
		return 0, fmt.Errorf("flush: %w", q.ns.classify(err))
	}
	before := s.CachedInfo().State.Msgs
	if err := s.Purge(ctx); err != nil {
		return 0, fmt.Errorf("flush: %w", q.ns.classify(err))
	}
	rec, err := q.ns.Update(q.name(), func(r *Record) error { r.Flushed += before; return nil })
	if err == nil {
		q.Apply(rec)
	}
	q.announce()
	return int(before), err
}

// SetLimits sets the channel's capacity for every daemon.
func (q *Queue) SetLimits(l channels.Limits) error {
	if l.MaxBytes < 1 || l.MaxMsgs < 1 {
		return fmt.Errorf("queue-bytes %d, queue-msgs %d: %w", l.MaxBytes, l.MaxMsgs, channels.ErrBadLimits)
	}
	rec, err := q.ns.SetLimits(q.name(), l)
	if err != nil {
		return err
	}
	q.Apply(rec)
	q.announce()
	return nil
}

// Close ends this daemon's side of the queue (the channel was removed, or
// the daemon stops): blocked receives get end of file, waiting sends
// ErrClosed. Queued messages stay in the stream (the channel's, not this
// daemon's): it returns 0.
func (q *Queue) Close() int {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0
	}
	q.closed = true
	close(q.closing)
	var eof, fail []*op
	for _, p := range q.receivers {
		if p.finishLocked() {
			eof = append(eof, p)
		}
	}
	for _, p := range q.roomWait {
		if p.finishLocked() {
			fail = append(fail, p)
		}
	}
	q.receivers, q.roomWait = nil, nil
	wakes := q.armed
	q.armed = nil
	q.wantEventsLocked()
	stopPulls := q.stopPullsLocked()
	q.mu.Unlock()
	stopPulls()
	for _, p := range eof {
		p.done(nil, io.EOF)
	}
	for _, p := range fail {
		p.done(nil, channels.ErrClosed)
	}
	for _, w := range wakes {
		w.wake()
	}
	return 0
}

// Stats reads the stream's state afresh (for at most a second; else the
// last known), once this daemon's acknowledgements in flight are
// confirmed (for at most a second), and combines it with this daemon's
// counters.
func (q *Queue) Stats() channels.Stats {
	for deadline := time.Now().Add(ackSettle); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		q.mu.Lock()
		n := q.acking + len(q.inHand) // in hand: being answered, its ack to come
		q.mu.Unlock()
		if n == 0 {
			break
		}
	}
	q.updateState(stateWait)
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.state
	received := int64(s.LastSeq) - int64(s.Msgs) - int64(q.rec.Flushed)
	return channels.Stats{
		Limits:         q.rec.Limits,
		Messages:       int64(s.Msgs),
		Bytes:          q.dataBytesLocked(),
		Readers:        q.readers,
		Writers:        q.writers,
		BlockedReaders: int64(len(q.receivers)),
		BlockedWriters: int64(len(q.roomWait)),
		Sent:           s.LastSeq,
		Received:       uint64(max(received, 0)),
		Truncated:      q.truncated,
		HungUp:         q.rec.HungUp,
		Closed:         q.closed,
	}
}
