package channels

import (
	"sync"
	"testing"
	"time"
)

// hangTimeout turns a hang into a failure. It is never a performance
// threshold: every wait it bounds completes at once in a correct program.
const hangTimeout = 10 * time.Second

// result is what a waiter's done function was called with.
type result struct {
	msg []byte
	err error
}

// recorder is a done function that counts its calls and keeps the last
// result. It is safe to call from any goroutine.
type recorder struct {
	mu    sync.Mutex
	calls int
	last  result
}

func newRecorder() *recorder {
	return &recorder{}
}

func (r *recorder) done(msg []byte, err error) {
	r.mu.Lock()
	r.calls++
	r.last = result{msg, err}
	r.mu.Unlock()
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

func (r *recorder) result() result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func mustNew(t testing.TB, l Limits) *Channel {
	t.Helper()
	c, err := New(l)
	if err != nil {
		t.Fatalf("New(%+v): %v", l, err)
	}
	return c
}

// send starts a Send with a fresh recorder.
// With nonblock it is TrySend, its result recorded as the waiter's (the
// waiter is then done: Cancel reports false).
func send(c *Channel, msg string, nonblock bool) (*Waiter, *recorder) {
	r := newRecorder()
	w := c.NewWaiter(r.done)
	if nonblock {
		w.Cancel()
		r.done(nil, c.TrySend([]byte(msg)))
		return w, r
	}
	c.Send(w, []byte(msg))
	return w, r
}

// receive starts a Receive with a fresh recorder.
// With nonblock it is TryReceive, recorded as send's is.
func receive(c *Channel, nonblock bool) (*Waiter, *recorder) {
	r := newRecorder()
	w := c.NewWaiter(r.done)
	if nonblock {
		w.Cancel()
		r.done(c.TryReceive())
		return w, r
	}
	c.Receive(w)
	return w, r
}

// waitUntil polls cond until it holds, failing the test after hangTimeout.
// It waits for a state another goroutine is about to reach (a receiver
// parked, say); it measures nothing.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", hangTimeout, what)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// noHang runs f in a goroutine and fails the test if it does not return
// within hangTimeout (a deadlock becomes a failure instead of a stuck run).
func noHang(t *testing.T, what string, f func()) {
	t.Helper()
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		f()
	}()
	select {
	case <-finished:
	case <-time.After(hangTimeout):
		t.Fatalf("%s: did not return within %v (deadlock?)", what, hangTimeout)
	}
}

// counts is the part of Stats that the queue operations change.
type counts struct {
	Messages, Bytes                int64
	BlockedReaders, BlockedWriters int64
	Sent, Received                 uint64
	HungUp, Closed                 bool
}

func countsOf(s Stats) counts {
	return counts{
		Messages:       s.Messages,
		Bytes:          s.Bytes,
		BlockedReaders: s.BlockedReaders,
		BlockedWriters: s.BlockedWriters,
		Sent:           s.Sent,
		Received:       s.Received,
		HungUp:         s.HungUp,
		Closed:         s.Closed,
	}
}
