package natschan

import (
	"encoding/json"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/ipcfs/ipcfs/channels"
)

// Pulling. A queue asks its channel's consumer for messages with pull
// requests it publishes itself, each with a reply subject and a
// subscription of its own (JetStream delivers a pulled message under its
// stream subject, so only the subscription tells which pull it answers).
// A pull's goroutine reads its subscription until the server ends the
// pull: its batch came, or a status (404 no messages, 408 expired, 409
// and others). If the server's answer is late, the pull is counted as
// over (its receives are asked for again, a no-wait receive finds
// nothing) but its subscription stays until the ack wait has passed: a
// message that comes then still goes to a blocked receive, or is given
// back (NAK) at once.
//
// nats.go's Fetch and FetchNoWait are not used because they drop
// messages: each ends its subscription on a client-side timer (1 s after
// a no-wait request's answer did not come, 2 missed heartbeats, the
// expiry plus 1 s), and a message that arrives at that moment or later
// is thrown away unacknowledged. The server then redelivers it only
// after the ack wait (30 s by default), after later messages of the same
// writer: a reader on a loaded machine got w3-000653 after w3-000996.

// pull is one pull request out.
type pull struct {
	left   int                // GUARDED_BY(q.mu); messages it may still bring
	nowait bool               // a no-wait pull of one, for receiveNow; else a blocking pull for q.receivers
	now    *op                // GUARDED_BY(q.mu); with nowait: the receive, until completed
	sub    *nats.Subscription // GUARDED_BY(q.mu); nil until subscribed
}

// maxFetchers bounds the blocking pulls one queue has out at once, and
// maxBatch the messages one asks for: 4,000 blocked readers make two
// pulls, not 4,000.
const (
	maxFetchers = 2
	maxBatch    = 256
)

// pullExpires is how long a blocking pull waits on the server; a daemon
// that dies leaves it there that long at most. pullGrace is how long
// after that the daemon waits for the server's end of the pull before it
// counts the pull as over (the connection dropped, or the server is slow)
// and asks again: a late message still goes to the oldest blocked
// receive.
const (
	pullExpires = 5 * time.Second
	pullGrace   = 2 * time.Second
)

// answerWait is how long a pull waits for the server's answer before it
// counts as over. A no-wait pull waits up to the operation timeout
// (--nats-timeout): its message, had it come later, could only be given
// back, and would reach a reader after the writer's later messages.
func (q *Queue) answerWait(req pullRequest) time.Duration {
	if req.NoWait {
		return q.ns.cfg.Timeout
	}
	return req.Expires + pullGrace
}

// pullRequest is the body of a pull request
// ($JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>).
type pullRequest struct {
	Batch   int           `json:"batch"`
	Expires time.Duration `json:"expires,omitempty"`
	NoWait  bool          `json:"no_wait,omitempty"`
}

// askLocked starts a blocking pull for the blocked receives beyond those
// already asked for, unless maxFetchers pulls are out: when one ends it
// asks again for every receive not yet asked for. Requires q.mu.
func (q *Queue) askLocked() {
	if q.closed || q.fetchers >= maxFetchers {
		return
	}
	if n := q.unaskedLocked(); n > 0 {
		q.asked += n
		q.fetchers++
		q.startPullLocked(&pull{left: n}, pullRequest{Batch: n, Expires: pullExpires})
	}
}

// unaskedLocked is how many more messages a pull may ask for now.
// Requires q.mu.
func (q *Queue) unaskedLocked() int {
	return min(len(q.receivers)-q.asked, maxBatch)
}

// receiveNow is a receive that does not wait: one message if the
// consumer has one to give now (a no-wait pull of one). Disconnected, it
// finds nothing at once.
func (q *Queue) receiveNow(p *op) {
	q.mu.Lock()
	if q.closed || !q.ns.nc.IsConnected() {
		q.foundNothingUnlock(p)
		return
	}
	q.startPullLocked(&pull{left: 1, nowait: true, now: p}, pullRequest{Batch: 1, NoWait: true})
	q.mu.Unlock()
}

// foundNothingUnlock completes the no-wait receive p, which found no
// message: EAGAIN, or end of file if the channel is closed, or hung up
// and drained. Requires q.mu, and unlocks it.
func (q *Queue) foundNothingUnlock(p *op) {
	p.state = opWaiting // so that finishLocked completes it
	err := channels.ErrWouldBlock
	if q.closed || q.rec.HungUp && q.drainedLocked() {
		err = io.EOF
	}
	q.mu.Unlock()
	q.complete(p, nil, err)
}

// startPullLocked registers pl and runs it on a goroutine of its own.
// Requires q.mu.
func (q *Queue) startPullLocked(pl *pull, req pullRequest) {
	id := nuid.Next()
	q.pulls[id] = pl
	go q.runPull(id, pl, req)
}

