package channels

import "sync/atomic"

// Readiness says which operations would complete without waiting.
type Readiness uint8

const (
	// Readable: a receive would not wait (a message is queued, or the
	// channel is hung up or closed and a receive returns end of file).
	Readable Readiness = 1 << iota
	// Writable: a send would not wait (there is room for at least one
	// byte, or the send fails at once because the channel is hung up or
	// closed).
	Writable
	// HangUp: no message will ever be received (closed, or hung up and
	// drained).
	HangUp
)

// A Watch is a poller's interest in one channel: its wake function is
// called, once, the first time after Poll armed it that the readiness it
// asked about may have become ready (spurious wakes are possible). Poll
// again to re-arm it.
type Watch struct {
	ch   *Channel
	wake func()

	interest Readiness   // guarded by ch.mu; zero while not armed
	stopped  atomic.Bool // set under ch.mu
}

// NewWatch returns an unarmed watch on c that calls wake. wake is called
// without c's lock held and must not block for long.
func (c *Channel) NewWatch(wake func()) *Watch {
	return &Watch{ch: c, wake: wake}
}

// Poll reports c's readiness. If w is not nil it is armed (or stays armed)
// for the changes in interest, atomically with the report: a change after
// Poll returns always wakes w. Arm even when already ready: pollers that
// are edge-triggered need the next change too.
func (c *Channel) Poll(w *Watch, interest Readiness) Readiness {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w != nil && !w.stopped.Load() && interest != 0 {
		if w.interest == 0 {
			c.armed = append(c.armed, w)
		}
		w.interest |= interest
	}
	return c.readiness()
}

// Stop disarms w for good. Like time.Timer.Stop, it does not wait for a
// wake that a change has already started: that one may still run once,
// shortly after Stop returns (a wake may call Stop itself).
func (w *Watch) Stop() {
	c := w.ch
	c.mu.Lock()
	defer c.mu.Unlock()
	w.stopped.Store(true)
	if w.interest != 0 {
		w.interest = 0
		c.disarm(w)
	}
}

// fire calls w's wake function unless w has been stopped. Call it without
// ch.mu held.
func (w *Watch) fire() {
	if !w.stopped.Load() {
		w.wake()
	}
}

// wake queues the armed watches interested in changed and disarms them.
// Requires c.mu.
func (c *Channel) wake(s *settlement, changed Readiness) {
	kept := c.armed[:0]
	for _, w := range c.armed {
		if w.interest&changed != 0 {
			w.interest = 0
			s.wakes = append(s.wakes, w)
		} else {
			kept = append(kept, w)
		}
	}
	clear(c.armed[len(kept):])
	c.armed = kept
}

// disarm removes w from c.armed. Requires c.mu.
func (c *Channel) disarm(w *Watch) {
	for i, a := range c.armed {
		if a == w {
			last := len(c.armed) - 1
			c.armed[i] = c.armed[last]
			c.armed[last] = nil
			c.armed = c.armed[:last]
			return
		}
	}
}