// runPull subscribes to pull id's reply subject, sends its request and
// hands on what comes, until the server ends the pull or, if its answer
// is late, the ack wait has passed, or Close.
func (q *Queue) runPull(id string, pl *pull, req pullRequest) {
	// Room for the whole batch and the status that ends the pull (the
	// server sends nothing else: no heartbeats are asked for), so that
	// nats.go never finds the channel full and drops a message. Not
	// SubscribeSync: it allocates a channel of 65,536 entries per pull,
	// which halved the throughput.
	ch := make(chan *nats.Msg, req.Batch+4)
	sub, err := q.ns.nc.ChanSubscribe(q.inbox+"."+id, ch)
	if err == nil {
		q.mu.Lock()
		if q.closed { // Close has ended the pull: nothing may be asked for now
			q.mu.Unlock()
			sub.Unsubscribe()
			return
		}
		pl.sub = sub
		q.mu.Unlock()
		var body []byte
		if body, err = json.Marshal(req); err == nil {
			err = q.ns.nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT."+q.stream+"."+consumerName, sub.Subject, body)
		}
	}
	if err != nil {
		if sub != nil {
			sub.Unsubscribe()
		}
		q.ns.log.Debug("a pull from a channel's stream failed; retrying", "stream", q.stream, "err", err)
		q.endPull(id, true)
		return
	}
	defer sub.Unsubscribe()
	timer := time.NewTimer(q.answerWait(req))
	defer timer.Stop()
	over := false // counted as over: the answer was late
	for {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-q.closing: // Close ended the pull; what came is given back
			for {
				select {
				case m := <-ch:
					if len(m.Data) > 0 {
						q.arrived(m)
					}
				default:
					return
				}
			}
		case <-timer.C:
			if over { // the ack wait has passed: anything missed is redelivered
				return
			}
			over = true
			q.endPull(id, true)
			timer.Reset(q.ns.cfg.AckWait)
			continue
		}
		// A status comes from the server itself: no data, and no ack
		// subject, which every pulled message has.
		if status := m.Header.Get("Status"); status != "" && len(m.Data) == 0 && m.Reply == "" {
			if status == "100" { // a heartbeat or flow control, not asked for
				continue
			}
			if !over {
				q.endPull(id, status != "404" && status != "408")
			}
			return
		}
		if q.pulled(id, m) { // its batch came: the server ends it without a word
			q.endPull(id, false)
			return
		}
	}
}

// endPull counts pull id as over if it was not yet: a no-wait receive
// finds nothing (or end of file), a blocking pull's unanswered receives
// are asked for again (after a pause if it failed: the connection may
// come back).
func (q *Queue) endPull(id string, failed bool) {
	q.mu.Lock()
	pl := q.pulls[id]
	if pl == nil {
		q.mu.Unlock()
		return
	}
	delete(q.pulls, id)
	if pl.nowait {
		p := pl.now
		pl.now = nil
		if p == nil { // its message came
			q.mu.Unlock()
			return
		}
		q.foundNothingUnlock(p)
		return
	}
	q.asked -= pl.left
	q.fetchers--
	hungUp := q.rec.HungUp
	if failed {
		q.mu.Unlock()
		time.AfterFunc(100*time.Millisecond, func() {
			q.mu.Lock()
			q.askLocked()
			q.mu.Unlock()
		})
	} else {
		q.askLocked()
		q.mu.Unlock()
	}
	if hungUp {
		q.refresh() // end of file if drained
	}
}

// pulled hands on message m of pull id: to its no-wait receive, else to
// the oldest blocked receive (or back). It reports whether that was the
// last the pull asked for.
func (q *Queue) pulled(id string, m *nats.Msg) bool {
	q.mu.Lock()
	pl := q.pulls[id]
	var now *op
	last := false
	if pl != nil { // not counted as over yet
		pl.left--
		last = pl.left == 0
		if pl.nowait {
			now, pl.now = pl.now, nil
		} else {
			q.asked--
		}
	}
	if now == nil {
		q.mu.Unlock()
		q.arrived(m)
		return last
	}
	now.state = opWaiting // so that finishLocked completes it
	if len(m.Data) == 0 {
		q.mu.Unlock()
		m.Ack() // not ipcfs's: it would read as end of file
		q.complete(now, nil, channels.ErrWouldBlock)
		return last
	}
	q.inHand[&m.Data[0]] = m
	q.mu.Unlock()
	q.complete(now, m.Data, nil)
	return last
}

// arrived hands a pulled message to the oldest blocked receive, or gives
// it back.
func (q *Queue) arrived(m *nats.Msg) {
	data := m.Data
	if len(data) == 0 {
		m.Ack() // not ipcfs's: it would read as end of file
		return
	}
	q.mu.Lock()
	for len(q.receivers) > 0 {
		p := q.receivers[0]
		q.receivers = q.receivers[1:]
		if p.finishLocked() {
			q.inHand[&data[0]] = m
			q.wantEventsLocked()
			q.mu.Unlock()
			p.done(data, nil)
			return
		}
	}
	q.mu.Unlock()
	m.Nak()
}

// stopPullsLocked ends every pull for Close: no-wait receives get end of
// file, and the subscriptions end (a message on its way to one is
// redelivered after the ack wait; the channel is being removed, or the
// daemon stops). Requires q.mu; returns what to do after unlocking.
func (q *Queue) stopPullsLocked() func() {
	var eof []*op
	var subs []*nats.Subscription
	for id, pl := range q.pulls {
		if p := pl.now; p != nil {
			pl.now = nil
			p.state = opWaiting
			if p.finishLocked() {
				eof = append(eof, p)
			}
		}
		if pl.sub != nil {
			subs = append(subs, pl.sub)
		}
		delete(q.pulls, id)
	}
	q.asked, q.fetchers = 0, 0
	return func() {
		for _, p := range eof {
			p.done(nil, io.EOF)
		}
		for _, sub := range subs {
			sub.Unsubscribe()
		}
	}
}
